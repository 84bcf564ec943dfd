package tokens

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"golang.org/x/oauth2"
)

// SignedInAs returns who a sign-in's tokens belong to, or "" when they do
// not say: the ID token's preferred_username (the sign-in name), else its
// email, else the access token's upn or unique_name when the access token
// is a readable JWT (Microsoft's work-account tokens for Outlook are; a
// personal account's are opaque). Compare it case-insensitively: it is
// written as the directory holds it.
//
// The tokens' signatures are not checked. They came straight from the
// token endpoint, over TLS, in answer to this program's own request, and
// OpenID Connect Core 1.0 section 3.1.3.7 lets TLS server validation stand
// in for the signature check of an ID token received that way. The name
// guards against a person signing in to the wrong account by mistake.
func SignedInAs(t *oauth2.Token) string {
	if t == nil {
		return ""
	}
	if id, ok := t.Extra("id_token").(string); ok {
		if c, ok := jwtClaims(id); ok {
			if c.PreferredUsername != "" {
				return c.PreferredUsername
			}
			if c.Email != "" {
				return c.Email
			}
		}
	}
	if c, ok := jwtClaims(t.AccessToken); ok {
		if c.UPN != "" {
			return c.UPN
		}
		// A guest's unique_name reads "live.com#user@example.com".
		if i := strings.LastIndexByte(c.UniqueName, '#'); i >= 0 {
			return c.UniqueName[i+1:]
		}
		return c.UniqueName
	}
	return ""
}

// nameClaims are the claims of ID and access tokens that name the user.
type nameClaims struct {
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	UPN               string `json:"upn"`
	UniqueName        string `json:"unique_name"`
}

// maxJWT bounds what jwtClaims decodes; Microsoft's tokens are a few KB.
const maxJWT = 64 << 10

// jwtClaims decodes the name claims of a JWT without checking it; ok is
// false for anything that is not one.
func jwtClaims(tok string) (nameClaims, bool) {
	var c nameClaims
	if !jwtPayload(tok, &c) {
		return nameClaims{}, false
	}
	return c, true
}

// jwtPayload decodes the payload of a compact JWS (RFC 7515 section 7.1)
// into v without checking the signature; it reports false for anything
// that is not one.
func jwtPayload(tok string, v any) bool {
	if len(tok) > maxJWT || strings.Count(tok, ".") != 2 {
		return false
	}
	_, payload, _ := strings.Cut(tok, ".")
	payload, _, _ = strings.Cut(payload, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	return err == nil && json.Unmarshal(b, v) == nil
}
