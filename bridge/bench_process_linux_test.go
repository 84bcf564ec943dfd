package bridge

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// The record benchmarks run the bridge in a process of its own (this test
// binary again, in the role TestBridgeProcess plays when bridgeProcEnv is
// set), so that the CPU time and the system calls they report are the
// bridge's alone: the client and the upstream stay in the benchmark's
// process. Linux only: the system calls are counted in /proc/self/io.
//
//	go test -run '^$' -bench IMAPFetchRecords ./bridge/

// bridgeProcEnv carries a bridgeProcConfig, as JSON, to the bridge process.
const bridgeProcEnv = "BRIDGE_BENCH_PROCESS"

// bridgeProcConfig is what the bridge process needs to log in upstream.
type bridgeProcConfig struct {
	Store    string // the token file
	CA       []byte // PEM of the upstream's CA
	Upstream string // IMAP host:port
	TokenURL string
}

// procStats is what the bridge process counts about itself.
type procStats struct {
	CPU time.Duration // user and system time, from getrusage
	// Wakeups are the times a thread of the process went to sleep and was
	// woken (voluntary context switches, from getrusage).
	Wakeups int64
	// Reads and Writes are read and write system calls (syscr and syscw
	// of /proc/self/io), whether or not they moved a byte.
	Reads, Writes int64
}

func (a procStats) sub(b procStats) procStats {
	return procStats{CPU: a.CPU - b.CPU, Wakeups: a.Wakeups - b.Wakeups, Reads: a.Reads - b.Reads, Writes: a.Writes - b.Writes}
}

func (a procStats) add(b procStats) procStats {
	return procStats{CPU: a.CPU + b.CPU, Wakeups: a.Wakeups + b.Wakeups, Reads: a.Reads + b.Reads, Writes: a.Writes + b.Writes}
}

// selfStats measures this process.
func selfStats() (procStats, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return procStats{}, err
	}
	st := procStats{CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), Wakeups: ru.Nvcsw}
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return st, err
	}
	for line := range bytes.Lines(b) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch string(k) {
		case "syscr":
			st.Reads = n
		case "syscw":
			st.Writes = n
		}
	}
	return st, nil
}

// runBridgeProcess is the bridge process: the bridge's IMAP front end as
// `bridge serve` runs it. It prints "listening ADDR", answers each line on
// in with its procStats as JSON, and stops when in closes.
func runBridgeProcess(tb testing.TB, cfg bridgeProcConfig, in io.Reader, out io.Writer) error {
	store, err := tokens.NewFileStore(cfg.Store)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CA) {
		return errors.New("bridge process: no CA certificate")
	}
	b, _ := newBenchBridge(tb, store, roots, cfg.Upstream, cfg.TokenURL)
	fmt.Fprintf(out, "listening %s\n", serveBenchIMAP(tb, b))
	enc := json.NewEncoder(out)
	for sc := bufio.NewScanner(in); sc.Scan(); {
		st, err := selfStats()
		if err != nil {
			return err
		}
		if err := enc.Encode(st); err != nil {
			return err
		}
	}
	return nil
}

// bridgeProc is the parent's handle on a bridge process.
type bridgeProc struct {
	tb   testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

// startBridgeProcess runs a bridge process in front of e's upstream, with
// e's account and tokens; it stops at the end of the test.
func startBridgeProcess(tb testing.TB, e *benchEnv) *bridgeProc {
	tb.Helper()
	cfg, err := json.Marshal(bridgeProcConfig{Store: e.store, CA: e.caPEM, Upstream: e.imapUp.addr(), TokenURL: e.tokens.TokenURL("organizations")})
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeProcess$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), bridgeProcEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting the bridge process: %v", err)
	}
	p := &bridgeProc{tb: tb, cmd: cmd, in: in, out: bufio.NewReader(out)}
	tb.Cleanup(p.stop)
	line, err := p.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		tb.Fatalf("the bridge process said %q: %v", line, err)
	}
	p.addr = addr
	return p
}

// stats asks the bridge process to measure itself.
func (p *bridgeProc) stats() procStats {
	p.tb.Helper()
	var st procStats
	if _, err := io.WriteString(p.in, "stats\n"); err != nil {
		p.tb.Fatalf("asking the bridge process: %v", err)
	}
	line, err := p.out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &st)
	}
	if err != nil {
		p.tb.Fatalf("the bridge process answered %q: %v", line, err)
	}
	return st
}

// stop closes the process's input, on which it shuts down, and waits for
// it; after 30 s it is killed.
func (p *bridgeProc) stop() {
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.tb.Errorf("the bridge process: %v", err)
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
		p.tb.Errorf("the bridge process did not stop within 30 s")
	}
}

// TestBridgeProcess checks the record benchmarks' harness: a FETCH through
// the bridge process arrives whole, and the process counts the CPU time,
// reads and writes it spent on it. With bridgeProcEnv set it is the
// bridge process instead.
func TestBridgeProcess(t *testing.T) {
	if env := os.Getenv(bridgeProcEnv); env != "" {
		var cfg bridgeProcConfig
		if err := json.Unmarshal([]byte(env), &cfg); err != nil {
			t.Fatalf("%s: %v", bridgeProcEnv, err)
		}
		if err := runBridgeProcess(t, cfg, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	const size = 256 << 10
	e := newBenchEnv(t, size, benchPace{Record: 4 << 10})
	p := startBridgeProcess(t, e)
	c, err := e.dialBridgeAt(p.addr)
	if err != nil {
		t.Fatalf("login through the bridge process: %v", err)
	}
	defer c.c.Close()
	before := p.stats()
	n, err := c.fetch()
	d := p.stats().sub(before)
	if err != nil || n != size {
		t.Fatalf("fetch: %d bytes, %v; want %d", n, err, size)
	}
	// 64 records of 4 KB: at least one read of the upstream and one write
	// to the client for some of them, and some CPU time.
	if d.CPU <= 0 || d.Reads < 2 || d.Writes < 2 {
		t.Errorf("the bridge process counted %+v for a %d-byte FETCH", d, size)
	}
}

// BenchmarkIMAPFetchRecords relays FETCHes through a bridge process while
// the upstream sends its records in four ways: 16 KB records a
// millisecond apart (a network delivering about 13 MB/s: Go's sleeps do
// not go below a millisecond), 4 KB records (Dovecot's size) a millisecond
// apart, 4 KB records as fast as TLS goes, and one write cut into 16 KB
// records (as BenchmarkIMAPFetch). Like BenchmarkIMAPFetch it alternates
// with the same FETCH straight from the upstream and reports both rates
// and their ratio; it adds the bridge process's CPU time per GB relayed,
// its writes to the client per MB (its write system calls less the one
// that sends each FETCH command upstream), its read system calls per MB
// and its threads' wakeups per MB. Asking the process for its figures
// costs a little of each; that cost, measured at the start, is taken off.
func BenchmarkIMAPFetchRecords(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
		pace benchPace
	}{
		{"paced-16k", 2 << 20, benchPace{Record: 16 << 10, Every: time.Millisecond}},
		{"paced-4k", 1 << 20, benchPace{Record: 4 << 10, Every: time.Millisecond}},
		{"records-4k", benchFetchSize, benchPace{Record: 4 << 10}},
		{"burst", benchFetchSize, benchPace{}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchFetchProcess(b, bc.size, bc.pace) })
	}
}

func benchFetchProcess(b *testing.B, size int, pace benchPace) {
	e := newBenchEnv(b, size, pace)
	p := startBridgeProcess(b, e)
	direct, err := e.dialDirect(e.token())
	if err != nil {
		b.Fatalf("direct login: %v", err)
	}
	defer direct.c.Close()
	bridged, err := e.dialBridgeAt(p.addr)
	if err != nil {
		b.Fatalf("bridged login: %v", err)
	}
	defer bridged.c.Close()
	for _, c := range []*benchConn{direct, bridged} {
		if _, err := c.fetch(); err != nil {
			b.Fatalf("warm-up fetch: %v", err)
		}
	}
	s0 := p.stats()
	overhead := p.stats().sub(s0)

	var tDirect, tBridge time.Duration
	var work procStats
	fetch := func(c *benchConn) time.Duration {
		c.c.SetDeadline(time.Now().Add(time.Minute))
		start := time.Now()
		n, err := c.fetch()
		d := time.Since(start)
		if err != nil || n != size {
			b.Fatalf("fetch: %d bytes, %v", n, err)
		}
		return d
	}
	viaBridge := func() {
		before := p.stats()
		tBridge += fetch(bridged)
		work = work.add(p.stats().sub(before).sub(overhead))
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tDirect += fetch(direct)
			viaBridge()
		} else {
			viaBridge()
			tDirect += fetch(direct)
		}
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/tDirect.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/tBridge.Seconds(), "bridge-MB/s")
	b.ReportMetric(tDirect.Seconds()/tBridge.Seconds(), "ratio")
	b.ReportMetric(work.CPU.Seconds()/(mb/1000), "bridge-cpu-s/GB")
	b.ReportMetric(float64(work.Writes-int64(b.N))/mb, "client-writes/MB")
	b.ReportMetric(float64(work.Reads)/mb, "bridge-reads/MB")
	b.ReportMetric(float64(work.Wakeups)/mb, "bridge-wakeups/MB")
}
