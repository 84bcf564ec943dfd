package tokenstest_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const graphSend = tokenstest.GraphResource + "/Mail.Send"

// A refresh token mints Graph tokens only once the user (or an
// administrator) consented to the Graph scope; before, Microsoft wants the
// consent prompt (AADSTS65001). The tokens name Graph as their audience,
// and the rotated refresh token still mints Outlook tokens.
func TestGraphTokensNeedConsent(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	_, rt0, _ := s.Issue("a@example.com")

	f := refreshForm(clientID, rt0)
	f.Set("scope", graphSend+" offline_access")
	st, m := post(t, s.TokenURL("common"), f)
	wantError(t, st, m, 400, "invalid_grant", 65001)

	s.GrantConsent("A@example.com", graphSend)
	st, m = post(t, s.TokenURL("common"), f)
	if st != 200 {
		t.Fatalf("after consent: %d %v", st, m["error_description"])
	}
	info, err := s.Check(m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if info.Audience != tokenstest.GraphResource || !slices.Equal(info.Scopes, []string{"Mail.Send"}) || info.User != "a@example.com" {
		t.Errorf("Graph token: %+v", info)
	}

	rt1 := m["refresh_token"].(string)
	st, m = post(t, s.TokenURL("common"), refreshForm(clientID, rt1))
	if st != 200 {
		t.Fatalf("Outlook token from the Graph refresh's refresh token: %d %v", st, m["error_description"])
	}
	if info, _ := s.Check(m["access_token"].(string)); info.Audience != "https://outlook.office.com" {
		t.Errorf("Outlook token's audience %q", info.Audience)
	}
	if _, err := s.Check("nope"); !errors.Is(err, tokenstest.ErrUnknownToken) {
		t.Errorf("Check of an unknown token: %v", err)
	}
}
