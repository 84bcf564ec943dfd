package doctor

import (
	"context"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
)

// smtpImplicit checks a submission server on the implicit-TLS port (RFC
// 8314 section 3.3, smtp.gmail.com:465): reach, the TLS handshake with the
// certificate, the greeting and EHLO over TLS, and the AUTH XOAUTH2 login
// the bridge does. No mail is sent.
func (p *probe) smtpImplicit(ctx context.Context) []Step {
	const (
		tlsStep  = "smtp-tls"
		greeting = "smtp-greeting"
		login    = "smtp-login"
	)
	titles := map[string]string{
		tlsStep:  "SMTP TLS and certificate (implicit TLS)",
		greeting: "SMTP greeting and EHLO",
		login:    "SMTP login (XOAUTH2)",
	}
	conn, st := p.reach(ctx)
	steps := []Step{st}
	if conn == nil {
		return append(steps, skip(tlsStep, titles[tlsStep], "no connection"),
			skip(greeting, titles[greeting], "no connection"), skip(login, titles[login], "no connection"))
	}
	defer conn.Close()
	tc, st := p.handshake(ctx, conn)
	st.Title = titles[tlsStep]
	steps = append(steps, st)
	if tc == nil {
		return append(steps, skip(greeting, titles[greeting], "no TLS connection"), skip(login, titles[login], "no TLS connection"))
	}
	// go-smtp sets its own deadlines (5 minutes for the greeting); the
	// probe's time limit closes the connection instead.
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(tc)
	c.CommandTimeout = p.timeout
	defer c.Close()
	greeted := false
	steps = append(steps, timed(greeting, titles[greeting], func() Step {
		if err := c.Hello("localhost"); err != nil {
			return p.smtpFailed(diag.StageGreeting, err)
		}
		greeted = true
		detail := "greeting and EHLO answered over TLS"
		if ok, mechs := c.Extension("AUTH"); ok {
			detail += "; AUTH offers " + mechs
		}
		return pass("%s", detail)
	}))
	switch {
	case !greeted:
		return append(steps, skip(login, titles[login], "no greeting"))
	case p.token == "":
		return append(steps, skip(login, titles[login], "no access token (see the refresh step)"))
	}
	steps = append(steps, timed(login, titles[login], func() Step { return p.smtpLogin(c, "over TLS") }))
	c.Quit() // a polite end; the answer does not matter
	return steps
}
