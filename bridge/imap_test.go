package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

const alice = "alice@example.com"

func testMessage(subject, body string) []byte {
	return []byte("From: bob@example.com\r\nTo: alice@example.com\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + subject + "@example.com>\r\n\r\n" + body + "\r\n")
}

// dialIMAP connects an imapclient to the bridge in the given way: "plain",
// "starttls" or "tls".
func (h *harness) dialIMAP(addr, how string, o *imapclient.Options) *imapclient.Client {
	h.t.Helper()
	if o == nil {
		o = &imapclient.Options{}
	}
	o.TLSConfig = h.ClientTLS
	var c *imapclient.Client
	var err error
	switch how {
	case "plain":
		c, err = imapclient.DialInsecure(addr, o)
	case "starttls":
		c, err = imapclient.DialStartTLS(addr, o)
	case "tls":
		c, err = imapclient.DialTLS(addr, o)
	}
	if err != nil {
		h.t.Fatalf("dial %s (%s): %v", addr, how, err)
	}
	h.t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		h.t.Fatalf("greeting: %v", err)
	}
	return c
}

func TestIMAPClientLoginWays(t *testing.T) {
	h := newHarness(t)
	plainAddr, _ := h.startIMAP(FrontOptions{TLS: h.Local}, false)
	tlsAddr, _ := h.startIMAP(FrontOptions{TLS: h.Local}, true)
	ways := []struct {
		name, addr, how, password string
		sasl                      bool
	}{
		{"login quoted", plainAddr, "plain", `q"uo\te`, false},
		{"login literal", plainAddr, "plain", "pässwörd", false},
		{"authenticate plain", plainAddr, "plain", `a"b\c`, true},
		{"starttls", plainAddr, "starttls", "", false},
		{"implicit tls", tlsAddr, "tls", "", true},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			if w.password != "" {
				h.setPassword(alice, w.password)
			}
			c := h.dialIMAP(w.addr, w.how, nil)
			if c.Caps().Has(imap.Cap("AUTH=XOAUTH2")) {
				t.Error("XOAUTH2 offered to the client")
			}
			var err error
			if w.sasl {
				err = c.Authenticate(sasl.NewPlainClient("", alice, h.password(alice)))
			} else {
				err = c.Login(alice, h.password(alice)).Wait()
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			caps := c.Caps()
			if !caps.Has(imap.CapMove) || !caps.Has(imap.CapIdle) || caps.Has(imap.CapStartTLS) || caps.Has(imap.Cap("AUTH=PLAIN")) {
				t.Errorf("post-login capabilities %v", caps)
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("select: %v", err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("logout: %v", err)
			}
		})
	}
	st := h.B.Status()
	if ok := st.Accounts[0].LastOK[IMAP]; ok.IsZero() {
		t.Error("no successful IMAP login recorded")
	}
	h.checkLogs()
}

func TestIMAPClientMailboxCommands(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	if err := h.IMAP.Append(alice, "INBOX", testMessage("first", "Hello there.")); err != nil {
		t.Fatal(err)
	}

	var exists atomic.Uint32
	c := h.dialIMAP(addr, "plain", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists.Store(*d.NumMessages)
				}
			},
		},
	})
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select: %v, %+v", err, sel)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true, UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "first" {
		t.Fatalf("fetch: %v, %v", err, msgs)
	}
	if !bytes.Contains(msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true}), []byte("Hello there.")) {
		t.Error("fetched body lacks the text")
	}

	// APPEND through the bridge.
	msg := testMessage("second", "Another one.")
	ac := c.Append("INBOX", int64(len(msg)), nil)
	ac.Write(msg)
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatalf("append: %v", err)
	}
	sr, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "second"}}}, nil).Wait()
	if err != nil || len(sr.AllSeqNums()) != 1 || sr.AllSeqNums()[0] != 2 {
		t.Fatalf("search: %v, %v", err, sr)
	}
	if _, err := c.Move(imap.SeqSetNum(2), "Archive").Wait(); err != nil {
		t.Fatalf("move: %v", err)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 1 {
		t.Fatalf("status Archive after move: %v, %+v", err, st)
	}

	// IDLE: an APPEND from a second connection shows up here.
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	c2 := h.dialIMAP(addr, "plain", nil)
	if err := c2.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("second login: %v", err)
	}
	third := testMessage("third", "Via the other connection.")
	ac2 := c2.Append("INBOX", int64(len(third)), nil)
	ac2.Write(third)
	ac2.Close()
	if _, err := ac2.Wait(); err != nil {
		t.Fatalf("second append: %v", err)
	}
	if !eventually(5*time.Second, func() bool { return exists.Load() == 2 }) {
		t.Errorf("IDLE saw EXISTS %d, want 2", exists.Load())
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("idle close: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle wait: %v", err)
	}
	if n := h.B.Status().Sessions[IMAP]; n != 2 {
		t.Errorf("live IMAP sessions = %d, want 2", n)
	}
	c.Logout().Wait()
	c2.Logout().Wait()
	if !eventually(5*time.Second, func() bool { return h.B.Status().Sessions[IMAP] == 0 }) {
		t.Errorf("live IMAP sessions after logout = %d", h.B.Status().Sessions[IMAP])
	}
}

func TestIMAPClientLargeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 MB fetch is slow in -short mode")
	}
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	var body bytes.Buffer
	for i := 0; body.Len() < 20<<20; i++ {
		fmt.Fprintf(&body, "%09d The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n", i)
	}
	msg := append(testMessage("big", ""), body.Bytes()...)
	if err := h.IMAP.Append(alice, "INBOX", msg); err != nil {
		t.Fatal(err)
	}
	c := h.dialIMAP(addr, "plain", nil)
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v", err)
	}
	if got := msgs[0].FindBodySection(sec); !bytes.Equal(got, msg) {
		t.Fatalf("fetched %d bytes, not identical to the %d stored", len(got), len(msg))
	}
}

func TestIMAPWrongPasswordOpensNoUpstream(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	before := h.IMAP.Connections()
	for _, user := range []string{alice, "nobody@example.com"} {
		c := h.dialIMAP(addr, "plain", nil)
		err := c.Login(user, "not-the-password").Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed || ie.Text != badPasswordText {
			t.Errorf("%s: login error %v, want NO [AUTHENTICATIONFAILED] %s", user, err, badPasswordText)
		}
	}
	if got := h.IMAP.Connections(); got != before {
		t.Errorf("upstream connections went from %d to %d on wrong passwords", before, got)
	}
	if n := h.Tokens.TokenRequests(); n != 0 {
		t.Errorf("%d token requests on wrong passwords", n)
	}
	h.checkLogs("not-the-password")
}

// TestIMAPRightPasswordAfterWrongOnes: a dozen wrong passwords from one
// peer, then the right one from the same peer is accepted; the status
// names the peer, IMAP and the name the client gave in ID.
func TestIMAPRightPasswordAfterWrongOnes(t *testing.T) {
	h := newHarness(t)
	testGuard(h.B.guard)
	addr, _ := h.startIMAP(FrontOptions{MaxFailures: 20}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send(`a0 ID ("name" "Canon MF" "version" "1.0")` + "\r\n")
	w.expect(`* ID ("name" "bridge")`)
	w.expect("a0 OK ID completed")
	for i := range 12 {
		w.send("a" + itoa(i+1) + " LOGIN alice@example.com wrong-Pq3" + itoa(i) + "\r\n")
		w.expect("a" + itoa(i+1) + " NO [AUTHENTICATIONFAILED] " + badPasswordText)
	}
	start := time.Now()
	w.send("b1 LOGIN alice@example.com " + h.password(alice) + "\r\n")
	w.expectPrefix("b1 OK ")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the right password was answered after %v", d)
	}
	r := refusedOf(t, h.B, alice)
	if r == nil || r.Count != 12 || r.LastPeer != "127.0.0.1" || r.LastProto != IMAP || r.LastClient != "Canon MF" {
		t.Errorf("refused logins %+v, want 12 from 127.0.0.1 over IMAP by Canon MF", r)
	}
	if n := strings.Count(h.logs.String(), "local login refused"); n != 12 {
		t.Errorf("%d refusals logged, want 12", n)
	}
	h.checkLogs("wrong-Pq3")
}
