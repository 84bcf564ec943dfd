package graphtest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/graphtest"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const user = "adele@contoso.example"

// graphToken mints a Graph token for user with scopes through the
// platform's refresh grant.
func graphToken(t *testing.T, ts *tokenstest.Server, scopes ...string) string {
	t.Helper()
	_, rt, _ := ts.Issue(user)
	ts.GrantConsent(user, scopes...)
	resp, err := http.PostForm(ts.TokenURL("common"), url.Values{"grant_type": {"refresh_token"}, "client_id": {"c"},
		"refresh_token": {rt}, "scope": {strings.Join(scopes, " ")}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	if m.AccessToken == "" {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	return m.AccessToken
}

func send(t *testing.T, g *graphtest.Server, path, token string, mime []byte) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.URL()+path, strings.NewReader(base64.StdEncoding.EncodeToString(mime)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.String()
}

func TestSendMail(t *testing.T) {
	ts := tokenstest.New(tokenstest.Options{})
	defer ts.Close()
	g := graphtest.New(graphtest.Options{Tokens: ts})
	defer g.Close()
	tok := graphToken(t, ts, tokenstest.GraphResource+"/Mail.Send", tokenstest.GraphResource+"/User.Read")
	msg := []byte("From: " + user + "\r\nTo: a@x.example\r\nBcc: hidden@x.example,\r\n other@x.example\r\nSubject: hi\r\n\r\nbody\r\nBcc: not a header\r\n")

	resp, body := send(t, g, "/me/sendMail", tok, msg)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("sendMail: %d %s", resp.StatusCode, body)
	}
	sent := g.Sent()
	if len(sent) != 1 || !bytes.Equal(sent[0].MIME, msg) {
		t.Fatalf("recorded %d messages", len(sent))
	}
	if want := []string{"a@x.example", "hidden@x.example", "other@x.example"}; !slices.Equal(sent[0].Recipients, want) {
		t.Errorf("recipients %v, want %v", sent[0].Recipients, want)
	}
	if d := string(sent[0].Delivered); strings.Contains(d, "hidden@") || strings.Contains(d, "other@") || !strings.Contains(d, "Bcc: not a header") {
		t.Errorf("delivered copy:\n%s", d)
	}

	// An Outlook token is for another audience.
	at, _, _ := ts.Issue(user)
	if resp, body := send(t, g, "/me/sendMail", at, msg); resp.StatusCode != 401 || !strings.Contains(body, "InvalidAuthenticationToken") {
		t.Errorf("Outlook token: %d %s", resp.StatusCode, body)
	}
	// Another sender without Send As.
	other := bytes.Replace(msg, []byte("From: "+user), []byte("From: boss@contoso.example"), 1)
	if resp, body := send(t, g, "/me/sendMail", tok, other); resp.StatusCode != 403 || !strings.Contains(body, "ErrorSendAsDenied") {
		t.Errorf("foreign From: %d %s", resp.StatusCode, body)
	}
	// A shared mailbox needs Mail.Send.Shared.
	if resp, body := send(t, g, "/users/shared@contoso.example/sendMail", tok, msg); resp.StatusCode != 403 || !strings.Contains(body, "ErrorAccessDenied") {
		t.Errorf("shared without Mail.Send.Shared: %d %s", resp.StatusCode, body)
	}
	// Throttling on demand, once.
	g.FailNext(1, graphtest.Throttled(7))
	if resp, _ := send(t, g, "/me/sendMail", tok, msg); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("throttled: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The 4 MB cap counts the base64.
	big := append(bytes.Clone(msg), bytes.Repeat([]byte("x"), 3<<20+512<<10)...)
	if resp, _ := send(t, g, "/me/sendMail", tok, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("4.7 MB of base64: %d", resp.StatusCode)
	}
	g.DisableREST(user)
	if resp, body := send(t, g, "/me/sendMail", tok, msg); resp.StatusCode != 404 || !strings.Contains(body, "MailboxNotEnabledForRESTAPI") {
		t.Errorf("mailbox without REST: %d %s", resp.StatusCode, body)
	}
	if n := len(g.Sent()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}
