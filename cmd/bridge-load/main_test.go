package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the bridge role when run itself as
// the child, as the command does.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "bridge" {
		if err := runChild(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLoadSmall runs the whole tool with a few sessions: they open through
// a real bridge process, the bridge counts them, new logins succeed while
// they are held, and they all end.
func TestLoadSmall(t *testing.T) {
	s, stderr := runTool(t, "-sessions", "40", "-parallel", "8", "-probes", "3", "-hold", "1s", "-login-bound", "10s")
	for _, want := range []string{"ramp: 40 sessions", "with 40 sessions", "login under load: 3 fresh logins", "hold 1s: 40 sessions", "closed: all sessions ended"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// Each relayed session is a handful of goroutines at most.
	m := regexp.MustCompile(`per idle session: .*, ([0-9.]+) goroutines`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no goroutines per session in:\n%s", s)
	}
	if g, _ := strconv.ParseFloat(m[1], 64); g < 1 || g > 3 {
		t.Errorf("%.2f goroutines per idle session, want 1 to 3", g)
	}
	if strings.Contains(stderr, "level=ERROR") {
		t.Errorf("the bridge logged errors:\n%s", stderr)
	}
}

// TestLoadIdleStacks: both of an idle session's goroutines wait with
// shallow stacks, which the garbage collector shrinks to 4 KiB; waiting
// under the login's frames and inside crypto/tls's Read kept 12 KiB a
// session. The race detector's instrumentation doubles every figure (16
// KiB now, 24 before). 300 sessions, because with a few dozen how the
// stacks share their spans moves the figure by 2 KiB or more.
func TestLoadIdleStacks(t *testing.T) {
	out, _ := runTool(t, "-sessions", "300", "-parallel", "32", "-probes", "1", "-hold", "1s", "-login-bound", "10s")
	m := regexp.MustCompile(`per idle session: .*, stacks ([0-9.]+) KiB`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no stacks per session in:\n%s", out)
	}
	most := 10.0 // two 4 KiB stacks and room; 12 before
	if raceBuild {
		most = 20 // 16 with the race detector; 24 before
	}
	if k, _ := strconv.ParseFloat(m[1], 64); k > most {
		t.Errorf("%.1f KiB of goroutine stacks per idle session, want at most %.0f", k, most)
	}
}

// TestLoadFetch has each session fetch a message before IDLE: the literal
// is read past whole (IDLE's "+" is the next line), and the sessions are
// then held and counted like idle ones.
func TestLoadFetch(t *testing.T) {
	out, _ := runTool(t, "-sessions", "10", "-parallel", "4", "-probes", "1", "-hold", "1s", "-fetch", "300000")
	for _, want := range []string{"each session fetches a 300000-byte message", "ramp: 10 sessions", "hold 1s: 10 sessions", "closed: all sessions ended"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// runTool runs the whole tool with args, within two minutes, and returns
// what it printed; a failed run fails the test with both outputs.
func runTool(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-sessions", "0"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("run -sessions 0: %v, want a usage error", err)
	}
}
