package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sessionTimeout bounds one session's connect, login and IDLE start.
const sessionTimeout = 30 * time.Second

// login connects to the bridge at addr and logs in with LOGIN (RFC 3501
// section 6.2.3). It returns the connection, a reader holding what was
// read past the reply, and how long connect-to-OK took.
func login(ctx context.Context, addr, user, pass string) (net.Conn, *bufio.Reader, time.Duration, error) {
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, 0, err
	}
	c.SetDeadline(start.Add(sessionTimeout))
	br := bufio.NewReaderSize(c, 512)
	fail := func(err error) (net.Conn, *bufio.Reader, time.Duration, error) {
		c.Close()
		return nil, nil, 0, err
	}
	if g, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(g, "* OK") {
		return fail(fmt.Errorf("greeting %q: %v", strings.TrimSpace(g), err))
	}
	if _, err := io.WriteString(c, `a LOGIN "`+user+`" "`+pass+`"`+"\r\n"); err != nil {
		return fail(err)
	}
	for range 16 {
		l, err := br.ReadString('\n')
		if err != nil {
			return fail(err)
		}
		if strings.HasPrefix(l, "a ") {
			if !strings.HasPrefix(l, "a OK") {
				return fail(fmt.Errorf("login refused: %.100s", strings.TrimSpace(l)))
			}
			return c, br, time.Since(start), nil
		}
	}
	return fail(fmt.Errorf("no reply to LOGIN"))
}

// openIdle logs in, fetches the newest message of INBOX whole if fetch is
// set, and starts IDLE (RFC 2177), the way a mail client watches a folder;
// it returns the connection with no deadline.
func openIdle(ctx context.Context, addr, user, pass string, fetch bool) (net.Conn, time.Duration, error) {
	c, br, took, err := login(ctx, addr, user, pass)
	if err != nil {
		return nil, 0, err
	}
	if fetch {
		if err := command(c, br, "s", "EXAMINE INBOX"); err != nil {
			c.Close()
			return nil, 0, err
		}
		if err := command(c, br, "f", "FETCH * BODY.PEEK[]"); err != nil {
			c.Close()
			return nil, 0, err
		}
	}
	if _, err := io.WriteString(c, "b IDLE\r\n"); err != nil {
		c.Close()
		return nil, 0, err
	}
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
		c.Close()
		return nil, 0, fmt.Errorf("IDLE answered %q: %v", strings.TrimSpace(l), err)
	}
	c.SetDeadline(time.Time{})
	return c, took, nil
}

// command sends tag and line and reads until the tagged reply, which must
// be OK, reading past any literal (RFC 3501 section 4.3) in the replies.
func command(c net.Conn, br *bufio.Reader, tag, line string) error {
	if _, err := io.WriteString(c, tag+" "+line+"\r\n"); err != nil {
		return err
	}
	return await(br, tag, line)
}

// await reads until the reply tagged tag, which must be OK.
func await(br *bufio.Reader, tag, line string) error {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: %w", line, err)
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("%s: %.100s", line, strings.TrimSpace(l))
			}
			return nil
		}
		if n := literalSize(l); n > 0 {
			if _, err := br.Discard(n); err != nil {
				return fmt.Errorf("%s: %w", line, err)
			}
		}
	}
}

// literalSize returns n when line ends with a literal's "{n}", else 0.
func literalSize(line string) int {
	line = strings.TrimRight(line, "\r\n")
	i := strings.LastIndexByte(line, '{')
	if i < 0 || !strings.HasSuffix(line, "}") {
		return 0
	}
	n, err := strconv.Atoi(line[i+1 : len(line)-1])
	if err != nil {
		return 0
	}
	return n
}

// appendMessage logs in and appends a message of size bytes (at least its
// header) to INBOX, for the sessions to fetch.
func appendMessage(ctx context.Context, addr, user, pass string, size int) error {
	c, br, _, err := login(ctx, addr, user, pass)
	if err != nil {
		return err
	}
	defer c.Close()
	head := "From: " + user + "\r\nTo: " + user + "\r\nSubject: bridge-load\r\n\r\n"
	line := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJ\r\n"
	msg := []byte(head + strings.Repeat(line, size/len(line)+1))
	msg = msg[:max(size, len(head))]
	if _, err := fmt.Fprintf(c, "p APPEND INBOX {%d}\r\n", len(msg)); err != nil {
		return err
	}
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
		return fmt.Errorf("APPEND answered %q: %v", strings.TrimSpace(l), err)
	}
	if _, err := c.Write(append(msg, "\r\n"...)); err != nil {
		return err
	}
	return await(br, "p", "APPEND")
}

// probe is one fresh login that logs out again; it returns the login time.
func probe(ctx context.Context, addr, user, pass string) (time.Duration, error) {
	c, _, took, err := login(ctx, addr, user, pass)
	if err != nil {
		return 0, err
	}
	io.WriteString(c, "z LOGOUT\r\n")
	c.Close()
	return took, nil
}

// ramp opens n idle sessions with at most par logins in flight. It stops
// early after maxErr failures or when ctx ends, and returns the open
// connections and each login's time.
func ramp(ctx context.Context, addr, user, pass string, fetch bool, n, par, maxErr int, progress func(done int)) ([]net.Conn, []time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]net.Conn, n)
	took := make([]time.Duration, n)
	var next, opened, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, d, err := openIdle(ctx, addr, user, pass, fetch)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					if failed.Add(1) >= int64(maxErr) {
						cancel()
					}
					continue
				}
				conns[i], took[i] = c, d
				if k := opened.Add(1); k%1000 == 0 {
					progress(int(k))
				}
			}
		}()
	}
	wg.Wait()
	var open []net.Conn
	var times []time.Duration
	for i, c := range conns {
		if c != nil {
			open = append(open, c)
			times = append(times, took[i])
		}
	}
	if f := failed.Load(); f > 0 {
		return open, times, fmt.Errorf("bridge-load: %d of %d sessions failed; first: %v", f, n, firstErr.Load())
	}
	if len(open) < n {
		return open, times, fmt.Errorf("bridge-load: opened %d of %d sessions: %w", len(open), n, ctx.Err())
	}
	return open, times, nil
}

// percentile returns the p-th percentile (0..100) of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
