package doctor

import (
	"context"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
)

// pop3 checks the POP3 server: reach, TLS (implicit, port 995) and the
// two-step AUTH XOAUTH2 login the bridge does (bridge.POP3UpstreamLogin).
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
		if _, err := bridge.POP3UpstreamLogin(ctx, tc, p.user, p.token); err != nil {
			return p.upstreamFailed(diag.StageAuth, err)
		}
		tc.Write([]byte("QUIT\r\n")) // a polite end; the answer does not matter
		return pass("logged in as %s", p.user)
	}))
}
