package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestBrowserLoginSignedInAs: the sign-in asks for openid, profile and
// email, and SignedInAs reads who signed in from the ID token: the person
// asked for, or someone else when the browser was signed in to another
// account.
func TestBrowserLoginSignedInAs(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	b := &fakeBrowser{}
	tok, err := BrowserLogin(context.Background(), loginOptions(s, b, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	scope := strings.Fields(b.authURL.Query().Get("scope"))
	for _, want := range []string{"openid", "profile", "email", "offline_access"} {
		if !strings.Contains(" "+strings.Join(scope, " ")+" ", " "+want+" ") {
			t.Errorf("sign-in scope %q lacks %s", scope, want)
		}
	}
	if got := SignedInAs(tok); got != "adele@contoso.example" {
		t.Errorf("SignedInAs = %q, want the login_hint user", got)
	}

	s.SignInAs("carol@contoso.example")
	tok, err = BrowserLogin(context.Background(), loginOptions(s, &fakeBrowser{}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if got := SignedInAs(tok); got != "carol@contoso.example" {
		t.Errorf("SignedInAs = %q, want the browser's account, carol", got)
	}
}

// TestDeviceLoginSignedInAs: a device code approved as another user than
// the one asked for says so.
func TestDeviceLoginSignedInAs(t *testing.T) {
	s := deviceServer(tokenstest.Options{})
	defer s.Close()
	done := make(chan *oauth2.Token, 1)
	go func() {
		tok, err := DeviceLogin(context.Background(), deviceOptions(s, &lockedBuffer{}))
		if err != nil {
			t.Error(err)
		}
		done <- tok
	}()
	var codes []string
	for i := 0; i < 300 && len(codes) == 0; i++ {
		time.Sleep(5 * time.Millisecond)
		codes = s.PendingUserCodes()
	}
	if len(codes) != 1 {
		t.Fatalf("pending codes %v", codes)
	}
	if err := s.ApproveDevice(codes[0], "carol@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if got := SignedInAs(<-done); got != "carol@contoso.example" {
		t.Errorf("SignedInAs = %q, want carol (who approved the code), not the account asked for", got)
	}
}

func fakeJWT(claims map[string]string) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(b) + ".c2ln"
}

// TestSignedInAsFallbacks: without an ID token (a provider without OpenID
// Connect, a custom scope list) the access token's upn or unique_name
// says who it is for when it is a readable JWT; an opaque token says
// nothing.
func TestSignedInAsFallbacks(t *testing.T) {
	withID := func(at, id string) *oauth2.Token {
		return (&oauth2.Token{AccessToken: at}).WithExtra(map[string]any{"id_token": id})
	}
	for _, tc := range []struct {
		name string
		tok  *oauth2.Token
		want string
	}{
		{"preferred_username first", withID(fakeJWT(map[string]string{"upn": "at@x"}), fakeJWT(map[string]string{"preferred_username": "pu@x", "email": "em@x"})), "pu@x"},
		{"email without profile", withID("EwBopaque", fakeJWT(map[string]string{"email": "em@x"})), "em@x"},
		{"upn of the access token", &oauth2.Token{AccessToken: fakeJWT(map[string]string{"upn": "at@x", "unique_name": "un@x"})}, "at@x"},
		{"a guest's unique_name", &oauth2.Token{AccessToken: fakeJWT(map[string]string{"unique_name": "live.com#guest@outlook.example"})}, "guest@outlook.example"},
		{"a broken ID token", withID(fakeJWT(map[string]string{"upn": "at@x"}), "not.a-jwt"), "at@x"},
		{"an opaque access token", &oauth2.Token{AccessToken: "EwBopaque.token"}, ""},
		{"nothing", nil, ""},
	} {
		if got := SignedInAs(tc.tok); got != tc.want {
			t.Errorf("%s: SignedInAs = %q, want %q", tc.name, got, tc.want)
		}
	}
	// tokenstest's access tokens carry upn, like Entra's for Outlook.
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	at, _, _ := s.Issue("dave@contoso.example")
	if got := SignedInAs(&oauth2.Token{AccessToken: at}); got != "dave@contoso.example" {
		t.Errorf("tokenstest access token: %q", got)
	}
}

// FuzzSignedInAs: whatever the token endpoint sends as tokens, reading the
// name neither panics nor returns more than the tokens held.
func FuzzSignedInAs(f *testing.F) {
	f.Add(fakeJWT(map[string]string{"upn": "a@b"}), fakeJWT(map[string]string{"preferred_username": "c@d"}))
	f.Add("a.b.c", "..")
	f.Add("x.eyJ1cG4iOiIjIn0.y", "")
	f.Fuzz(func(t *testing.T, at, id string) {
		got := SignedInAs((&oauth2.Token{AccessToken: at}).WithExtra(map[string]any{"id_token": id}))
		if len(got) > len(at)+len(id) {
			t.Errorf("name of %d bytes from tokens of %d", len(got), len(at)+len(id))
		}
	})
}
