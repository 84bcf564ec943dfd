package integration

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailbridge/bridge/tokens"
)

// imapSession is a go-imap client logged in through the bridge's STARTTLS
// listener, reporting every EXISTS count the server sends.
type imapSession struct {
	c      *imapclient.Client
	exists chan uint32
}

func dialBridgeIMAP(t *testing.T, e *env) *imapSession {
	t.Helper()
	s := &imapSession{exists: make(chan uint32, 64)}
	c, err := imapclient.DialStartTLS(e.ep.imap, &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: e.ca.Pool, ServerName: "127.0.0.1"},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.exists <- *d.NumMessages:
					default:
					}
				}
			},
		},
	})
	if err != nil {
		t.Fatalf("dialing the bridge's IMAP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(e.user, e.password).Wait(); err != nil {
		t.Fatalf("LOGIN through the bridge: %v", err)
	}
	s.c = c
	return s
}

// waitExists waits until the server reports at least n messages.
func (s *imapSession) waitExists(t *testing.T, n uint32, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case got := <-s.exists:
			if got >= n {
				return
			}
		case <-timer.C:
			t.Fatalf("no EXISTS %d within %s", n, d)
		}
	}
}

// fetchRaw fetches one message's full text without setting \Seen.
func (s *imapSession) fetchRaw(t *testing.T, seq uint32) []byte {
	t.Helper()
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := s.c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH %d: %v (%d messages)", seq, err, len(msgs))
	}
	return msgs[0].FindBodySection(sec)
}

// TestIdleSeesDelivery keeps a client in IDLE through the bridge while a
// second client (curl, through the bridge's SMTP and Dovecot's submission
// service to the sink, which delivers locally) sends a message; the idle
// client must be told of it and fetch it intact.
func TestIdleSeesDelivery(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	e := newEnv(t)
	s := dialBridgeIMAP(t, e)
	sel, err := s.c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != len(e.seed) {
		t.Fatalf("INBOX has %d messages, want %d", sel.NumMessages, len(e.seed))
	}
	idle, err := s.c.Idle()
	if err != nil {
		t.Fatalf("IDLE through the bridge: %v", err)
	}

	home := clientDir(t)
	msg := newMessage(e.user, e.user, "Delivered during IDLE", "This arrived while another client was idling.\n")
	file := filepath.Join(home, "msg.eml")
	writeFile(t, file, msg.raw, 0o600)
	mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "--mail-from", e.user, "--mail-rcpt", e.user,
		"--upload-file", file, "smtp://"+e.ep.smtp)...)

	n := uint32(len(e.seed) + 1)
	s.waitExists(t, n, 20*time.Second)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("ending IDLE: %v", err)
	}
	raw := s.fetchRaw(t, n)
	if got := subjectOf(raw); got != msg.subject {
		t.Errorf("new message subject %q, want %q", got, msg.subject)
	}
	sameBody(t, "message delivered during IDLE", bodyOf(raw), msg.body())
	if err := s.c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}

// TestSessionOutlivesTokenRefresh gives access tokens a 3-second life. A
// session logged in with the first token keeps working after that token
// expires (Dovecot, like the bridge's relay, does not end it); the next
// login makes the bridge refresh, save the rotated refresh token, and log
// in upstream with the new access token, which Dovecot accepts while it
// would refuse the expired one.
func TestSessionOutlivesTokenRefresh(t *testing.T) {
	t.Parallel()
	const life = 3 * time.Second
	up := startUpstream(t, tokensOptions())
	up.idp.SetLifetime(life)
	e := startBridgeFor(t, up)

	r0 := up.idp.RefreshRequests()
	a := dialBridgeIMAP(t, e)
	if _, err := a.c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	r1 := up.idp.RefreshRequests()
	if r1 <= r0 {
		t.Fatalf("the first login made no refresh request (%d before, %d after)", r0, r1)
	}
	rt1 := up.idp.LatestRefresh(e.user)

	time.Sleep(life + 500*time.Millisecond)

	// The first session's token has expired; the session goes on.
	if err := a.c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP on the first session after its token expired: %v", err)
	}
	if got := subjectOf(a.fetchRaw(t, 1)); got != e.seed[0].subject {
		t.Errorf("first session after expiry fetched %q, want %q", got, e.seed[0].subject)
	}

	// A second login needs, and gets, a fresh token.
	b := dialBridgeIMAP(t, e)
	sel, err := b.c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("second session after the refresh: %v", err)
	}
	if int(sel.NumMessages) != len(e.seed) {
		t.Errorf("second session sees %d messages, want %d", sel.NumMessages, len(e.seed))
	}
	r2 := up.idp.RefreshRequests()
	if r2 <= r1 {
		t.Errorf("the second login made no refresh request (%d before, %d after)", r1, r2)
	}
	rt2 := up.idp.LatestRefresh(e.user)
	if rt2 == rt1 {
		t.Errorf("the refresh token was not rotated")
	}
	st, err := tokens.OpenStore("file", filepath.Join(e.files.dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ent, err := st.Get(e.user); err != nil {
		t.Fatal(err)
	} else if ent.RefreshToken != rt2 {
		t.Errorf("the store does not hold the newest refresh token")
	}

	// Both sessions, old and new, see a new delivery.
	if err := e.dc.mail.deliver(newMessage("eve@example.org", e.user, "After the refresh", "Seen by both sessions.\n")); err != nil {
		t.Fatal(err)
	}
	want := uint32(len(e.seed) + 1)
	for name, s := range map[string]*imapSession{"first": a, "second": b} {
		deadline := time.Now().Add(15 * time.Second)
		var got uint32
		for time.Now().Before(deadline) {
			if err := s.c.Noop().Wait(); err != nil {
				t.Fatalf("%s session NOOP: %v", name, err)
			}
			if mb := s.c.Mailbox(); mb != nil {
				got = mb.NumMessages
			}
			if got >= want {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%s session sees %d messages after a delivery, want %d", name, got, want)
		}
	}
}
