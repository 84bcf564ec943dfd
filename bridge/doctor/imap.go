package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
)

// imap checks the IMAP server: reach, TLS (implicit, port 993), the
// XOAUTH2 login the bridge does (bridge.IMAPUpstreamLogin) and EXAMINE
// INBOX. Exchange accepts a token whose identity cannot open the mailbox
// and refuses only the first mailbox command ("User is authenticated but
// not connected"), so the login alone proves little.
func (p *probe) imap(ctx context.Context) []Step {
	const (
		login   = "imap-login"
		mailbox = "imap-mailbox"
	)
	titles := map[string]string{login: "IMAP login (XOAUTH2)", mailbox: "IMAP mailbox (EXAMINE INBOX)"}
	conn, st := p.reach(ctx)
	steps := []Step{st}
	if conn == nil {
		return append(steps, skip("imap-tls", "IMAP TLS and certificate", "no connection"),
			skip(login, titles[login], "no connection"), skip(mailbox, titles[mailbox], "no connection"))
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
		return append(steps, skip(login, titles[login], "no TLS connection"), skip(mailbox, titles[mailbox], "no TLS connection"))
	}
	if p.token == "" {
		return append(steps, skip(login, titles[login], "no access token (see the refresh step)"),
			skip(mailbox, titles[mailbox], "not logged in"))
	}
	br := bufio.NewReader(tc)
	loggedIn := false
	steps = append(steps, timed(login, titles[login], func() Step {
		if _, err := bridge.IMAPUpstreamLogin(tc, br, p.user, p.token); err != nil {
			return p.upstreamFailed(diag.StageAuth, err)
		}
		loggedIn = true
		return pass("logged in as %s", p.user)
	}))
	if !loggedIn {
		return append(steps, skip(mailbox, titles[mailbox], "not logged in"))
	}
	// The mailbox command goes through go-imap's client, which expects a
	// greeting first: a PREAUTH one (RFC 3501 section 7.1.4) says what is
	// true, that the connection is logged in, and what the server sends
	// next follows it.
	c := imapclient.New(&preauthConn{Conn: tc, r: io.MultiReader(strings.NewReader("* PREAUTH logged in\r\n"), br)}, &imapclient.Options{})
	defer c.Close()
	steps = append(steps, timed(mailbox, titles[mailbox], func() Step {
		data, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return p.imapFailed(diag.StageMailbox, err)
		}
		return pass("INBOX of %s opened read-only: %s", p.user, plural(int(data.NumMessages), "message"))
	}))
	// A polite end; the answer does not matter.
	c.Logout().Wait()
	return steps
}

// preauthConn reads from r instead of the connection.
type preauthConn struct {
	net.Conn
	r io.Reader
}

func (c *preauthConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// imapFailed turns an imapclient error into a step: a server answer (NO,
// BAD, BYE) is a refusal for the diagnosis table, anything else a
// transport failure.
func (p *probe) imapFailed(stage diag.Stage, err error) Step {
	var ie *imap.Error
	if errors.As(err, &ie) {
		f := &diag.Failure{Proto: p.proto, Stage: stage, RespCode: string(ie.Code), Text: ie.Text}
		return fail(p.classify(stage, f), "the server answered %s %s", ie.Type, diag.ReplyText(ie.Text, 300))
	}
	return fail(p.classify(stage, &diag.Failure{Proto: p.proto, Stage: stage, Text: p.addr, Err: err}),
		"%s failed: %v", stageName(stage), err)
}

func stageName(stage diag.Stage) string {
	switch stage {
	case diag.StageGreeting:
		return "waiting for the greeting"
	case diag.StageAuth:
		return "the login"
	case diag.StageMailbox:
		return "the mailbox command"
	}
	return fmt.Sprintf("the %s step", stage)
}
