package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestToken: POST /token hands out the running bridge's access token,
// refreshing once and then from memory; a refusal keeps its needs-login
// and platform parts; an unknown account says so. Over both transports.
func TestToken(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) { testToken(t, tcp) })
	}
}

func testToken(t *testing.T, tcp bool) {
	idp := tokenstest.New(tokenstest.Options{RevokeOnRotate: true})
	t.Cleanup(idp.Close)
	f := newFixtureWith(t, tcp, func(path string) {
		body := "[listen]\nimap = \"127.0.0.1:0\"\nsmtp = \"\"\npop3 = \"\"\n"
		for _, e := range []string{"a@example.com", "gone@example.com"} {
			body += fmt.Sprintf("\n[[account]]\nemail = %q\nclient_id = \"test-client\"\ntoken_url = %q\n", e, idp.TokenURL("common"))
		}
		body += "\n[[account]]\nemail = \"shared@example.com\"\ntoken_from = \"a@example.com\"\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	_, rt, _ := idp.Issue("a@example.com")
	if err := f.store.Put("a@example.com", tokens.Entry{RefreshToken: rt}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tok, err := f.client.Token(ctx, "A@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Account != "a@example.com" || tok.TokenAccount != "a@example.com" || tok.AccessToken == "" || time.Until(tok.Expiry) < 30*time.Minute {
		t.Errorf("token %+v", tok)
	}
	if err := idp.Validate("a@example.com", tok.AccessToken); err != nil {
		t.Errorf("the token does not work: %v", err)
	}
	// A shared mailbox gets its delegate's token, from memory.
	again, err := f.client.Token(ctx, "shared@example.com")
	if err != nil || again.AccessToken != tok.AccessToken || again.TokenAccount != "a@example.com" {
		t.Errorf("shared mailbox: %+v, %v", again, err)
	}
	if n := idp.RefreshRequests(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}

	_, err = f.client.Token(ctx, "nobody@example.com")
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, bridge.ErrNoAccount) || !strings.Contains(err.Error(), "nobody@example.com") {
		t.Errorf("unknown account: %v", err)
	}

	// gone@ has no sign-in; then a platform refusal keeps its parts.
	_, err = f.client.Token(ctx, "gone@example.com")
	if !errors.Is(err, tokens.ErrNeedsLogin) || errors.Is(err, bridge.ErrNoAccount) {
		t.Errorf("no sign-in: %v", err)
	}
	_, rt2, _ := idp.Issue("gone@example.com")
	if err := f.store.Put("gone@example.com", tokens.Entry{RefreshToken: rt2}); err != nil {
		t.Fatal(err)
	}
	f.srv.Bridge().Reload()
	idp.FailNext(1, tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity."))
	_, err = f.client.Token(ctx, "gone@example.com")
	var pe *tokens.Error
	if !errors.Is(err, tokens.ErrNeedsLogin) || !errors.As(err, &pe) || pe.AADSTS != 700082 || pe.Code != "invalid_grant" {
		t.Errorf("refused refresh: %v (platform %+v)", err, pe)
	}
	if strings.Contains(err.Error(), rt2) || strings.Contains(err.Error(), rt) {
		t.Error("the error holds a refresh token")
	}
}
