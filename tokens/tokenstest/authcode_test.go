package tokenstest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const clientID = "11111111-2222-3333-4444-555555555555"

func TestAuthCodePKCE(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	const redirect = "http://localhost:4711/"
	verifier := strings.Repeat("v", 43)
	state := "st&te=with/odd+chars"

	q := authorize(t, s, authQuery(clientID, redirect, verifier, state))
	if q.Get("state") != state {
		t.Errorf("state %q came back as %q", state, q.Get("state"))
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in redirect: %v", q)
	}

	st, m := post(t, s.TokenURL("common"), codeForm(clientID, code, redirect, verifier+"x"))
	wantError(t, st, m, 400, "invalid_grant", 501481)

	// The failed attempt burnt the code.
	st, m = post(t, s.TokenURL("common"), codeForm(clientID, code, redirect, verifier))
	wantError(t, st, m, 400, "invalid_grant", 54005)

	code = authorize(t, s, authQuery(clientID, redirect, verifier, state)).Get("code")
	st, m = post(t, s.TokenURL("common"), codeForm(clientID, code, "http://localhost:4712/", verifier))
	wantError(t, st, m, 400, "invalid_grant", 50011)

	code = authorize(t, s, authQuery(clientID, redirect, verifier, state)).Get("code")
	st, m = post(t, s.TokenURL("common"), codeForm(clientID, code, redirect, verifier))
	if st != 200 {
		t.Fatalf("exchange: %d %v", st, m["error_description"])
	}
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if at == "" || rt == "" || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) {
		t.Fatalf("token answer lacks fields: token_type=%v expires_in=%v", m["token_type"], m["expires_in"])
	}
	if err := s.Validate("adele@contoso.EXAMPLE", at); err != nil {
		t.Errorf("Validate for the login_hint user: %v", err)
	}

	st, m = post(t, s.TokenURL("common"), codeForm(clientID, code, redirect, verifier))
	wantError(t, st, m, 400, "invalid_grant", 54005)
}

func TestAuthorizeRefusals(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	const redirect = "http://localhost/cb?keep=1"

	q := authQuery(clientID, redirect, "verifier", "s1")
	q.Del("code_challenge")
	got := authorize(t, s, q)
	if got.Get("error") != "invalid_request" || !strings.HasPrefix(got.Get("error_description"), "AADSTS9002325:") {
		t.Errorf("no challenge: got %v", got)
	}
	if got.Get("keep") != "1" || got.Get("state") != "s1" {
		t.Errorf("redirect lost its query or state: %v", got)
	}

	q = authQuery(clientID, redirect, "verifier", "s2")
	q.Set("code_challenge_method", "plain")
	if got := authorize(t, s, q); got.Get("error") != "invalid_request" {
		t.Errorf("plain challenge accepted: %v", got)
	}

	q = authQuery(clientID, redirect, "verifier", "s3")
	q.Set("scope", "https://outlook.office.com/IMAP.AccessAsUser.All https://graph.microsoft.com/Mail.Read")
	if got := authorize(t, s, q); !strings.HasPrefix(got.Get("error_description"), "AADSTS70011:") {
		t.Errorf("mixed resources accepted: %v", got)
	}

	s.FailNextAuthorize("access_denied", 65004, "User declined to consent to access the app.")
	got = authorize(t, s, authQuery(clientID, redirect, "verifier", "s4"))
	if got.Get("error") != "access_denied" || got.Get("code") != "" {
		t.Errorf("FailNextAuthorize: got %v", got)
	}
	if got := authorize(t, s, authQuery(clientID, redirect, "verifier", "s5")); got.Get("code") == "" {
		t.Errorf("FailNextAuthorize lasted more than one request: %v", got)
	}

	// A bad client id or redirect URI is answered on the spot, never by
	// redirecting to a URI that cannot be trusted.
	for name, q := range map[string]url.Values{
		"client":   authQuery("other", redirect, "v", "s"),
		"redirect": authQuery(clientID, "http://evil.example/", "v", "s"),
	} {
		resp, err := noRedirect.Get(s.AuthURL("common") + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	resp, err := http.Get(s.TokenURL("common"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET token endpoint: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	st, m := post(t, s.TokenURL("common"), url.Values{"client_id": {"nobody"}, "grant_type": {"refresh_token"}})
	wantError(t, st, m, 400, "unauthorized_client", 700016)
	st, m = post(t, s.TokenURL("common"), url.Values{"client_id": {clientID}, "client_secret": {"x"}, "grant_type": {"refresh_token"}})
	wantError(t, st, m, 400, "invalid_client", 700025)
	st, m = post(t, s.TokenURL("common"), url.Values{"client_id": {clientID}, "grant_type": {"password"}})
	wantError(t, st, m, 400, "unsupported_grant_type", 70003)
	if n := s.TokenRequests(); n != 4 {
		t.Errorf("TokenRequests = %d, want 4", n)
	}
}
