package tokenstest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Entra access tokens for outlook.office.com are JWTs of about 1.5-2.5 KB;
// refresh tokens for work accounts start with "0.A" and are about 1 KB.
// Imitating the sizes lets tests see what a keyring or a SASL line must hold.
const (
	minAccessLen = 1600
	maxAccessLen = 2300
	refreshLen   = 1034
	outlookRes   = "https://outlook.office.com"
	// GraphResource is Microsoft Graph's resource: the audience of the
	// access tokens minted for its scopes (Mail.Send and the like).
	GraphResource = "https://graph.microsoft.com"
)

// defaultScope is what Issue grants: the three mail scopes plus
// offline_access.
const defaultScope = outlookRes + "/IMAP.AccessAsUser.All " + outlookRes +
	"/POP.AccessAsUser.All " + outlookRes + "/SMTP.Send offline_access"

// randB64 returns n random base64url characters.
func randB64(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func randInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// hasOffline reports whether a Microsoft scope string asks for a refresh
// token.
func hasOffline(scope string) bool {
	_, offline := resourceScopes(scope)
	return offline
}

// resourceScopes splits a requested scope string into the resource scopes
// (full URIs) and reports whether offline_access was asked for. OpenID
// scopes are dropped: they mint no access-token permission.
func resourceScopes(scope string) (res []string, offline bool) {
	for _, f := range strings.Fields(scope) {
		switch f {
		case "offline_access":
			offline = true
		case "openid", "profile", "email":
		default:
			res = append(res, f)
		}
	}
	return res, offline
}

// checkScope reports the AADSTS70011 problem of a scope string, or "" when
// it is acceptable: every resource scope must name the same resource, as
// Microsoft refuses mixing Outlook and Graph scopes in one request.
func checkScope(scope string) string {
	res, _ := resourceScopes(scope)
	host := ""
	for _, sc := range res {
		u, err := url.Parse(sc)
		if err != nil || u.Host == "" {
			return fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope '%s' is not valid.", sc)
		}
		if host != "" && u.Host != host {
			return fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. One or more scopes in '%s' are not compatible with each other.", scope)
		}
		host = u.Host
	}
	return ""
}

// audience is the aud claim of a token for scope: the resource its
// scopes name, the Outlook resource when they name none.
func audience(scope string) string {
	res, _ := resourceScopes(scope)
	for _, sc := range res {
		if u, err := url.Parse(sc); err == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return outlookRes
}

// scp is the scp claim: the permission names without the resource prefix.
// An empty request means the three mail permissions.
func scp(scope string) string {
	res, _ := resourceScopes(scope)
	if len(res) == 0 {
		res, _ = resourceScopes(defaultScope)
	}
	names := make([]string, 0, len(res))
	for _, sc := range res {
		if i := strings.LastIndex(sc, "/"); i >= 0 {
			sc = sc[i+1:]
		}
		names = append(names, sc)
	}
	return strings.Join(names, " ")
}

// accessClaims follows the claim set of a v1.0 Entra access token for the
// Outlook resource; aio carries the random bulk real tokens have.
type accessClaims struct {
	Aud        string   `json:"aud"`
	Iss        string   `json:"iss"`
	Iat        int64    `json:"iat"`
	Nbf        int64    `json:"nbf"`
	Exp        int64    `json:"exp"`
	Acct       int      `json:"acct"`
	Acr        string   `json:"acr"`
	Aio        string   `json:"aio"`
	Amr        []string `json:"amr"`
	AppName    string   `json:"app_displayname"`
	AppID      string   `json:"appid"`
	AppIDAcr   string   `json:"appidacr"`
	FamilyName string   `json:"family_name"`
	GivenName  string   `json:"given_name"`
	IDType     string   `json:"idtyp"`
	IPAddr     string   `json:"ipaddr"`
	Name       string   `json:"name"`
	OID        string   `json:"oid"`
	PUID       string   `json:"puid"`
	RH         string   `json:"rh"`
	Scp        string   `json:"scp"`
	SID        string   `json:"sid"`
	Sub        string   `json:"sub"`
	TID        string   `json:"tid"`
	UniqueName string   `json:"unique_name"`
	UPN        string   `json:"upn"`
	Preferred  string   `json:"preferred_username"`
	UTI        string   `json:"uti"`
	Ver        string   `json:"ver"`
	WIDs       []string `json:"wids"`
	XmsStSub   struct {
		Sub string `json:"sub"`
	} `json:"xms_st"`
	XmsTcdt int64 `json:"xms_tcdt"`
}

// personalTenant is the tenant id of personal Microsoft accounts.
const personalTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// mintAccess builds a JWT-shaped access token, or for personal accounts an
// opaque one: Microsoft's sample for a consumer account is an "EwB..."
// string. The signature is random: the platform recognises its tokens by
// lookup, not by verifying them.
func (s *Server) mintAccess(user, scope, clientID string, iat, exp time.Time) string {
	if s.opts.Personal {
		return "EwB" + randB64(minAccessLen-3+randInt(maxAccessLen-minAccessLen))
	}
	local, _, _ := strings.Cut(user, "@")
	kid := randB64(27)
	header, _ := json.Marshal(map[string]string{
		"typ": "JWT", "nonce": randB64(43), "alg": "RS256", "x5t": kid, "kid": kid,
	})
	c := accessClaims{
		Aud: audience(scope), Iss: "https://sts.windows.net/" + s.tenant + "/",
		Iat: iat.Unix(), Nbf: iat.Unix(), Exp: exp.Unix(),
		Acr: "1", Amr: []string{"pwd", "mfa"}, AppName: "bridge", AppID: clientID, AppIDAcr: "0",
		FamilyName: "User", GivenName: local, IDType: "user", IPAddr: "127.0.0.1",
		Name: local, OID: newUUID(), PUID: strings.ToUpper(hex.EncodeToString([]byte(randB64(8)))),
		RH: "0." + randB64(60) + ".", Scp: scp(scope), SID: newUUID(), Sub: randB64(43),
		TID: s.tenant, UniqueName: user, UPN: user, Preferred: user, UTI: randB64(22),
		Ver: "1.0", WIDs: []string{"b79fbf4d-3ef9-4689-8143-76b194e85509"},
		XmsTcdt: iat.Add(-1000 * 24 * time.Hour).Unix(),
	}
	c.XmsStSub.Sub = randB64(43)
	enc := base64.RawURLEncoding
	sig := make([]byte, 256) // an RS256 signature is 256 bytes
	_, _ = rand.Read(sig)
	body, _ := json.Marshal(c)
	fixed := len(enc.EncodeToString(header)) + len(enc.EncodeToString(body)) + enc.EncodedLen(len(sig)) + 2
	// Grow aio so the whole token lands at a random size in range.
	target := minAccessLen + randInt(maxAccessLen-minAccessLen)
	c.Aio = randB64(max(40, (target-fixed)*3/4))
	body, _ = json.Marshal(c)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString(sig)
}

// idClaims follows a v2.0 Entra ID token: preferred_username comes with the
// profile scope, email with the email scope (OpenID Connect Core 1.0
// section 5.4).
type idClaims struct {
	Aud       string `json:"aud"`
	Iss       string `json:"iss"`
	Iat       int64  `json:"iat"`
	Nbf       int64  `json:"nbf"`
	Exp       int64  `json:"exp"`
	Name      string `json:"name,omitempty"`
	OID       string `json:"oid"`
	Preferred string `json:"preferred_username,omitempty"`
	Email     string `json:"email,omitempty"`
	Sub       string `json:"sub"`
	TID       string `json:"tid"`
	Ver       string `json:"ver"`
}

// mintID builds an ID token for user when scope asks for openid, and ""
// otherwise. Like the access tokens its signature is random.
func (s *Server) mintID(user, scope, clientID string, iat, exp time.Time) string {
	fields := strings.Fields(scope)
	if !slices.Contains(fields, "openid") {
		return ""
	}
	local, _, _ := strings.Cut(user, "@")
	c := idClaims{
		Aud: clientID, Iss: "https://login.microsoftonline.com/" + s.tenant + "/v2.0",
		Iat: iat.Unix(), Nbf: iat.Unix(), Exp: exp.Unix(),
		OID: newUUID(), Sub: randB64(43), TID: s.tenant, Ver: "2.0",
	}
	if slices.Contains(fields, "profile") {
		c.Name, c.Preferred = local, user
	}
	if slices.Contains(fields, "email") {
		c.Email = user
	}
	kid := randB64(27)
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": kid})
	body, _ := json.Marshal(c)
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString(sig)
}

func mintRefresh() string { return "0.A" + randB64(refreshLen-3) }
