package tokenstest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	googleClient = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"
	googleSecret = "GOCSPX-imitation-secret"
	gmailUser    = "ann@gmail.example"
	loopback     = "http://127.0.0.1:8765/"
)

func newGoogle(t *testing.T, o tokenstest.Options) *tokenstest.Server {
	t.Helper()
	o.Google, o.ClientID, o.ClientSecret = true, googleClient, googleSecret
	s := tokenstest.New(o)
	t.Cleanup(s.Close)
	return s
}

// googleQuery is a Desktop app's authorize request; extra overrides it.
func googleQuery(extra url.Values) url.Values {
	q := url.Values{
		"client_id": {googleClient}, "redirect_uri": {loopback}, "response_type": {"code"},
		"scope": {tokenstest.GoogleMailScope + " openid email"}, "login_hint": {gmailUser},
		"code_challenge": {challenge(strings.Repeat("v", 43))}, "code_challenge_method": {"S256"},
		"access_type": {"offline"}, "prompt": {"consent"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

func googleCodeForm(code string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {loopback},
		"code_verifier": {strings.Repeat("v", 43)}, "client_id": {googleClient}, "client_secret": {googleSecret},
	}
}

// wantGoogleError checks Google's error body: error and error_description,
// none of Microsoft's fields.
func wantGoogleError(t *testing.T, status int, m map[string]any, wantStatus int, code, desc string) {
	t.Helper()
	if status != wantStatus || m["error"] != code || m["error_description"] != desc {
		t.Fatalf("got %d %v %q, want %d %s %q", status, m["error"], m["error_description"], wantStatus, code, desc)
	}
	for _, k := range []string{"error_codes", "trace_id", "correlation_id", "timestamp"} {
		if _, ok := m[k]; ok {
			t.Errorf("Google's error body has Microsoft's %s", k)
		}
	}
}

// googleSignIn authorizes with q and redeems the code.
func googleSignIn(t *testing.T, s *tokenstest.Server, q url.Values) map[string]any {
	t.Helper()
	code := authorize(t, s, q).Get("code")
	if code == "" {
		t.Fatal("no code came back")
	}
	st, m := post(t, s.TokenURL(""), googleCodeForm(code))
	if st != 200 {
		t.Fatalf("code exchange: %d %v %v", st, m["error"], m["error_description"])
	}
	return m
}

func TestGoogleEndpoints(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	for _, c := range []struct{ got, path string }{
		{s.AuthURL("common"), "/o/oauth2/v2/auth"}, {s.TokenURL(""), "/token"}, {s.DeviceURL(""), "/device/code"},
	} {
		if c.got != s.URL()+c.path {
			t.Errorf("endpoint %s, want %s%s", c.got, s.URL(), c.path)
		}
	}
}

func TestGoogleCodeNeedsSecret(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	code := authorize(t, s, googleQuery(nil)).Get("code")
	form := googleCodeForm(code)
	form.Del("client_secret")
	st, m := post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_request", "client_secret is missing.")

	code = authorize(t, s, googleQuery(nil)).Get("code")
	form = googleCodeForm(code)
	form.Set("client_secret", "wrong")
	st, m = post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 401, "invalid_client", "Unauthorized")

	form.Set("client_id", "other.apps.googleusercontent.com")
	st, m = post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 401, "invalid_client", "The OAuth client was not found.")

	m = googleSignIn(t, s, googleQuery(nil))
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if !strings.HasPrefix(at, "ya29.") || !strings.HasPrefix(rt, "1//0") {
		t.Errorf("tokens are not Google-shaped: %.8s..., %.6s...", at, rt)
	}
	if m["expires_in"] != float64(3599) || m["token_type"] != "Bearer" {
		t.Errorf("expires_in %v token_type %v", m["expires_in"], m["token_type"])
	}
	if scope := m["scope"]; scope != tokenstest.GoogleMailScope+" openid https://www.googleapis.com/auth/userinfo.email" {
		t.Errorf("scope %q", scope)
	}
	if err := s.Validate(gmailUser, at); err != nil {
		t.Errorf("Validate: %v", err)
	}
	id, _ := m["id_token"].(string)
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token has %d parts", len(parts))
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != "https://accounts.google.com" || claims["email"] != gmailUser || claims["email_verified"] != true || claims["aud"] != googleClient {
		t.Errorf("id_token claims %v", claims)
	}

	// The verifier must match the challenge.
	code = authorize(t, s, googleQuery(nil)).Get("code")
	form = googleCodeForm(code)
	form.Set("code_verifier", strings.Repeat("w", 43))
	st, m = post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_grant", "Bad Request")
}

// TestGoogleRefreshTokenOnConsent: a refresh token comes with
// access_type=offline, and only when the consent page was shown: on the
// first sign-in, or when prompt=consent asks for it.
func TestGoogleRefreshTokenOnConsent(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	noPrompt := url.Values{"prompt": {"select_account"}}
	if m := googleSignIn(t, s, googleQuery(noPrompt)); m["refresh_token"] == nil {
		t.Error("first sign-in (consent shown) without prompt=consent: no refresh token")
	}
	if m := googleSignIn(t, s, googleQuery(noPrompt)); m["refresh_token"] != nil {
		t.Error("second sign-in without prompt=consent got a refresh token; Google sends none when consent is skipped")
	}
	if m := googleSignIn(t, s, googleQuery(nil)); m["refresh_token"] == nil {
		t.Error("prompt=consent with access_type=offline: no refresh token")
	}
	if m := googleSignIn(t, s, googleQuery(url.Values{"access_type": {"online"}})); m["refresh_token"] != nil {
		t.Error("access_type=online got a refresh token")
	}
}

func TestGoogleRefresh(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	rt, _ := googleSignIn(t, s, googleQuery(nil))["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {googleClient},
		"client_secret": {googleSecret}, "scope": {tokenstest.GoogleMailScope}}
	for range 2 {
		st, m := post(t, s.TokenURL(""), form)
		if st != 200 {
			t.Fatalf("refresh: %d %v", st, m)
		}
		if _, rotated := m["refresh_token"]; rotated {
			t.Error("Google does not rotate refresh tokens")
		}
		if err := s.Validate(gmailUser, m["access_token"].(string)); err != nil {
			t.Errorf("refreshed token: %v", err)
		}
	}
	s.RevokeRefresh(rt)
	st, m := post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_grant", "Token has been expired or revoked.")

	form.Set("refresh_token", "1//0unknown")
	st, m = post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_grant", "Bad Request")

	s.FailNext(1, tokenstest.ExpiredOrRevoked())
	st, m = post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_grant", "Token has been expired or revoked.")
}

// TestGoogleTestingExpiry: an app in "Testing" loses its refresh tokens a
// fixed time after consent, with the same words as a revocation.
func TestGoogleTestingExpiry(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{RefreshLifetime: time.Second})
	_, rt, _ := s.Issue(gmailUser)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {googleClient}, "client_secret": {googleSecret}}
	if st, m := post(t, s.TokenURL(""), form); st != 200 {
		t.Fatalf("fresh refresh token refused: %v", m)
	}
	time.Sleep(time.Second)
	st, m := post(t, s.TokenURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_grant", "Token has been expired or revoked.")
}

func TestGoogleDeviceRefusesMail(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	form := url.Values{"client_id": {googleClient}, "scope": {tokenstest.GoogleMailScope + " openid email"}}
	st, m := post(t, s.DeviceURL(""), form)
	wantGoogleError(t, st, m, 400, "invalid_scope", "Invalid device flow scope: https://mail.google.com/")

	form.Set("scope", "openid email")
	st, m = post(t, s.DeviceURL(""), form)
	if st != 200 || m["verification_url"] == nil || m["user_code"] == nil {
		t.Errorf("device code for allowed scopes: %d %v", st, m)
	}
}

func TestGoogleAuthorizeRefusals(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{TestUsers: []string{"Tester@gmail.example"}})
	// Only listed test users get in while the app is in Testing.
	q := authorize(t, s, googleQuery(url.Values{"login_hint": {gmailUser}}))
	if q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Errorf("unlisted user: redirect %v, want error=access_denied", q)
	}
	if q := authorize(t, s, googleQuery(url.Values{"login_hint": {"tester@gmail.example"}})); q.Get("code") == "" {
		t.Errorf("listed test user refused: %v", q)
	}
	// A redirect that is not a loopback address never goes back.
	resp, err := noRedirect.Get(s.AuthURL("") + "?" + googleQuery(url.Values{"redirect_uri": {"https://evil.example/"}}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign redirect: status %d, want 400", resp.StatusCode)
	}
	// A scripted refusal comes back bare, without Microsoft's trace lines.
	s.FailNextAuthorize("access_denied", 0, "")
	q = authorize(t, s, googleQuery(url.Values{"login_hint": {"tester@gmail.example"}}))
	if q.Get("error") != "access_denied" || q.Has("error_description") {
		t.Errorf("scripted refusal: %v", q)
	}
}

// TestGoogleUnticked: a person who unticks the mail box gets a token
// Gmail refuses.
func TestGoogleUnticked(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{Unticked: []string{tokenstest.GoogleMailScope}})
	m := googleSignIn(t, s, googleQuery(nil))
	if scope, _ := m["scope"].(string); strings.Contains(scope, "mail.google.com") {
		t.Errorf("scope %q still has the unticked mail scope", scope)
	}
	if err := s.Validate(gmailUser, m["access_token"].(string)); !errors.Is(err, tokenstest.ErrNoMailScope) {
		t.Errorf("Validate: %v, want ErrNoMailScope", err)
	}
}
