package doctor

import (
	"context"
	"encoding/base64"
	"net/textproto"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// pop3 checks the POP3 server: reach, TLS (implicit, port 995) and the
// two-step AUTH XOAUTH2 Microsoft requires (RFC 5034 section 4: the
// credentials follow the "+" continuation, not the AUTH line).
func (p *probe) pop3(ctx context.Context) []Step {
	const login = "pop3-login"
	const title = "POP3 login (XOAUTH2)"
	conn, st := p.reach(ctx)
	steps := []Step{st}
	if conn == nil {
		return append(steps, skip("pop3-tls", "POP3 TLS and certificate", "no connection"), skip(login, title, "no connection"))
	}
	defer conn.Close()
	// One time limit for the rest of the conversation: the deadline
	// makes a silent server a time-out, and ctx ending closes it.
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn.SetDeadline(time.Now().Add(p.timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tc, st := p.handshake(ctx, conn)
	steps = append(steps, st)
	if tc == nil {
		return append(steps, skip(login, title, "no TLS connection"))
	}
	if p.token == "" {
		return append(steps, skip(login, title, "no access token (see the refresh step)"))
	}
	return append(steps, timed(login, title, func() Step {
		tp := textproto.NewConn(tc)
		defer tp.Close()
		line, err := tp.ReadLine()
		if err != nil {
			return p.pop3Broken(diag.StageGreeting, err)
		}
		if !strings.HasPrefix(line, "+OK") {
			return p.pop3Refused(diag.StageGreeting, line)
		}
		if err := tp.PrintfLine("AUTH XOAUTH2"); err != nil {
			return p.pop3Broken(diag.StageAuth, err)
		}
		if line, err = tp.ReadLine(); err != nil {
			return p.pop3Broken(diag.StageAuth, err)
		}
		if line != "+" && !strings.HasPrefix(line, "+ ") {
			return p.pop3Refused(diag.StageAuth, line)
		}
		blob := base64.StdEncoding.EncodeToString([]byte("user=" + p.user + "\x01auth=Bearer " + p.token + "\x01\x01"))
		if err := tp.PrintfLine("%s", blob); err != nil {
			return p.pop3Broken(diag.StageAuth, err)
		}
		// A server explaining a refusal in a "+" challenge wants an empty
		// line before its final answer; answer it at most twice.
		for range 3 {
			if line, err = tp.ReadLine(); err != nil {
				return p.pop3Broken(diag.StageAuth, err)
			}
			if line != "+" && !strings.HasPrefix(line, "+ ") {
				break
			}
			if err := tp.PrintfLine(""); err != nil {
				return p.pop3Broken(diag.StageAuth, err)
			}
		}
		if !strings.HasPrefix(line, "+OK") {
			return p.pop3Refused(diag.StageAuth, line)
		}
		tp.PrintfLine("QUIT") // a polite end; the answer does not matter
		return pass("logged in as %s", p.user)
	}))
}

func (p *probe) pop3Refused(stage diag.Stage, line string) Step {
	text := strings.TrimSpace(strings.TrimPrefix(line, "-ERR"))
	return fail(p.classify(stage, &diag.Failure{Proto: p.proto, Stage: stage, Text: text}),
		"the server answered %s", diag.ReplyText(line, 300))
}

func (p *probe) pop3Broken(stage diag.Stage, err error) Step {
	return fail(p.classify(stage, &diag.Failure{Proto: p.proto, Stage: stage, Text: p.addr, Err: err}),
		"%s failed: %v", stageName(stage), err)
}
