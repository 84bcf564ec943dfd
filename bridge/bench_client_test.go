package bridge

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailbridge/bridge/internal/xoauth2"
)

// clientFetcher is a mail client built on go-imap's imapclient: it parses
// every response it reads, as a real client does, and keeps the literal in
// a buffer it reuses.
type clientFetcher struct {
	conn net.Conn // for deadlines: imapclient sets none itself
	c    *imapclient.Client
	buf  bytes.Buffer
}

// fetch runs FETCH 1 (BODY.PEEK[]) and returns the literal's size.
func (f *clientFetcher) fetch() (int, error) {
	f.buf.Reset()
	f.conn.SetDeadline(time.Now().Add(time.Minute))
	cmd := f.c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
				if _, err := f.buf.ReadFrom(body.Literal); err != nil {
					cmd.Close()
					return 0, err
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	return f.buf.Len(), nil
}

// dialClientDirect logs imapclient in to the upstream itself, with TLS and
// XOAUTH2.
func (e *benchEnv) dialClientDirect(token string) (*clientFetcher, error) {
	conn, err := tls.Dial("tcp", e.imapUp.addr(), e.clientUp)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := imapclient.New(conn, nil)
	if err := c.Authenticate(xoauth2.OneStep(benchUser, token)); err != nil {
		c.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return &clientFetcher{conn: conn, c: c}, nil
}

// dialClientBridge logs imapclient in through the bridge with the local
// password, in plain text on loopback.
func (e *benchEnv) dialClientBridge() (*clientFetcher, error) {
	conn, err := net.Dial("tcp", e.imapAddr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := imapclient.New(conn, nil)
	if err := c.Login(benchUser, e.pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	return &clientFetcher{conn: conn, c: c}, nil
}

// BenchmarkIMAPFetchClient is BenchmarkIMAPFetch with a real client
// library in place of the bare reader: go-imap's imapclient fetches
// BODY.PEEK[] of the 7 MB message straight from the upstream and through
// the bridge, alternating on two logged-in sessions, and the benchmark
// reports both rates and their ratio. The client's own parsing now sets
// the pace, as it does for a mail program on the same machine.
func BenchmarkIMAPFetchClient(b *testing.B) {
	e := newBenchEnv(b, benchFetchSize, benchPace{})
	direct, err := e.dialClientDirect(e.token())
	if err != nil {
		b.Fatalf("direct login: %v", err)
	}
	defer direct.c.Close()
	bridged, err := e.dialClientBridge()
	if err != nil {
		b.Fatalf("bridged login: %v", err)
	}
	defer bridged.c.Close()
	for _, f := range []*clientFetcher{direct, bridged} {
		if _, err := f.fetch(); err != nil {
			b.Fatalf("warm-up fetch: %v", err)
		}
	}

	var tDirect, tBridge time.Duration
	timed := func(f *clientFetcher, d *time.Duration) {
		start := time.Now()
		n, err := f.fetch()
		*d += time.Since(start)
		if err != nil || n != benchFetchSize {
			b.Fatalf("fetch: %d bytes, %v", n, err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			timed(direct, &tDirect)
			timed(bridged, &tBridge)
		} else {
			timed(bridged, &tBridge)
			timed(direct, &tDirect)
		}
	}
	b.StopTimer()
	mb := float64(benchFetchSize) * float64(b.N) / 1e6
	b.ReportMetric(mb/tDirect.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/tBridge.Seconds(), "bridge-MB/s")
	b.ReportMetric(tDirect.Seconds()/tBridge.Seconds(), "ratio")
}
