package integration

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// lineLogin logs in at a plain bridge listener with raw protocol lines
// and returns the reply to the login.
func lineLogin(t *testing.T, addr string, p bridge.Proto, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	// reply reads one reply; an SMTP reply ends at a line without "-".
	reply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil || p != bridge.SMTP || len(line) < 4 || line[3] != '-' {
				return strings.TrimRight(line, "\r\n")
			}
		}
	}
	reply()
	switch p {
	case bridge.POP3:
		fmt.Fprintf(c, "USER %s\r\n", user)
		reply()
		fmt.Fprintf(c, "PASS %s\r\n", pass)
	case bridge.SMTP:
		fmt.Fprintf(c, "EHLO test\r\n")
		reply()
		fmt.Fprintf(c, "AUTH PLAIN %s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
	}
	got := reply()
	fmt.Fprintf(c, "QUIT\r\n")
	return got
}

// TestTokenInvalidatedAtPlatform: Dovecot checks every XOAUTH2 login by
// asking the identity platform, which ends the user's access tokens
// before their expiry (as Continuous Access Evaluation does after a
// password change). The next IMAP, POP3 and SMTP login through the
// bridge each refresh once and succeed; no diagnosis is recorded, and
// the log says the token was refreshed and the login retried.
func TestTokenInvalidatedAtPlatform(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := dialBridgeIMAP(t, e)
	if err := first.c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
		if n := e.idp.InvalidateAccess(e.user); n == 0 {
			t.Fatalf("%s: no access token to invalidate", p)
		}
		before := e.idp.RefreshRequests()
		switch p {
		case bridge.IMAP:
			s := dialBridgeIMAP(t, e)
			if _, err := s.c.Select("INBOX", nil).Wait(); err != nil {
				t.Errorf("SELECT after the retried login: %v", err)
			}
			s.c.Logout().Wait()
		case bridge.POP3:
			if got := lineLogin(t, e.ep.pop3, p, e.user, e.password); !strings.HasPrefix(got, "+OK") {
				t.Errorf("POP3 login after the platform ended the token: %q", got)
			}
		case bridge.SMTP:
			if got := lineLogin(t, e.ep.smtp, p, e.user, e.password); !strings.HasPrefix(got, "235") {
				t.Errorf("SMTP login after the platform ended the token: %q", got)
			}
		}
		if n := e.idp.RefreshRequests() - before; n != 1 {
			t.Errorf("%s: %d refreshes, want 1", p, n)
		}
	}
	for _, a := range e.srv.Bridge().Status().Accounts {
		if len(a.Last) != 0 {
			t.Errorf("status of %s shows diagnoses %v for tokens that were only stale", a.Email, a.Last)
		}
	}
	if n := strings.Count(string(e.logs.Bytes()), "token refused; refreshed and retried: ok"); n != 3 {
		t.Errorf("the log says the login was retried %d times, want 3", n)
	}
}
