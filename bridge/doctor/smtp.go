package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// smtp checks the submission server: reach, the greeting and EHLO, STARTTLS
// (RFC 3207) with the certificate, and the AUTH XOAUTH2 login the bridge
// does (bridge.SMTPUpstreamLogin). No mail is sent. A server on the
// implicit-TLS port is checked as the bridge dials it (smtpImplicit).
func (p *probe) smtp(ctx context.Context) []Step {
	if p.implicitTLS {
		return p.smtpImplicit(ctx)
	}
	const (
		starttls = "smtp-starttls"
		tlsStep  = "smtp-tls"
		login    = "smtp-login"
	)
	titles := map[string]string{
		starttls: "SMTP greeting, EHLO and STARTTLS",
		tlsStep:  "SMTP TLS and certificate",
		login:    "SMTP login (XOAUTH2)",
	}
	conn, st := p.reach(ctx)
	steps := []Step{st}
	if conn == nil {
		return append(steps, skip(starttls, titles[starttls], "no connection"),
			skip(tlsStep, titles[tlsStep], "no connection"), skip(login, titles[login], "no connection"))
	}
	defer conn.Close()
	// go-smtp sets its own deadlines (5 minutes for the greeting); the
	// probe's time limit closes the connection instead.
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var state *tls.ConnectionState
	var c *smtp.Client
	steps = append(steps, timed(starttls, titles[starttls], func() Step {
		cfg, err := p.tlsConfig()
		if err != nil {
			return p.tlsFailed(err)
		}
		// go-smtp runs the handshake inside its next command;
		// VerifyConnection runs after the usual verification succeeded
		// and keeps the state to describe the certificate.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			state = &cs
			return nil
		}
		// NewClientStartTLS reads the greeting, sends EHLO and STARTTLS.
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			c = nil
			if strings.Contains(err.Error(), "STARTTLS") {
				return p.tlsFailed(err)
			}
			return p.smtpFailed(diag.StageGreeting, err)
		}
		c.CommandTimeout = p.timeout
		return pass("greeting and EHLO answered; STARTTLS accepted")
	}))
	if c == nil {
		return append(steps, skip(tlsStep, titles[tlsStep], "STARTTLS failed"), skip(login, titles[login], "STARTTLS failed"))
	}
	defer c.Close()
	tlsOK := false
	steps = append(steps, timed(tlsStep, titles[tlsStep], func() Step {
		// EHLO again, now over TLS: this runs the handshake.
		if err := c.Hello("localhost"); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return p.smtpFailed(diag.StageGreeting, err)
			}
			return p.tlsFailed(err)
		}
		tlsOK = true
		detail := "handshake done"
		if state != nil {
			detail = describeTLS(*state)
		}
		if ok, mechs := c.Extension("AUTH"); ok {
			detail += "; AUTH offers " + mechs
		}
		return pass("%s", detail)
	}))
	if !tlsOK {
		return append(steps, skip(login, titles[login], "no TLS connection"))
	}
	if p.token == "" {
		return append(steps, skip(login, titles[login], "no access token (see the refresh step)"))
	}
	steps = append(steps, timed(login, titles[login], func() Step { return p.smtpLogin(c, "after STARTTLS") }))
	c.Quit() // a polite end; the answer does not matter
	return steps
}

// smtpLogin is the login step on a session that said EHLO over TLS; where
// names the TLS ("after STARTTLS") for the refusal of a server without
// XOAUTH2.
func (p *probe) smtpLogin(c *smtp.Client, where string) Step {
	if ok, mechs := c.Extension("AUTH"); ok && !hasWord(mechs, xoauth2.Mechanism) {
		return fail(p.classify(diag.StageAuth, &diag.Failure{Proto: p.proto, Stage: diag.StageAuth, Text: "AUTH " + mechs}),
			"the server does not offer XOAUTH2 %s (it offers %s)", where, mechs)
	}
	if err := bridge.SMTPUpstreamLogin(c, p.user, p.token); err != nil {
		return p.upstreamFailed(diag.StageAuth, err)
	}
	return pass("logged in as %s; no mail was sent", p.user)
}

// smtpFailed turns a go-smtp error before the login into a step: an SMTP
// reply is a refusal for the diagnosis table, anything else a transport
// failure.
func (p *probe) smtpFailed(stage diag.Stage, err error) Step {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		f := &diag.Failure{Proto: p.proto, Stage: stage, Code: se.Code, Text: se.Message}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			f.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		err = f
	}
	return p.upstreamFailed(stage, err)
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}
