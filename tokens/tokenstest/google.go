package tokenstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Google's endpoints (docs/google-facts.md §1), on this server's origin:
// accounts.google.com/o/oauth2/v2/auth, oauth2.googleapis.com/token and
// oauth2.googleapis.com/device/code.
const (
	googleAuthPath   = "/o/oauth2/v2/auth"
	googleTokenPath  = "/token"
	googleDevicePath = "/device/code"
)

// GoogleMailScope is the only scope Gmail's IMAP, POP and SMTP servers take
// a token for.
const GoogleMailScope = "https://mail.google.com/"

// googleRevokedText is Google's error_description for a refresh token
// that expired or was revoked; the causes share it.
const googleRevokedText = "Token has been expired or revoked."

// googleDeviceScopes are the scopes Google allows on its device flow; the
// mail scope is not one of them.
var googleDeviceScopes = []string{
	"openid", "email", "profile",
	"https://www.googleapis.com/auth/userinfo.email",
	"https://www.googleapis.com/auth/userinfo.profile",
	"https://www.googleapis.com/auth/drive.appdata",
	"https://www.googleapis.com/auth/drive.file",
	"https://www.googleapis.com/auth/youtube",
	"https://www.googleapis.com/auth/youtube.readonly",
}

// writeGoogleError sends Google's OAuth error body: error and, when there
// is one, error_description; nothing else.
func writeGoogleError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]any{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, status, body)
}

var googleErrorPage = template.Must(template.New("google-error").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Error {{.Status}}: {{.Code}}</title></head>
<body><h1>Error {{.Status}}: {{.Code}}</h1><p>{{.Text}}</p>
<p>This is an imitation of Google's sign-in page for tests.</p></body></html>
`))

// googlePage answers an authorize request Google will not send back to the
// app: the person sees "Error 400: redirect_uri_mismatch" and the like.
func googlePage(w http.ResponseWriter, status int, code, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = googleErrorPage.Execute(w, struct {
		Status     int
		Code, Text string
	}{status, code, text})
}

// googleLoopback accepts the redirect URIs of a Desktop app client: plain
// http to 127.0.0.1, [::1] or localhost, on any port.
func googleLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// handleGoogleAuthorize is Google's authorize endpoint for a Desktop app.
// It approves at once, as a person who signs in and ticks every box but
// Options.Unticked would. Google shows the consent page on an account's
// first sign-in to the app and whenever prompt=consent asks for it; a
// refresh token comes only with access_type=offline and only when the
// page was shown.
func (s *Server) handleGoogleAuthorize(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	switch {
	case clientID == "":
		googlePage(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
		return
	case s.opts.ClientID != "" && clientID != s.opts.ClientID:
		googlePage(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case !googleLoopback(redirect):
		googlePage(w, http.StatusBadRequest, "redirect_uri_mismatch",
			"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.")
		return
	case q.Get("scope") == "":
		googlePage(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: scope")
		return
	}
	state := q.Get("state")
	back := func(code, desc string) {
		v := url.Values{"error": {code}}
		if desc != "" {
			v.Set("error_description", desc)
		}
		s.redirect(w, r, redirect, state, v)
	}
	s.mu.Lock()
	fail := s.authFail
	s.authFail = nil
	s.mu.Unlock()
	user := s.browserUser(q.Get("login_hint"))
	method := q.Get("code_challenge_method")
	switch {
	case fail != nil:
		back(fail.Error, fail.Description)
	case q.Get("response_type") != "code":
		back("unsupported_response_type", "")
	case q.Get("code_challenge") != "" && method != "" && method != "S256" && method != "plain":
		back("invalid_request", "Invalid code_challenge_method")
	case !s.testUser(user):
		// The person sees "Error 403: access_denied ... can only be
		// accessed by developer-approved testers".
		back("access_denied", "")
	default:
		granted := s.untick(q.Get("scope"))
		key := strings.ToLower(user) + "\x00" + clientID
		s.mu.Lock()
		shown := !s.consented[key] || slices.Contains(strings.Fields(q.Get("prompt")), "consent")
		s.consented[key] = true
		code := "4/0" + randB64(70)
		s.codes[code] = &codeRec{
			user: user, scope: granted, clientID: clientID, redirect: redirect,
			challenge: q.Get("code_challenge"), method: method, exp: time.Now().Add(10 * time.Minute),
			offline: q.Get("access_type") == "offline" && shown,
		}
		s.mu.Unlock()
		s.redirect(w, r, redirect, state, url.Values{"code": {code}, "scope": {googleScopeField(granted)}})
	}
}

// testUser reports whether user may sign in under Options.TestUsers.
func (s *Server) testUser(user string) bool {
	if len(s.opts.TestUsers) == 0 {
		return true
	}
	return slices.ContainsFunc(s.opts.TestUsers, func(u string) bool { return strings.EqualFold(u, user) })
}

// untick drops Options.Unticked from a requested scope string.
func (s *Server) untick(scope string) string {
	var kept []string
	for _, f := range strings.Fields(scope) {
		if !slices.Contains(s.opts.Unticked, f) {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " ")
}

// googleScopeField is a grant as Google words it in a token answer: the
// email and profile scopes as their userinfo URLs.
func googleScopeField(scope string) string {
	fs := strings.Fields(scope)
	for i, f := range fs {
		switch f {
		case "email", "profile":
			fs[i] = "https://www.googleapis.com/auth/userinfo." + f
		}
	}
	return strings.Join(fs, " ")
}

// handleGoogleToken is Google's token endpoint.
func (s *Server) handleGoogleToken(w http.ResponseWriter, r *http.Request) {
	grant, answered := s.tokenRequest(w, r)
	if answered {
		return
	}
	if r.Method != http.MethodPost {
		writeGoogleError(w, http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
		return
	}
	clientID, ok := s.googleClient(w, r)
	if !ok {
		return
	}
	switch grant {
	case grantCode:
		s.googleCodeGrant(w, r, clientID)
	case grantRefresh:
		s.googleRefreshGrant(w, r, clientID)
	case grantDevice:
		s.deviceGrant(w, r, clientID)
	default:
		writeGoogleError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+grant)
	}
}

// googleClient authenticates the client, in the body or with HTTP Basic.
// A Desktop app client must send its secret although Google's guide calls
// it optional.
func (s *Server) googleClient(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case id == "":
		writeGoogleError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
	case s.opts.ClientID != "" && id != s.opts.ClientID:
		writeGoogleError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
	case secret == "":
		writeGoogleError(w, http.StatusBadRequest, "invalid_request", "client_secret is missing.")
	case s.opts.ClientSecret != "" && secret != s.opts.ClientSecret:
		writeGoogleError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
	default:
		return id, true
	}
	return "", false
}

// googleCodeGrant redeems an authorization code; a code is burnt by its
// first redemption attempt. Google's words for a code it does not take
// are not known beyond invalid_grant; "Bad Request" stands in.
func (s *Server) googleCodeGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	s.mu.Lock()
	rec, ok := s.codes[code]
	used := ok && rec.used
	if ok {
		rec.used = true
	}
	s.mu.Unlock()
	switch {
	case code == "":
		writeGoogleError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
	case !ok, used, time.Now().After(rec.exp), rec.clientID != clientID:
		writeGoogleError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
	case r.PostForm.Get("redirect_uri") != rec.redirect:
		writeGoogleError(w, http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
	case rec.challenge != "" && !pkceMatches(rec.method, rec.challenge, r.PostForm.Get("code_verifier")):
		writeGoogleError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
	default:
		s.writeGoogleTokens(w, s.issue(rec.user, rec.scope, clientID, rec.offline))
	}
}

// pkceMatches checks a code_verifier against its challenge (RFC 7636
// section 4.6); Google takes plain as well as S256.
func pkceMatches(method, challenge, verifier string) bool {
	if method == "plain" {
		return verifier != "" && verifier == challenge
	}
	return verifier != "" && s256(verifier) == challenge
}

// googleRefreshGrant redeems a refresh token. Google does not rotate: the
// answer has no refresh_token and the old one stays good. The scope
// parameter is not checked; the grant keeps what consent gave.
func (s *Server) googleRefreshGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	rec, ok := s.refresh[rt]
	var cp refreshRec
	if ok {
		cp = *rec
	}
	s.mu.Unlock()
	switch {
	case rt == "":
		writeGoogleError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
	case !ok:
		writeGoogleError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
	case cp.revoked != 0 || s.aged(&cp):
		writeGoogleError(w, http.StatusBadRequest, "invalid_grant", googleRevokedText)
	case cp.clientID != "" && cp.clientID != clientID:
		writeGoogleError(w, http.StatusUnauthorized, "unauthorized_client", "Unauthorized")
	default:
		s.writeGoogleTokens(w, s.issue(cp.user, cp.scope, clientID, false))
	}
}

// handleGoogleDevice is Google's device/code endpoint: it refuses, before
// anyone signs in, a scope outside its short device-flow list, which the
// mail scope is not on.
func (s *Server) handleGoogleDevice(w http.ResponseWriter, r *http.Request) {
	s.deviceReqs.Add(1)
	_ = r.ParseForm()
	if r.Method != http.MethodPost {
		writeGoogleError(w, http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
		return
	}
	id := r.PostForm.Get("client_id")
	switch {
	case id == "":
		writeGoogleError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return
	case s.opts.ClientID != "" && id != s.opts.ClientID:
		writeGoogleError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	scope := r.PostForm.Get("scope")
	for _, f := range strings.Fields(scope) {
		if !slices.Contains(googleDeviceScopes, f) {
			writeGoogleError(w, http.StatusBadRequest, "invalid_scope", "Invalid device flow scope: "+f)
			return
		}
	}
	s.newDevice(w, scope, id)
}

// writeGoogleTokens sends Google's token answer: expires_in one second
// short of the lifetime (3599 for an hour), the grant in scope, and
// refresh_token only when one was issued.
func (s *Server) writeGoogleTokens(w http.ResponseWriter, t issued) {
	secs := max(1, int(math.Ceil(t.lifetime.Seconds()))-1)
	body := map[string]any{
		"access_token": t.access,
		"expires_in":   secs,
		"scope":        googleScopeField(t.scope),
		"token_type":   "Bearer",
	}
	if t.refresh != "" {
		body["refresh_token"] = t.refresh
	}
	if t.id != "" {
		body["id_token"] = t.id
	}
	writeJSON(w, http.StatusOK, body)
}

// Google's access tokens are opaque "ya29." strings of about 200
// characters, its refresh tokens "1//0" and about 100 more.
func mintGoogleAccess() string  { return "ya29.a0" + randB64(210) }
func mintGoogleRefresh() string { return "1//0" + randB64(99) }

// googleIDClaims follow Google's ID token (OpenID Connect reference for
// Google): email and email_verified come with the email scope.
type googleIDClaims struct {
	Iss           string `json:"iss"`
	Azp           string `json:"azp"`
	Aud           string `json:"aud"`
	Sub           string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Iat           int64  `json:"iat"`
	Exp           int64  `json:"exp"`
}

// mintGoogleID builds an ID token when scope asks for openid, with a
// random signature like the others.
func (s *Server) mintGoogleID(user, scope, clientID string, iat, exp time.Time) string {
	fields := strings.Fields(scope)
	if !slices.Contains(fields, "openid") {
		return ""
	}
	// sub is a stable number of 21 digits per account.
	sum := sha256.Sum256([]byte(strings.ToLower(user)))
	c := googleIDClaims{
		Iss: "https://accounts.google.com", Azp: clientID, Aud: clientID,
		Sub: fmt.Sprintf("1%020d", binary.BigEndian.Uint64(sum[:8])),
		Iat: iat.Unix(), Exp: exp.Unix(),
	}
	if slices.Contains(fields, "email") {
		c.Email, c.EmailVerified = user, true
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": randB64(40), "typ": "JWT"})
	body, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(body) + "." + randB64(342) // 256 bytes, as RS256

}
