package tokenstest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const mailScope = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access"

// post sends a form and decodes the JSON answer.
func post(t *testing.T, u string, v url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decoding answer: %v", err)
	}
	return resp.StatusCode, m
}

// wantError checks a Microsoft-shaped error body.
func wantError(t *testing.T, status int, m map[string]any, wantStatus int, code string, aadsts int) {
	t.Helper()
	if status != wantStatus || m["error"] != code {
		t.Fatalf("got %d %v (%v), want %d %s", status, m["error"], m["error_description"], wantStatus, code)
	}
	codes, _ := m["error_codes"].([]any)
	if aadsts != 0 && (len(codes) != 1 || codes[0] != float64(aadsts)) {
		t.Errorf("error_codes %v, want [%d]", m["error_codes"], aadsts)
	}
	desc, _ := m["error_description"].(string)
	if aadsts != 0 && !strings.HasPrefix(desc, "AADSTS"+itoa(aadsts)+": ") {
		t.Errorf("error_description %q does not start with AADSTS%d", desc, aadsts)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("error body lacks %s", k)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// noRedirect is a client that shows the authorize endpoint's redirect
// instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize runs the authorize endpoint and returns the redirect's query.
func authorize(t *testing.T, s *tokenstest.Server, q url.Values) url.Values {
	t.Helper()
	resp, err := noRedirect.Get(s.AuthURL("common") + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func authQuery(clientID, redirect, verifier, state string) url.Values {
	return url.Values{
		"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {mailScope}, "state": {state}, "login_hint": {"Adele@Contoso.example"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"},
	}
}

func codeForm(clientID, code, redirect, verifier string) url.Values {
	return url.Values{
		"client_id": {clientID}, "grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier},
	}
}

func refreshForm(clientID, rt string) url.Values {
	return url.Values{"client_id": {clientID}, "grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {mailScope}}
}
