package bridgetest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailbridge/bridge/internal/xoauth2"
)

const imapAlice = "imapAlice@example.com"

var imapTestMsg = []byte("From: bob@example.com\r\nTo: imapAlice@example.com\r\nSubject: hello\r\n\r\nHi Alice.\r\n")

// newTestIMAP starts an IMAP imitation over TLS with imapAlice's mailbox and
// returns it with a client TLS config that trusts it.
func newTestIMAP(t *testing.T, o IMAPOptions) (*IMAP, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := selfSignedTLS(t)
	o.TLS = serverTLS
	if o.Validate == nil {
		o.Validate = goodTokenOnly
	}
	o.Users = append(o.Users, imapAlice)
	s, err := NewIMAP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, clientTLS
}

func dialIMAP(t *testing.T, s *IMAP, cfg *tls.Config, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(s.Addr(), &imapclient.Options{TLSConfig: cfg, UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIMAPXOAUTH2SelectFetch(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	if err := s.Append(imapAlice, "INBOX", imapTestMsg); err != nil {
		t.Fatal(err)
	}
	c := dialIMAP(t, s, cfg, nil)
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, "AUTH=XOAUTH2", "AUTH=PLAIN", imap.CapSASLIR} {
		if !caps.Has(want) {
			t.Errorf("pre-auth caps %v lack %s", caps, want)
		}
	}
	if err := c.Authenticate(xoauth2.OneStep(imapAlice, "good-"+imapAlice)); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIdle, imap.CapMove, imap.CapUIDPlus, imap.CapNamespace, imap.CapLiteralPlus, imap.CapChildren, imap.CapUnselect} {
		if !caps.Has(want) {
			t.Errorf("post-auth caps %v lack %s", caps, want)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("INBOX has %d messages, want 1", sel.NumMessages)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Envelope: true, UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Envelope.Subject != "hello" || !bytes.Equal(msgs[0].BodySection[0].Bytes, imapTestMsg) {
		t.Fatalf("fetched %+v", msgs)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hello"}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if uids := found.AllUIDs(); len(uids) != 1 || uids[0] != msgs[0].UID {
		t.Fatalf("search found %v, want [%d]", uids, msgs[0].UID)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Archive").Wait(); err != nil {
		t.Fatalf("MOVE: %v", err)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.NumMessages == nil || *st.NumMessages != 1 {
		t.Fatalf("Archive after MOVE: %+v", st)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if s.Connections() != 1 || s.Logins() != 1 || s.FailedLogins() != 0 {
		t.Errorf("counters: conns %d logins %d failed %d, want 1 1 0", s.Connections(), s.Logins(), s.FailedLogins())
	}
}

func TestIMAPBadTokenClient(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	c := dialIMAP(t, s, cfg, nil)
	err := c.Authenticate(xoauth2.OneStep(imapAlice, "expired"))
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo || imapErr.Text != "AUTHENTICATE failed." {
		t.Fatalf("Authenticate with a bad token: %v, want NO AUTHENTICATE failed.", err)
	}
	if s.Logins() != 0 || s.FailedLogins() != 1 {
		t.Errorf("counters: logins %d failed %d, want 0 1", s.Logins(), s.FailedLogins())
	}
}

// TestIMAPWire checks Exchange's texts byte for byte.
func TestIMAPWire(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	w := dialLines(t, s.Addr(), cfg)
	greet := w.expectPrefix("* OK The Microsoft Exchange IMAP4 service is ready. [")
	if !strings.HasSuffix(greet, "]") {
		t.Errorf("greeting %q", greet)
	}
	w.send("a1 CAPABILITY")
	capLine := w.expectPrefix("* CAPABILITY IMAP4rev1 ")
	for _, c := range []string{" AUTH=XOAUTH2", " AUTH=PLAIN", " SASL-IR"} {
		if !strings.Contains(capLine, c) {
			t.Errorf("%q lacks %q", capLine, c)
		}
	}
	w.expectPrefix("a1 OK")
	w.send("a2 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-bob"))
	w.expect("a2 NO AUTHENTICATE failed.")
	w.send("a3 LOGIN imapAlice@example.com secret")
	w.expect("a3 NO LOGIN failed.")
	w.send("a4 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
	w.expect("a4 NO AUTHENTICATE failed.")
	w.send("a5 AUTHENTICATE XOAUTH2 " + xoauth2B64("", "x"))
	w.expect("a5 NO AUTHENTICATE failed.")
	if s.FailedLogins() != 4 || s.Logins() != 0 {
		t.Fatalf("counters: failed %d logins %d, want 4 0", s.FailedLogins(), s.Logins())
	}
	// Without SASL-IR: empty challenge, then the blob on its own line.
	w.send("a6 AUTHENTICATE XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expectPrefix("a6 OK ")
	w.send("a7 LOGOUT")
	w.expectPrefix("* BYE")
	w.expectPrefix("a7 OK")
	if s.Logins() != 1 {
		t.Fatalf("logins %d, want 1", s.Logins())
	}
}

func TestIMAPModeDisabled(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{Mode: Disabled})
	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("* OK ")
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expect("a1 NO AUTHENTICATE failed.")
	s.SetMode(Normal)
	w.send("a2 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expectPrefix("a2 OK ")
	if s.FailedLogins() != 1 || s.Logins() != 1 {
		t.Fatalf("counters: failed %d logins %d, want 1 1", s.FailedLogins(), s.Logins())
	}
}

func TestIMAPModeNotConnected(t *testing.T) {
	for _, cmd := range []string{
		"SELECT INBOX", "EXAMINE INBOX", `LIST "" "*"`, `LSUB "" "*"`, "NAMESPACE", "STATUS INBOX (MESSAGES)",
	} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			checkNoGoroutineLeak(t)
			s, cfg := newTestIMAP(t, IMAPOptions{Mode: NotConnected})
			w := dialLines(t, s.Addr(), cfg)
			w.expectPrefix("* OK ")
			w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
			w.expectPrefix("a1 OK ")
			w.send("a2 NOOP")
			w.expectPrefix("a2 OK")
			w.send("a3 " + cmd)
			w.expect("a3 BAD User is authenticated but not connected.")
			w.expect("* BYE Connection closed. 14")
			w.expectEOF()
		})
	}
}

func TestIMAPModeNotConnectedBye(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{Mode: NotConnectedBye})
	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("* OK ")
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expect("a1 OK AUTHENTICATE completed.")
	w.expect("* BYE User is authenticated but not connected.")
	w.expectEOF()
	if s.Logins() != 1 {
		t.Errorf("%d logins, want 1", s.Logins())
	}
}

func TestIMAPModeTokenExpiredAfterDelay(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{Mode: TokenExpiredMidSession, ExpireAfter: 200 * time.Millisecond})
	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("* OK ")
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expectPrefix("a1 OK ")
	w.send("a2 SELECT INBOX")
	w.expectPrefix("* ")
	for l := w.line(); !strings.HasPrefix(l, "a2 "); l = w.line() {
	}
	start := time.Now()
	w.expect("* BYE Session invalidated - AccessTokenExpired")
	w.expectEOF()
	if time.Since(start) > 4*time.Second {
		t.Errorf("BYE came after %v", time.Since(start))
	}
}

func TestIMAPExpireSessions(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	authed := dialLines(t, s.Addr(), cfg)
	authed.expectPrefix("* OK ")
	authed.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	authed.expectPrefix("a1 OK ")
	idle := dialLines(t, s.Addr(), cfg) // not authenticated: must survive
	idle.expectPrefix("* OK ")

	s.ExpireSessions()
	authed.expect("* BYE Session invalidated - AccessTokenExpired")
	authed.expectEOF()
	idle.send("b1 NOOP")
	idle.expectPrefix("b1 OK")
}

func TestIMAPIdleSeesAppend(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	if err := s.Append(imapAlice, "INBOX", imapTestMsg); err != nil {
		t.Fatal(err)
	}
	exists := make(chan uint32, 8)
	watcher := dialIMAP(t, s, cfg, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- *d.NumMessages:
				default:
				}
			}
		},
	})
	if err := watcher.Authenticate(xoauth2.OneStep(imapAlice, "good-"+imapAlice)); err != nil {
		t.Fatal(err)
	}
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := watcher.Idle()
	if err != nil {
		t.Fatal(err)
	}

	writer := dialIMAP(t, s, cfg, nil)
	if err := writer.Authenticate(xoauth2.OneStep(imapAlice, "good-"+imapAlice)); err != nil {
		t.Fatal(err)
	}
	imapAppend(t, writer, "INBOX", []byte("Subject: second\r\n\r\nbody\r\n"))

	select {
	case n := <-exists:
		if n != 2 {
			t.Errorf("IDLE saw EXISTS %d, want 2", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("IDLE saw no EXISTS after APPEND from another connection")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

func imapAppend(t *testing.T, c *imapclient.Client, mbox string, msg []byte) {
	t.Helper()
	cmd := c.Append(mbox, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
}

func TestIMAPLargeMessage(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{})
	var b bytes.Buffer
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < 20<<20; i++ {
		fmt.Fprintf(&b, "%08d the quick brown fox jumps over the lazy dog 0123456789\r\n", i)
	}
	big := b.Bytes()
	c := dialIMAP(t, s, cfg, nil)
	if err := c.Authenticate(xoauth2.OneStep(imapAlice, "good-"+imapAlice)); err != nil {
		t.Fatal(err)
	}
	imapAppend(t, c, "INBOX", big)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].RFC822Size != int64(len(big)) || !bytes.Equal(msgs[0].BodySection[0].Bytes, big) {
		t.Fatalf("20 MB message did not round-trip (got %d messages)", len(msgs))
	}
}

func TestIMAPCloseEndsSessions(t *testing.T) {
	checkNoGoroutineLeak(t)
	serverTLS, clientTLS := selfSignedTLS(t)
	s, err := NewIMAP(IMAPOptions{Validate: goodTokenOnly, TLS: serverTLS, Mode: TokenExpiredMidSession, ExpireAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := dialLines(t, s.Addr(), clientTLS)
	w.expectPrefix("* OK ")
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expectPrefix("a1 OK ")
	pending := dialLines(t, s.Addr(), clientTLS) // connected, never greeted by us
	_ = pending
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.expectEOF()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestIMAPPlainListener(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, err := NewIMAP(IMAPOptions{Validate: goodTokenOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(xoauth2.OneStep("new@example.com", "good-new@example.com")); err != nil {
		t.Fatalf("Authenticate on plain listener: %v", err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	if strings.Join(names, ",") != "Archive,INBOX,Sent" {
		t.Fatalf("new user's mailboxes %v, want Archive, INBOX, Sent", names)
	}
}

func TestModeString(t *testing.T) {
	want := map[Mode]string{Normal: "normal", Disabled: "disabled", NotConnected: "not-connected", TokenExpiredMidSession: "token-expired-mid-session",
		NotConnectedBye: "not-connected-bye", Mode(42): "mode(42)"}
	for m, s := range want {
		if m.String() != s {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), m.String(), s)
		}
	}
}
