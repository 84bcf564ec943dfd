package tokenstest_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// payload decodes a JWT's claims.
func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestIDTokenAndSignInAs: a sign-in asking for openid gets an ID token
// naming who signed in (preferred_username with profile, email with
// email); SignInAs makes the browser sign someone else in whatever
// login_hint says.
func TestIDTokenAndSignInAs(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	const redirect = "http://localhost:4711/"
	verifier := strings.Repeat("v", 43)
	signIn := func(scope string) map[string]any {
		t.Helper()
		q := authQuery(clientID, redirect, verifier, "st")
		q.Set("scope", scope)
		code := authorize(t, s, q).Get("code")
		st, m := post(t, s.TokenURL("common"), codeForm(clientID, code, redirect, verifier))
		if st != 200 {
			t.Fatalf("exchange: %d %v", st, m["error_description"])
		}
		return m
	}

	m := signIn(mailScope)
	if _, ok := m["id_token"]; ok {
		t.Error("an ID token without openid")
	}
	m = signIn(mailScope + " openid profile email")
	id, _ := m["id_token"].(string)
	c := payload(t, id)
	if c["preferred_username"] != "Adele@Contoso.example" || c["email"] != "Adele@Contoso.example" || c["aud"] != clientID || c["tid"] != s.TenantID() || c["ver"] != "2.0" {
		t.Errorf("ID token claims %v", c)
	}
	if !strings.Contains(m["scope"].(string), "IMAP.AccessAsUser.All") {
		t.Errorf("scope %q", m["scope"])
	}
	if c := payload(t, signIn(mailScope + " openid")["id_token"].(string)); c["preferred_username"] != nil || c["email"] != nil {
		t.Errorf("openid alone names the user: %v", c)
	}

	s.SignInAs("carol@contoso.example")
	m = signIn(mailScope + " openid profile")
	if c := payload(t, m["id_token"].(string)); c["preferred_username"] != "carol@contoso.example" {
		t.Errorf("SignInAs: ID token for %v", c["preferred_username"])
	}
	if err := s.Validate("carol@contoso.example", m["access_token"].(string)); err != nil {
		t.Errorf("SignInAs: access token: %v", err)
	}
	s.SignInAs("")
	if c := payload(t, signIn(mailScope + " openid profile")["id_token"].(string)); c["preferred_username"] != "Adele@Contoso.example" {
		t.Errorf("after SignInAs(\"\"): %v", c["preferred_username"])
	}
}

// TestDeviceSignInAs: DevicePolls approves device codes for the SignInAs
// user; the ID token says so.
func TestDeviceSignInAs(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{DeviceInterval: 1, TimeUnit: unit, DevicePolls: 1, User: "bob@example.com"})
	defer s.Close()
	s.SignInAs("carol@example.com")
	st, m := post(t, s.DeviceURL("common"), map[string][]string{"client_id": {clientID}, "scope": {mailScope + " openid profile"}})
	if st != 200 {
		t.Fatalf("devicecode: %d %v", st, m)
	}
	time.Sleep(2 * unit)
	st, m = poll(t, s, m["device_code"].(string))
	if st != 200 {
		t.Fatalf("poll: %d %v", st, m["error"])
	}
	if c := payload(t, m["id_token"].(string)); c["preferred_username"] != "carol@example.com" {
		t.Errorf("device code approved for %v", c["preferred_username"])
	}
}
