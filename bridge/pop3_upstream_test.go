package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// TestPOP3UpstreamLoginErrorChallenge: the credentials of a 1.8 KB token
// follow the "+" (never on the AUTH line), the "+" carrying the server's
// JSON error report gets an empty line, and the -ERR after it is the
// refusal.
func TestPOP3UpstreamLoginErrorChallenge(t *testing.T) {
	const user = "shared@example.com"
	token := "eyJ0eXAiOiJKV1QifQ." + strings.Repeat("b", 1800-19-43) + "." + strings.Repeat("s", 42)
	c := &scriptConn{r: strings.NewReader("+OK Dovecot ready.\r\n+ \r\n" +
		"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n-ERR [AUTH] Authentication failed.\r\n")}
	_, err := POP3UpstreamLogin(context.Background(), c, user, token)
	var f *diag.Failure
	if !errors.As(err, &f) || f.Err != nil || f.Stage != "auth" || f.Text != "-ERR [AUTH] Authentication failed." {
		t.Fatalf("err = %v, want the refusal with the server's line", err)
	}
	want := "AUTH XOAUTH2\r\n" + string(xoauth2.Encoded(user, token)) + "\r\n\r\n"
	if got := c.w.String(); got != want {
		t.Errorf("the bridge sent %.100q...; want AUTH XOAUTH2, the credentials, an empty line", got)
	}
}

func TestPOP3UpstreamLoginAccepted(t *testing.T) {
	c := &scriptConn{r: strings.NewReader("+OK ready\r\n+\r\n+OK Logged in.\r\n+OK 2 320\r\n")}
	br, err := POP3UpstreamLogin(context.Background(), c, "a@b.test", "T0K")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	// What the server sent after the +OK is still there for the relay.
	if rest, _ := br.ReadString('\n'); rest != "+OK 2 320\r\n" {
		t.Errorf("reader holds %q after the login", rest)
	}
}
