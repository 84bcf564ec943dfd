package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
)

// roleEnv selects the bridge role when the tool runs itself as a child.
const roleEnv = "BRIDGE_LOAD_ROLE"

// stats is what the bridge process reports about itself.
type stats struct {
	// RSS is VmRSS as the kernel counts it, before anything is returned
	// to the OS; RSSFreed is VmRSS after a GC and debug.FreeOSMemory.
	RSS, RSSFreed uint64
	// HeapAlloc (live objects), HeapInuse (their spans) and StackInuse
	// (goroutine stacks), after a GC.
	HeapAlloc, HeapInuse, StackInuse uint64
	Goroutines                       int
	// Sessions is the number of live relayed IMAP sessions.
	Sessions int64
}

// runChild runs the bridge alone in this process, so that its memory can be
// measured without the clients and the upstream imitation in it. It prints
// "listening ADDR", answers each "stats" line on stdin with a JSON stats
// line, and shuts down when stdin closes.
func runChild(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bridge-load child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storePath := fs.String("store", "", "token file store")
	caFile := fs.String("ca", "", "PEM file of the upstream's CA")
	upstream := fs.String("upstream", "", "upstream IMAP host:port")
	tokenURL := fs.String("token-url", "", "token endpoint")
	user := fs.String("user", "", "account email")
	nofile := fs.Uint64("nofile", 0, "RLIMIT_NOFILE to ask for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, got, err := raiseNoFile(*nofile); err != nil || got < *nofile {
		return fmt.Errorf("bridge-load: bridge process: open-file limit %d, want %d: %v", got, *nofile, err)
	}
	store, err := tokens.NewFileStore(*storePath)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("bridge-load: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	acct := &bridge.Account{
		Email: *user, Mailbox: *user, ClientID: "bridge-load", Tenant: "organizations",
		Provider: tokens.Provider{
			Name:     "microsoft",
			TokenURL: *tokenURL,
			Scopes:   []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"},
			IMAP:     *upstream,
			POP3:     "127.0.0.1:1",
			SMTP:     "127.0.0.1:1",
		},
	}
	// Warnings only: 10,000 "session started" lines would measure the
	// terminal.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bridge.New(bridge.Options{Accounts: []*bridge.Account{acct}, Store: store, UpstreamRoots: roots, Logger: log})
	if err != nil {
		return err
	}
	srv := bridge.NewIMAPServer(b, bridge.FrontOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bridge-load: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, false) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())

	sc := bufio.NewScanner(stdin)
	enc := json.NewEncoder(stdout)
	for sc.Scan() {
		if sc.Text() != "stats" {
			continue
		}
		if err := enc.Encode(measure(b)); err != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	<-served
	return nil
}

func measure(b *bridge.Bridge) stats {
	var st stats
	st.RSS = selfRSS()
	// The first collection halves the stacks that idle goroutines no
	// longer need; the second frees the stack spans that left empty.
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapAlloc, st.HeapInuse, st.StackInuse = ms.HeapAlloc, ms.HeapInuse, ms.StackInuse
	st.RSSFreed = selfRSS()
	st.Goroutines = runtime.NumGoroutine()
	st.Sessions = b.Status().Sessions[bridge.IMAP]
	return st
}
