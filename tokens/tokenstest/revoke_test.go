package tokenstest_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestInvalidateAccess: the user's access tokens issued so far stop
// working; the refresh token still refreshes, and what it brings works;
// other users are not touched.
func TestInvalidateAccess(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	old, rt, _ := s.Issue("e@example.com")
	other, _, _ := s.Issue("f@example.com")
	if n := s.InvalidateAccess("E@example.com"); n != 1 {
		t.Errorf("InvalidateAccess invalidated %d tokens, want 1", n)
	}
	if err := s.Validate("e@example.com", old); !errors.Is(err, tokenstest.ErrRevoked) {
		t.Errorf("Validate of an invalidated token: %v", err)
	}
	if _, m := post(t, s.IntrospectURL(), url.Values{"token": {old}}); m["active"] != false || len(m) != 1 {
		t.Errorf("invalidated token introspected as %v", m)
	}
	if err := s.Validate("f@example.com", other); err != nil {
		t.Errorf("another user's token: %v", err)
	}
	st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt))
	if st != 200 {
		t.Fatalf("refresh after InvalidateAccess: %d %v", st, m["error_codes"])
	}
	if err := s.Validate("e@example.com", m["access_token"].(string)); err != nil {
		t.Errorf("the access token a refresh brings after InvalidateAccess: %v", err)
	}
}

// TestRevokeSessions: every token of the user stops working, the refresh
// tokens with AADSTS50173; a new sign-in works.
func TestRevokeSessions(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	at, rt, _ := s.Issue("e@example.com")
	s.RevokeSessions("e@example.com")
	if err := s.Validate("e@example.com", at); !errors.Is(err, tokenstest.ErrRevoked) {
		t.Errorf("Validate of a revoked session's access token: %v", err)
	}
	st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt))
	if st != 400 || m["error"] != "invalid_grant" || !hasCode(m, 50173) {
		t.Errorf("refresh after RevokeSessions: %d %v %v, want 400 invalid_grant AADSTS50173", st, m["error"], m["error_codes"])
	}
	at2, rt2, _ := s.Issue("e@example.com")
	if err := s.Validate("e@example.com", at2); err != nil {
		t.Errorf("a new sign-in's access token: %v", err)
	}
	if st, _ := post(t, s.TokenURL("common"), refreshForm(clientID, rt2)); st != 200 {
		t.Errorf("a new sign-in's refresh token: %d", st)
	}
}

func hasCode(m map[string]any, code int) bool {
	codes, _ := m["error_codes"].([]any)
	for _, c := range codes {
		if n, ok := c.(float64); ok && int(n) == code {
			return true
		}
	}
	return false
}
