package doctor

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// jwt builds an unsigned JWT-shaped token with claims.
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString([]byte("sig"))
}

func TestParseClaims(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := jwt(t, map[string]any{
		"aud": []string{"https://outlook.office.com", "other"}, "scp": "IMAP.AccessAsUser.All SMTP.Send",
		"preferred_username": "a@b.test", "tid": "t-1", "exp": exp.Unix(),
	})
	c, ok := ParseClaims(tok)
	if !ok {
		t.Fatal("a JWT was taken for opaque")
	}
	if c.Audience != "https://outlook.office.com other" || c.User != "a@b.test" || c.Tenant != "t-1" ||
		!c.Expiry.Equal(exp) || len(c.Scopes) != 2 || c.Scopes[1] != "SMTP.Send" {
		t.Errorf("claims %+v", c)
	}
	// upn wins over preferred_username.
	if c, _ := ParseClaims(jwt(t, map[string]any{"upn": "u@b.test", "preferred_username": "p@b.test"})); c.User != "u@b.test" {
		t.Errorf("user %q, want the upn", c.User)
	}
	for _, opaque := range []string{"EwBwA8l6BAAUkj1oV7bstmTWSe0", "a.b", "x.!!!.y", base64.RawURLEncoding.EncodeToString([]byte("x")) + ".bm90IGpzb24.c"} {
		if _, ok := ParseClaims(opaque); ok {
			t.Errorf("%q read as a JWT", opaque)
		}
	}
}

func TestCheckClaims(t *testing.T) {
	now := time.Now()
	a := &bridge.Account{Email: "a@b.test", Mailbox: "a@b.test"}
	all := []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP}
	good := jwt(t, map[string]any{"upn": "A@B.test", "scp": "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send", "exp": now.Add(time.Hour).Unix()})
	if s := checkClaims(good, a, all, now); s.Status != Pass || !strings.Contains(s.Detail, "in 1 h") {
		t.Errorf("good token: %s %q", s.Status, s.Detail)
	}

	other := jwt(t, map[string]any{"upn": "admin@b.test", "scp": "IMAP.AccessAsUser.All", "exp": now.Add(time.Hour).Unix()})
	s := checkClaims(other, a, all, now)
	if s.Status != Warn || s.Diagnosis == nil || s.Diagnosis.ID != "token-user-mismatch" || !strings.Contains(s.Diagnosis.Fix, "bridge login a@b.test") {
		t.Errorf("token of another user: %s %+v", s.Status, s.Diagnosis)
	}

	// Only the protocols checked count: without POP, its scope may lack.
	noPOP := jwt(t, map[string]any{"upn": "a@b.test", "scp": "IMAP.AccessAsUser.All SMTP.Send"})
	if s := checkClaims(noPOP, a, []bridge.Proto{bridge.IMAP, bridge.SMTP}, now); s.Status != Pass {
		t.Errorf("POP not checked: %s %+v", s.Status, s.Diagnosis)
	}
	s = checkClaims(noPOP, a, all, now)
	if s.Status != Warn || s.Diagnosis.ID != "token-scope-missing" || !strings.Contains(s.Diagnosis.Cause, "POP.AccessAsUser.All") {
		t.Errorf("POP scope missing: %s %+v", s.Status, s.Diagnosis)
	}

	if s := checkClaims("EwB-opaque-token", a, all, now); s.Status != Pass || !strings.Contains(s.Detail, "opaque") {
		t.Errorf("opaque token: %s %q", s.Status, s.Detail)
	}
}
