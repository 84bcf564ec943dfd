package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sunk is one message the sink accepted: the envelope and the exact bytes
// of DATA (dot-unstuffed, CRLF kept).
type sunk struct {
	from    string
	to      []string
	data    []byte
	queueID string // named in the reply to the final dot
}

// sink is the SMTP server behind Dovecot's submission service: it accepts
// every message without authentication, keeps it for the test to inspect,
// answers with a queue id as Postfix does ("250 2.0.0 Ok: queued as ..."),
// and delivers it to a local Maildir when a recipient is the test user, as
// a real MTA would.
type sink struct {
	srv  *smtp.Server
	addr string

	mu      sync.Mutex
	msgs    []sunk
	changed chan struct{} // closed and replaced on every message
	local   map[string]*maildir
}

// startSink listens on 127.0.0.1:0 and serves until the test ends.
func startSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{changed: make(chan struct{}), local: map[string]*maildir{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s}, nil
	}))
	s.srv.Domain = "sink.bridge.test"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 64 << 20
	s.srv.ErrorLog = silentLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("integration: sink: %v", err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

// port is the sink's TCP port.
func (s *sink) port() int { return portOf(s.addr) }

// portOf returns the port of a host:port address, 0 when it has none.
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// deliverLocally makes the sink drop messages for rcpt into md.
func (s *sink) deliverLocally(rcpt string, md *maildir) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local[strings.ToLower(rcpt)] = md
}

// messages returns a copy of what the sink has accepted so far.
func (s *sink) messages() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.msgs...)
}

// waitFor returns the first accepted message whose Subject is subject,
// waiting up to d for it.
func (s *sink) waitFor(t testing.TB, subject string, d time.Duration) sunk {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if subjectOf(m.data) == subject {
				s.mu.Unlock()
				return m
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("sink: no message with subject %q arrived within %s (%d other messages)", subject, d, len(s.messages()))
			return sunk{}
		}
	}
}

// checkDelivered waits for want in the sink and fails unless its body is
// byte-identical to what was sent (CRLF wire form) and the envelope names
// rcpt.
func (s *sink) checkDelivered(t testing.TB, want message, rcpt string) sunk {
	t.Helper()
	got := s.waitFor(t, want.subject, 30*time.Second)
	if !bytes.Equal(bodyOf(got.data), want.body()) {
		sameBody(t, "sink body of "+want.subject, bodyOf(got.data), want.body())
		t.Errorf("sink body of %q is not byte-identical to what was sent (%d bytes, want %d)", want.subject, len(bodyOf(got.data)), len(want.body()))
	}
	found := false
	for _, r := range got.to {
		found = found || strings.EqualFold(r, rcpt)
	}
	if !found {
		t.Errorf("sink envelope of %q: recipients %v, want %s", want.subject, got.to, rcpt)
	}
	return got
}

type sinkSession struct {
	s    *sink
	from string
	to   []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	id := fmt.Sprintf("SINK%05d", len(s.msgs)+1)
	s.msgs = append(s.msgs, sunk{from: ss.from, to: append([]string(nil), ss.to...), data: data, queueID: id})
	var dests []*maildir
	for _, r := range ss.to {
		if md := s.local[strings.ToLower(r)]; md != nil {
			dests = append(dests, md)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	var errs []error
	for _, md := range dests {
		errs = append(errs, md.deliver(message{subject: subjectOf(data), raw: data}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// go-smtp writes a 2xx *SMTPError from Data as the reply.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

// silentLogger drops go-smtp's connection-level error logs (clients that
// hang up are normal here).
type silentLogger struct{}

func (silentLogger) Printf(string, ...interface{}) {}
func (silentLogger) Println(...interface{})        {}
