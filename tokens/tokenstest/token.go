package tokenstest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	grantCode    = "authorization_code"
	grantRefresh = "refresh_token"
	grantDevice  = "urn:ietf:params:oauth:grant-type:device_code"
	grantApp     = "client_credentials"
)

// handleToken is the token endpoint (RFC 6749 section 3.2): a form POST
// answered with JSON, tokens on success and a Microsoft error body
// otherwise.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	grant, answered := s.tokenRequest(w, r)
	if answered {
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", 900561,
			fmt.Sprintf("The endpoint only accepts POST requests. Received a %s request.", r.Method))
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if grant == grantApp {
		// Registered apps authenticate themselves (RegisterApp); the
		// public-client rules of checkClient are not theirs.
		s.clientCredentials(w, r)
		return
	}
	clientID, ok := s.checkClient(w, r, true)
	if !ok {
		return
	}
	switch grant {
	case grantCode:
		s.codeGrant(w, r, clientID)
	case grantRefresh:
		s.refreshGrant(w, r, clientID)
	case grantDevice, "device_code":
		s.deviceGrant(w, r, clientID)
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
	}
}

// checkClient authenticates the client (RFC 6749 section 2.3.1: HTTP Basic
// or the request body) and writes the refusal itself. withSecret is false
// for the authorize endpoint, where no secret is sent.
func (s *Server) checkClient(w http.ResponseWriter, r *http.Request, withSecret bool) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	switch {
	case id == "":
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'client_id'.")
	case s.opts.ClientID != "" && id != s.opts.ClientID:
		writeError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			id, r.PathValue("tenant")))
	case !withSecret:
		return id, true
	case s.opts.ClientSecret == "" && secret != "":
		writeError(w, http.StatusBadRequest, "invalid_client", 700025,
			"Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	case s.opts.ClientSecret != "" && secret == "":
		writeError(w, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case s.opts.ClientSecret != "" && secret != s.opts.ClientSecret:
		writeError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	default:
		return id, true
	}
	return "", false
}

// writeTokens sends a successful token response (RFC 6749 section 5.1)
// with Microsoft's extra ext_expires_in.
func writeTokens(w http.ResponseWriter, t issued) {
	res, _ := resourceScopes(t.scope)
	secs := int(math.Ceil(t.lifetime.Seconds())) // never 0: that would mean "no expiry"
	body := map[string]any{
		"token_type":     "Bearer",
		"scope":          strings.Join(res, " "),
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   t.access,
	}
	if t.refresh != "" {
		body["refresh_token"] = t.refresh
	}
	if t.id != "" {
		body["id_token"] = t.id
	}
	writeJSON(w, http.StatusOK, body)
}

// codeRec is an issued authorization code.
type codeRec struct {
	user, scope, clientID, redirect, challenge string
	method                                     string // Google's code_challenge_method; "" means S256
	exp                                        time.Time
	used                                       bool
	offline                                    bool // Google: the answer carries a refresh token
}

// codeGrant redeems an authorization code, checking PKCE (RFC 7636
// section 4.6) and the redirect URI (RFC 6749 section 4.1.3). A code is
// burnt by its first redemption attempt, good or bad.
func (s *Server) codeGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	s.mu.Lock()
	rec, ok := s.codes[code]
	used := ok && rec.used
	if ok {
		rec.used = true
	}
	s.mu.Unlock()
	bad := func(aadsts int, desc string) { writeError(w, http.StatusBadRequest, "invalid_grant", aadsts, desc) }
	switch {
	case code == "":
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'code'.")
	case !ok:
		bad(70000, "The provided value for the 'code' parameter is not valid.")
	case used:
		bad(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case time.Now().After(rec.exp):
		bad(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case rec.clientID != clientID:
		bad(70000, "The provided authorization code was issued to a different client.")
	case r.PostForm.Get("redirect_uri") != rec.redirect:
		bad(50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URI used to request the authorization code.", r.PostForm.Get("redirect_uri")))
	case s256(r.PostForm.Get("code_verifier")) != rec.challenge:
		bad(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	default:
		writeTokens(w, s.issue(rec.user, rec.scope, clientID, hasOffline(rec.scope)))
	}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var revokedText = map[int]string{
	50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
	70008: "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
}

// refreshGrant redeems a refresh token (RFC 6749 section 6). Each success
// returns a new refresh token; the old one stays valid unless
// RevokeOnRotate is set, as Microsoft does not revoke it.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	rt, scope := r.PostForm.Get("refresh_token"), r.PostForm.Get("scope")
	s.mu.Lock()
	rec, ok := s.refresh[rt]
	var cp refreshRec
	if ok {
		cp = *rec
	}
	s.mu.Unlock()
	bad := func(aadsts int, desc string) { writeError(w, http.StatusBadRequest, "invalid_grant", aadsts, desc) }
	switch {
	case rt == "":
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'refresh_token'.")
		return
	case !ok:
		bad(9002313, "Invalid request. Request is malformed or invalid.")
		return
	case cp.revoked != 0:
		bad(cp.revoked, revokedText[cp.revoked])
		return
	case s.aged(&cp):
		bad(700082, "The refresh token has expired due to inactivity.")
		return
	case cp.clientID != "" && cp.clientID != clientID: // Issue without a ClientID fits any client
		bad(70000, "The provided refresh token was issued to a different client.")
		return
	case scope == "" && s.opts.RequireRefreshScope:
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'scope'.")
		return
	}
	if scope == "" {
		scope = cp.scope
	} else {
		if msg := checkScope(scope); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid_scope", 70011, msg)
			return
		}
		granted, offline := resourceScopes(cp.scope)
		asked, _ := resourceScopes(scope)
		s.mu.Lock()
		var missing []string
		for _, a := range asked {
			if !slices.Contains(granted, a) && !s.consentedLocked(cp.user, clientID, a) {
				missing = append(missing, a)
			}
		}
		s.mu.Unlock()
		if len(missing) > 0 {
			if audience(scope) != audience(cp.scope) {
				// Another resource than the refresh token's sign-in asked
				// for, never consented to: Microsoft wants the consent
				// prompt first (suberror consent_required).
				bad(65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named 'bridge'. Send an interactive authorization request for this user and resource.", clientID))
				return
			}
			bad(70000, "The request was denied because one or more scopes requested are unauthorized or expired. The user must first sign in and grant the client application access to the requested scope.")
			return
		}
		if len(asked) == 0 {
			asked = granted
		}
		if offline {
			asked = append(asked, "offline_access")
		}
		scope = strings.Join(asked, " ")
	}
	t := s.issue(cp.user, scope, clientID, hasOffline(scope))
	if s.opts.RevokeOnRotate {
		s.mu.Lock()
		rec.revoked = 70008
		s.mu.Unlock()
	}
	writeTokens(w, t)
}

// tokenRequest counts a request to either token endpoint by its grant and
// serves the next injected failure, if one is due. It returns the grant,
// and whether the failure answered the request.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (grant string, answered bool) {
	s.tokenReqs.Add(1)
	_ = r.ParseForm()
	grant = r.PostForm.Get("grant_type")
	switch grant {
	case grantRefresh:
		s.refreshReqs.Add(1)
	case grantDevice, "device_code":
		s.devicePolls.Add(1)
	case grantApp:
		s.appReqs.Add(1)
	}
	if f, ok := s.nextFailure(); ok {
		s.wait(r, f.Delay)
		if f.Status != 0 {
			s.writeFailure(w, f)
			return grant, true
		}
	}
	return grant, false
}
