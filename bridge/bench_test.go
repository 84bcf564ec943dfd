package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// The benchmarks measure the bridge against the same upstream reached
// directly, in one run, and report both figures and their ratio:
//
//	go test -run '^$' -bench . -benchmem ./bridge/
//
// Direct means the client speaks TLS to the upstream itself; bridged means
// it speaks plain IMAP (or SMTP) to the bridge on loopback, and the bridge
// speaks TLS upstream, as a mail client on the same machine does.

// benchUser is the mailbox the benchmarks log in to.
const benchUser = "bench@example.com"

// benchEnv is a Bridge with one account, in front of upstreams on
// 127.0.0.1 with TLS certificates from a throwaway CA, tokens from the
// in-process identity platform, and the IMAP front end listening on
// loopback without TLS.
type benchEnv struct {
	tb       testing.TB
	tokens   *tokenstest.Server
	acct     *Account
	b        *Bridge
	pass     string
	upTLS    *tls.Config // the upstreams' certificate
	clientUp *tls.Config // a direct client's view of the upstreams
	caPEM    []byte      // the CA behind upTLS
	store    string      // the token file
	imapUp   *benchIMAP
	imapAddr string // the bridge's IMAP listener
}

// newBenchEnv starts the identity platform, an IMAP upstream serving a
// literal of fetchSize bytes at pace, the bridge and its IMAP front end.
// All of them stop at the end of the benchmark.
func newBenchEnv(tb testing.TB, fetchSize int, pace benchPace) *benchEnv {
	tb.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		tb.Fatalf("test CA: %v", err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		tb.Fatalf("upstream certificate: %v", err)
	}
	e := &benchEnv{
		tb:       tb,
		upTLS:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		clientUp: &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
		caPEM:    ca.CertPEM,
		store:    filepath.Join(tb.TempDir(), "tokens.json"),
	}
	e.tokens = tokenstest.New(tokenstest.Options{})
	tb.Cleanup(e.tokens.Close)
	e.imapUp, err = newBenchIMAP(e.upTLS, e.tokens.Validate, fetchSize, pace)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.imapUp.close)

	store, err := tokens.NewFileStore(e.store)
	if err != nil {
		tb.Fatalf("token store: %v", err)
	}
	_, rt, _ := e.tokens.Issue(benchUser)
	if e.pass, err = tokens.NewPassword(); err != nil {
		tb.Fatalf("password: %v", err)
	}
	if err := store.Put(benchUser, tokens.Entry{RefreshToken: rt, Password: e.pass, Updated: time.Now()}); err != nil {
		tb.Fatalf("seeding the store: %v", err)
	}
	e.b, e.acct = newBenchBridge(tb, store, ca.Pool, e.imapUp.addr(), e.tokens.TokenURL("organizations"))
	e.imapAddr = serveBenchIMAP(tb, e.b)
	return e
}

// newBenchBridge returns a Bridge with the one benchmark account, whose
// IMAP upstream is imap and whose tokens come from tokenURL.
func newBenchBridge(tb testing.TB, store tokens.Store, roots *x509.CertPool, imap, tokenURL string) (*Bridge, *Account) {
	tb.Helper()
	acct := &Account{
		Email: benchUser, Mailbox: benchUser, ClientID: "bench-client", Tenant: "organizations",
		Provider: tokens.Provider{
			Name:     "microsoft",
			TokenURL: tokenURL,
			Scopes:   []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"},
			IMAP:     imap,
			POP3:     "127.0.0.1:1",
			SMTP:     "127.0.0.1:1",
		},
	}
	// Info-level text logs to nowhere: the same formatting work `bridge
	// serve` does for each session, without the terminal.
	b, err := New(Options{
		Accounts:      []*Account{acct},
		Store:         store,
		UpstreamRoots: roots,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatalf("bridge: %v", err)
	}
	return b, acct
}

// serveBenchIMAP runs b's IMAP front end on a loopback port until the
// benchmark ends and returns its address.
func serveBenchIMAP(tb testing.TB, b *Bridge) string {
	tb.Helper()
	srv := NewIMAPServer(b, FrontOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln, false) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// token returns the account's access token, warming the bridge's cache.
func (e *benchEnv) token() string {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := e.b.Source(e.acct).Token(ctx)
	if err != nil {
		e.tb.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// benchConn is a bare IMAP client: it sends a command and reads until the
// tagged reply, skipping a FETCH literal into a reused buffer the way a
// client that stores or discards mail does.
type benchConn struct {
	c    net.Conn
	br   *bufio.Reader
	line []byte
	buf  []byte
}

func newBenchConn(c net.Conn) *benchConn {
	c.SetDeadline(time.Now().Add(time.Minute))
	return &benchConn{c: c, br: bufio.NewReaderSize(c, 4<<10), buf: make([]byte, 64<<10)}
}

// readLine reads one line without its CRLF.
func (c *benchConn) readLine() ([]byte, error) {
	var err error
	c.line, err = readLine(c.br, c.line, imapMaxLine)
	return c.line, err
}

// command sends line and reads until its tagged reply, which must be OK.
func (c *benchConn) command(tag, line string) error {
	if _, err := io.WriteString(c.c, tag+" "+line+"\r\n"); err != nil {
		return err
	}
	return c.await(tag)
}

func (c *benchConn) await(tag string) error {
	for range 16 {
		l, err := c.readLine()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(l), tag+" ") {
			continue
		}
		if !strings.HasPrefix(string(l[len(tag)+1:]), "OK") {
			return fmt.Errorf("%s: %.80s", tag, l)
		}
		return nil
	}
	return fmt.Errorf("%s: no tagged reply", tag)
}

// fetch runs one UID FETCH of the whole message and returns the literal's
// size.
func (c *benchConn) fetch() (int, error) {
	if _, err := io.WriteString(c.c, "f UID FETCH 1 BODY[]\r\n"); err != nil {
		return 0, err
	}
	l, err := c.readLine()
	if err != nil {
		return 0, err
	}
	n, err := literalSize(l)
	if err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		k, err := c.br.Read(c.buf[:min(left, len(c.buf))])
		if err != nil {
			return 0, err
		}
		left -= k
	}
	return n, c.await("f")
}

// dialDirect logs in to the upstream itself, with TLS and XOAUTH2.
func (e *benchEnv) dialDirect(token string) (*benchConn, error) {
	c, err := tls.Dial("tcp", e.imapUp.addr(), e.clientUp)
	if err != nil {
		return nil, err
	}
	bc := newBenchConn(c)
	if _, err := bc.readLine(); err != nil {
		c.Close()
		return nil, err
	}
	if err := bc.command("a", "AUTHENTICATE XOAUTH2 "+string(xoauth2.Encoded(benchUser, token))); err != nil {
		c.Close()
		return nil, err
	}
	return bc, nil
}

// dialBridge logs in through the bridge with the local password.
func (e *benchEnv) dialBridge() (*benchConn, error) { return e.dialBridgeAt(e.imapAddr) }

// dialBridgeAt logs in through the bridge listening on addr.
func (e *benchEnv) dialBridgeAt(addr string) (*benchConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	bc := newBenchConn(c)
	if _, err := bc.readLine(); err != nil {
		c.Close()
		return nil, err
	}
	if err := bc.command("a", `LOGIN "`+benchUser+`" "`+e.pass+`"`); err != nil {
		c.Close()
		return nil, err
	}
	return bc, nil
}

// benchFetchSize matches the large FETCH the figures in the README quote.
const benchFetchSize = 7 << 20

// BenchmarkIMAPFetch relays a 7 MB FETCH through the bridge and reads the
// same FETCH straight from the upstream, alternating the two on two
// logged-in sessions, and reports both rates, their ratio (goal >= 0.95)
// and the allocations the bridged FETCH makes beyond the direct one.
func BenchmarkIMAPFetch(b *testing.B) {
	e := newBenchEnv(b, benchFetchSize, benchPace{})
	direct, err := e.dialDirect(e.token())
	if err != nil {
		b.Fatalf("direct login: %v", err)
	}
	defer direct.c.Close()
	bridged, err := e.dialBridge()
	if err != nil {
		b.Fatalf("bridged login: %v", err)
	}
	defer bridged.c.Close()
	// Warm both paths: buffers, TLS state, the relay's large buffer.
	for _, c := range []*benchConn{direct, bridged} {
		if _, err := c.fetch(); err != nil {
			b.Fatalf("warm-up fetch: %v", err)
		}
	}

	var tDirect, tBridge time.Duration
	var mDirect, mBridge uint64
	var ms runtime.MemStats
	timed := func(c *benchConn, d *time.Duration, mallocs *uint64) {
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		c.c.SetDeadline(time.Now().Add(time.Minute))
		start := time.Now()
		n, err := c.fetch()
		*d += time.Since(start)
		runtime.ReadMemStats(&ms)
		*mallocs += ms.Mallocs - before
		if err != nil || n != benchFetchSize {
			b.Fatalf("fetch: %d bytes, %v", n, err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		// Alternate the order so neither side always runs on a cache
		// the other just warmed.
		if i%2 == 0 {
			timed(direct, &tDirect, &mDirect)
			timed(bridged, &tBridge, &mBridge)
		} else {
			timed(bridged, &tBridge, &mBridge)
			timed(direct, &tDirect, &mDirect)
		}
	}
	b.StopTimer()
	mb := float64(benchFetchSize) * float64(b.N) / 1e6
	b.ReportMetric(mb/tDirect.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/tBridge.Seconds(), "bridge-MB/s")
	b.ReportMetric(tDirect.Seconds()/tBridge.Seconds(), "ratio")
	b.ReportMetric((float64(mBridge)-float64(mDirect))/float64(b.N), "extra-allocs/fetch")
}

// BenchmarkIMAPLogin times a full login through the bridge (connect,
// greeting, LOGIN with the local password, the bridge's own TLS dial and
// AUTHENTICATE XOAUTH2 upstream, the OK) against a direct XOAUTH2 login to
// the same upstream (connect, TLS, greeting, AUTHENTICATE), with the token
// warm. It reports the medians and what the bridge adds (goal <= 1 ms).
func BenchmarkIMAPLogin(b *testing.B) {
	e := newBenchEnv(b, 1<<10, benchPace{})
	token := e.token()
	login := func(bridge bool) time.Duration {
		start := time.Now()
		var c *benchConn
		var err error
		if bridge {
			c, err = e.dialBridge()
		} else {
			c, err = e.dialDirect(token)
		}
		d := time.Since(start)
		if err != nil {
			b.Fatalf("login (bridge %v): %v", bridge, err)
		}
		c.c.Close()
		return d
	}
	login(false)
	login(true)
	direct := make([]time.Duration, 0, b.N)
	bridged := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			direct = append(direct, login(false))
			bridged = append(bridged, login(true))
		} else {
			bridged = append(bridged, login(true))
			direct = append(direct, login(false))
		}
	}
	b.StopTimer()
	md, mb := median(direct), median(bridged)
	b.ReportMetric(float64(md.Microseconds()), "direct-us")
	b.ReportMetric(float64(mb.Microseconds()), "bridge-us")
	b.ReportMetric(float64((mb - md).Microseconds()), "added-us")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
