package bridge

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// benchSMTPSink is a submission server for benchmarks: STARTTLS, AUTH
// XOAUTH2 checked by a Validator (initial response or after an empty 334,
// RFC 4954 section 4), and a DATA that counts the message and keeps none of
// it, so that the memory figures are the bridge's and the client's alone.
type benchSMTPSink struct {
	srv      *smtp.Server
	ln       net.Listener
	validate bridgetest.Validator
	received atomic.Int64 // bytes of message data
	done     chan struct{}
}

func (e *benchEnv) startSMTPSink() *benchSMTPSink {
	e.tb.Helper()
	s := &benchSMTPSink{validate: e.tokens.Validate, done: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &benchSinkSession{s: s}, nil }))
	s.srv.Domain = "sink.bench.invalid"
	s.srv.TLSConfig = e.upTLS
	s.srv.MaxMessageBytes = 200 << 20
	// Access tokens are JWTs of a few kilobytes; the AUTH line carries one.
	s.srv.MaxLineLength = 64 << 10
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		e.tb.Fatalf("sink listen: %v", err)
	}
	go func() { defer close(s.done); s.srv.Serve(s.ln) }()
	e.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.srv.Close()
		s.srv.Shutdown(ctx)
		<-s.done
	})
	a := *e.acct
	a.Provider.SMTP = s.ln.Addr().String()
	e.acct = &a
	e.b.SetAccounts([]*Account{e.acct})
	return s
}

type benchSinkSession struct {
	s    *benchSMTPSink
	user string
}

func (ss *benchSinkSession) AuthMechanisms() []string { return []string{"XOAUTH2"} }

func (ss *benchSinkSession) Auth(string) (sasl.Server, error) { return &benchSinkAuth{ss: ss}, nil }

func (ss *benchSinkSession) Mail(string, *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (ss *benchSinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (ss *benchSinkSession) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	ss.s.received.Add(n)
	return err
}

func (ss *benchSinkSession) Reset()        {}
func (ss *benchSinkSession) Logout() error { return nil }

type benchSinkAuth struct {
	ss      *benchSinkSession
	started bool
}

func (a *benchSinkAuth) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil && !a.started {
		a.started = true
		return []byte{}, false, nil
	}
	user, token, err := bridgetest.ParseXOAUTH2(resp)
	if err == nil {
		err = a.ss.s.validate(user, token)
	}
	if err != nil {
		return nil, true, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
	}
	a.ss.user = user
	return nil, true, nil
}

// benchMessage is a message of exactly size bytes made of 76-character
// lines, produced as it is read so that the sender holds none of it.
type benchMessage struct {
	left int
	off  int // position in benchLine
}

var benchLine = []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJ\r\n")

const benchHeader = "From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n"

func newBenchMessage(size int) *benchMessage { return &benchMessage{left: size - len(benchHeader)} }

func (m *benchMessage) Read(p []byte) (int, error) {
	if m.left <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && m.left > 0 {
		k := copy(p[n:min(len(p), n+m.left)], benchLine[m.off:])
		m.off = (m.off + k) % len(benchLine)
		n += k
		m.left -= k
	}
	return n, nil
}

// send submits one message of size bytes on c.
func benchSend(c *smtp.Client, size int) error {
	if err := c.Mail(benchUser, nil); err != nil {
		return err
	}
	if err := c.Rcpt("sink@example.com", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, benchHeader); err != nil {
		return err
	}
	if _, err := io.Copy(w, newBenchMessage(size)); err != nil {
		return err
	}
	return w.Close()
}

// BenchmarkSMTPRelay sends messages of 1 MB and 30 MB through the bridge's
// SMTP front end and, alternately, straight to the same sink with STARTTLS
// and XOAUTH2. It reports both rates, their ratio, and the bytes and
// allocations the bridged message costs beyond the direct one
// (bridge-B/msg): that figure stays flat as the message grows, because the
// bridge streams DATA instead of holding it.
func BenchmarkSMTPRelay(b *testing.B) {
	for _, size := range []int{1 << 20, 30 << 20} {
		b.Run(fmt.Sprintf("size=%dMB", size>>20), func(b *testing.B) { benchSMTP(b, size) })
	}
}

func benchSMTP(b *testing.B, size int) {
	e := newBenchEnv(b, 1<<10, benchPace{})
	sink := e.startSMTPSink()
	srv := NewSMTPServer(e.b, FrontOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln, false) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()

	bridged, err := smtp.Dial(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer bridged.Close()
	if err := bridged.Auth(sasl.NewPlainClient("", benchUser, e.pass)); err != nil {
		b.Fatalf("bridged AUTH: %v", err)
	}
	direct, err := smtp.DialStartTLS(sink.ln.Addr().String(), e.clientUp)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	if err := direct.Auth(xoauth2.TwoStep(benchUser, e.token())); err != nil {
		b.Fatalf("direct AUTH: %v", err)
	}
	for _, c := range []*smtp.Client{direct, bridged} {
		if err := benchSend(c, 64<<10); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}

	var tDirect, tBridge time.Duration
	var bytesDirect, bytesBridge, allocsDirect, allocsBridge uint64
	var ms runtime.MemStats
	timed := func(c *smtp.Client, d *time.Duration, bytes, allocs *uint64) {
		runtime.ReadMemStats(&ms)
		b0, a0 := ms.TotalAlloc, ms.Mallocs
		start := time.Now()
		err := benchSend(c, size)
		*d += time.Since(start)
		runtime.ReadMemStats(&ms)
		*bytes += ms.TotalAlloc - b0
		*allocs += ms.Mallocs - a0
		if err != nil {
			b.Fatalf("send: %v", err)
		}
	}
	before := sink.received.Load()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			timed(direct, &tDirect, &bytesDirect, &allocsDirect)
			timed(bridged, &tBridge, &bytesBridge, &allocsBridge)
		} else {
			timed(bridged, &tBridge, &bytesBridge, &allocsBridge)
			timed(direct, &tDirect, &bytesDirect, &allocsDirect)
		}
	}
	b.StopTimer()
	if got, want := sink.received.Load()-before, int64(2*b.N*size); got < want {
		b.Fatalf("sink received %d bytes, want at least %d", got, want)
	}
	extra := (float64(bytesBridge) - float64(bytesDirect)) / float64(b.N)
	if extra > float64(size)/4 && extra > 1<<20 {
		b.Errorf("the bridged message allocated %.0f bytes more than the direct one: DATA is being buffered", extra)
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/tDirect.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/tBridge.Seconds(), "bridge-MB/s")
	b.ReportMetric(tDirect.Seconds()/tBridge.Seconds(), "ratio")
	b.ReportMetric(extra, "bridge-B/msg")
	b.ReportMetric((float64(allocsBridge)-float64(allocsDirect))/float64(b.N), "bridge-allocs/msg")
}
