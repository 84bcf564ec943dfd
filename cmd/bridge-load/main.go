// Command bridge-load holds many idle IMAP sessions open through the bridge
// and measures what they cost it.
//
// It runs the bridge's IMAP front end in a child process of its own (this
// program again, in the bridge role), so that the bridge's heap and RSS are
// measured without the clients and the upstream in them. In this process
// it runs the imitations of the identity platform (tokenstest) and of
// Exchange's IMAP service (bridgetest, implicit TLS), and the clients:
// each logs in with LOGIN through the bridge, which logs in upstream with
// XOAUTH2, and starts IDLE. With all sessions held it checks that new
// logins are still answered within a bound, then closes everything.
// Everything listens on 127.0.0.1 only.
//
// With -fetch, each session first fetches a message of that size whole,
// so that what a session keeps after a burst is counted too; -full-records
// has the upstream send that message in whole 16 KB TLS records from the
// start, as OpenSSL-based servers do, rather than in crypto/tls's records,
// which grow over the first 128 KB of a connection.
//
// Usage:
//
//	bridge-load [-sessions 10000] [-parallel 32] [-probes 20] [-login-bound 1s] [-hold 5s] [-fetch 0 [-full-records]]
//
// Each session holds two descriptors in each process, so the tool raises
// RLIMIT_NOFILE (soft limit, and the hard limit when it may) in both and
// says so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(roleEnv) == "bridge" {
		if err := runChild(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bridge-load: usage error")

// fdSpare is how many descriptors each process needs besides two per
// session.
const fdSpare = 64

// options are the command-line settings.
type options struct {
	sessions, parallel, probes, fetch int
	fullRecords                       bool
	loginBound, hold, timeout         time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bridge-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.sessions, "sessions", 10000, "idle IMAP sessions to hold")
	fs.IntVar(&o.parallel, "parallel", 32, "logins in flight while opening them")
	fs.IntVar(&o.probes, "probes", 20, "fresh logins timed while the sessions are held")
	fs.IntVar(&o.fetch, "fetch", 0, "the size in bytes of a message each session fetches whole before IDLE; 0 fetches nothing")
	fs.BoolVar(&o.fullRecords, "full-records", false, "the upstream sends whole 16 KB TLS records from its first byte (as OpenSSL does), not crypto/tls's records that grow over the first 128 KB")
	fs.DurationVar(&o.loginBound, "login-bound", time.Second, "the longest a login under load may take")
	fs.DurationVar(&o.hold, "hold", 5*time.Second, "how long to hold the sessions, sampling the bridge each second")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "the whole run's limit")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.sessions < 1 || o.parallel < 1 || o.probes < 0 || o.fetch < 0 || fs.NArg() != 0 {
		return fmt.Errorf("%w: -sessions and -parallel must be positive, -probes and -fetch not negative, and no arguments follow the flags", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// Two descriptors per session on each side, plus room for the
	// listeners, the token endpoint and the standard streams.
	nofile := uint64(2*o.sessions + fdSpare)
	before, after, err := raiseNoFile(nofile)
	if err != nil || after < nofile {
		return fmt.Errorf("bridge-load: the open-file limit can only be raised to %d (the hard limit; raising it needs root or CAP_SYS_RESOURCE): "+
			"%d sessions need %d, at most %d fit: %v", after, o.sessions, nofile, (int(after)-fdSpare)/2, err)
	}
	if after != before {
		fmt.Fprintf(stdout, "open files: RLIMIT_NOFILE raised from %d to %d in both processes\n", before, after)
	}

	p, err := startPeers(o.fullRecords)
	if err != nil {
		return err
	}
	defer p.close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bridge-load: %w", err)
	}
	c, err := startChild(exe, p, nofile, stderr)
	if err != nil {
		return err
	}
	defer c.stop()
	fmt.Fprintf(stdout, "bridge process %d on %s; upstream bridgetest IMAP (TLS) on %s\n", c.cmd.Process.Pid, c.addr, p.imap.Addr())
	return measureLoad(ctx, o, p, c, stdout)
}

// measureLoad is the run proper: warm up, measure, ramp, probe, hold,
// close.
func measureLoad(ctx context.Context, o options, p *peers, c *child, stdout io.Writer) error {
	// The first login fetches the access token; later ones use the cached
	// one, as a running bridge does.
	if _, err := probe(ctx, c.addr, loadUser, p.password); err != nil {
		return fmt.Errorf("bridge-load: warm-up login: %w", err)
	}
	if o.fetch > 0 {
		if err := appendMessage(ctx, c.addr, loadUser, p.password, o.fetch); err != nil {
			return fmt.Errorf("bridge-load: appending the message to fetch: %w", err)
		}
		fmt.Fprintf(stdout, "each session fetches a %d-byte message before IDLE\n", o.fetch)
	}
	base, err := c.waitSessions(ctx, 0, 10*time.Second)
	if err != nil {
		return err
	}
	start := time.Now()
	conns, took, rampErr := ramp(ctx, c.addr, loadUser, p.password, o.fetch > 0, o.sessions, o.parallel, 10, func(n int) {
		fmt.Fprintf(stdout, "  %d sessions open (%.1fs)\n", n, time.Since(start).Seconds())
	})
	defer closeAll(conns)
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "ramp: %d sessions in %.1fs (%.0f/s); login p50 %s, p99 %s, max %s\n",
		len(conns), elapsed.Seconds(), float64(len(conns))/elapsed.Seconds(),
		ms(percentile(took, 50)), ms(percentile(took, 99)), ms(percentile(took, 100)))
	if rampErr != nil {
		return rampErr
	}
	held, err := c.waitSessions(ctx, int64(len(conns)), time.Minute)
	if err != nil {
		return err
	}
	report(stdout, base, held, len(conns))

	var probes []time.Duration
	for range o.probes {
		d, err := probe(ctx, c.addr, loadUser, p.password)
		if err != nil {
			return fmt.Errorf("bridge-load: login under load: %w", err)
		}
		probes = append(probes, d)
	}
	slow := o.probes > 0 && percentile(probes, 100) > o.loginBound
	if o.probes > 0 {
		verdict := "within"
		if slow {
			verdict = "OVER"
		}
		fmt.Fprintf(stdout, "login under load: %d fresh logins with %d sessions held: median %s, max %s (%s the %s bound)\n",
			len(probes), len(conns), ms(percentile(probes, 50)), ms(percentile(probes, 100)), verdict, o.loginBound)
	}

	hold := min(int(o.hold/time.Second), 3600)
	for i := range hold {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		st, err := c.stats()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  hold %ds: %d sessions, RSS %.1f MiB, heap %.1f MiB, stacks %.1f MiB\n",
			i+1, st.Sessions, mib(st.RSS), mib(st.HeapInuse), mib(st.StackInuse))
		if st.Sessions != int64(len(conns)) {
			return fmt.Errorf("bridge-load: the bridge lost sessions while idle: %d of %d", st.Sessions, len(conns))
		}
	}

	closeAll(conns)
	t := time.Now()
	if _, err := c.waitSessions(ctx, 0, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "closed: all sessions ended in the bridge within %s\n", ms(time.Since(t)))
	if slow {
		return fmt.Errorf("bridge-load: a login under load took %s, over the %s bound", ms(percentile(probes, 100)), o.loginBound)
	}
	return nil
}

// report prints the bridge's growth per held session.
func report(w io.Writer, base, held stats, n int) {
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) / 1024 }
	fmt.Fprintf(w, "bridge process: baseline RSS %.1f MiB, heap %.1f MiB; with %d sessions RSS %.1f MiB, heap %.1f MiB, stacks %.1f MiB, %d goroutines\n",
		mib(base.RSS), mib(base.HeapInuse), n, mib(held.RSS), mib(held.HeapInuse), mib(held.StackInuse), held.Goroutines)
	fmt.Fprintf(w, "per idle session: heap %.1f KiB (live objects %.1f KiB), stacks %.1f KiB, heap+stacks %.1f KiB, RSS %.1f KiB (%.1f KiB after returning free pages), %.2f goroutines\n",
		per(base.HeapInuse, held.HeapInuse), per(base.HeapAlloc, held.HeapAlloc), per(base.StackInuse, held.StackInuse),
		per(base.HeapInuse+base.StackInuse, held.HeapInuse+held.StackInuse),
		per(base.RSS, held.RSS), per(base.RSSFreed, held.RSSFreed),
		float64(held.Goroutines-base.Goroutines)/float64(n))
}

func closeAll(conns []net.Conn) {
	for i, c := range conns {
		if c != nil {
			c.Close()
			conns[i] = nil
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
