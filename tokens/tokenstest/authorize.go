package tokenstest

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// handleAuthorize is the authorize endpoint (RFC 6749 section 4.1.1). It
// approves at once, as if the user had signed in and consented: the user
// is login_hint, or Options.User without one (or whoever SignInAs set).
// Problems that make the
// redirect URI untrustworthy are answered here; the others are sent back
// to the redirect URI as error and error_description (section 4.1.2.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form
	clientID, ok := s.checkClient(w, r, false)
	if !ok {
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'redirect_uri'.")
		return
	}
	if !redirectOK(redirect) {
		writeError(w, http.StatusBadRequest, "invalid_request", 50011, fmt.Sprintf(
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.",
			redirect, clientID))
		return
	}
	state := q.Get("state")
	back := func(code string, aadsts int, desc string) {
		v := url.Values{"error": {code}, "error_description": {describe(aadsts, desc, newUUID(), newUUID(), time.Now())}}
		s.redirect(w, r, redirect, state, v)
	}
	s.mu.Lock()
	fail := s.authFail
	s.authFail = nil
	s.mu.Unlock()
	scope := q.Get("scope")
	switch {
	case fail != nil:
		back(fail.Error, fail.AADSTS, fail.Description)
	case q.Get("response_type") != "code":
		back("unsupported_response_type", 9002313,
			fmt.Sprintf("Invalid request. The response_type '%s' is not supported; use 'code'.", q.Get("response_type")))
	case q.Get("code_challenge") == "":
		back("invalid_request", 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
	case q.Get("code_challenge_method") != "S256":
		back("invalid_request", 9002313, "Invalid request. The code_challenge_method must be 'S256'.")
	case checkScope(scope) != "":
		back("invalid_scope", 70011, checkScope(scope))
	default:
		user := s.browserUser(q.Get("login_hint"))
		code := "1.A" + randB64(700)
		s.mu.Lock()
		s.codes[code] = &codeRec{
			user: user, scope: scope, clientID: clientID, redirect: redirect,
			challenge: q.Get("code_challenge"), exp: time.Now().Add(10 * time.Minute),
		}
		s.mu.Unlock()
		s.redirect(w, r, redirect, state, url.Values{"code": {code}, "session_state": {newUUID()}})
	}
}

// redirectOK accepts https URIs and, as Microsoft does for public clients,
// plain http only on a loopback host (any port).
func redirectOK(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1"
	}
	return false
}

// redirect sends the browser back with params added to the redirect URI's
// query and state returned unchanged.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to, state string, params url.Values) {
	u, _ := url.Parse(to)
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
