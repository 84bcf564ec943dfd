package doctor

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
)

// probe is one protocol's checks for one account.
type probe struct {
	proto bridge.Proto
	label string // "IMAP", "POP3", "SMTP"
	addr  string // upstream host:port
	// implicitTLS: SMTP speaks TLS from the first byte
	// (Provider.SMTPImplicitTLS).
	implicitTLS bool
	user        string // XOAUTH2 user=
	token       string // access token; "" when the refresh failed
	roots       *x509.CertPool
	timeout     time.Duration
	diag        diag.Account
	now         func() time.Time // the clock a failure is seen by
	hop         *hop             // the proxy in front of the server; nil for none
}

// checkAccount runs every step for account a; all is every account, for
// finding the owner of borrowed tokens.
func checkAccount(ctx context.Context, o Options, all []*bridge.Account, a *bridge.Account) AccountReport {
	rep := AccountReport{Email: a.Email}
	owner := a
	for _, b := range all {
		if b.Email == a.TokenAccount() {
			owner = b
		}
	}
	protos := probedProtos(o.Config, a)
	rep.Steps = append(rep.Steps, timed("account", "Account in the config", func() Step {
		return pass("%s", describeAccount(a, protos))
	}))
	hp, proxySteps := checkProxy(ctx, o, a)
	rep.Steps = append(rep.Steps, proxySteps...)
	tc := &tokenCheck{o: o, a: a, owner: owner}
	rep.Steps = append(rep.Steps, tc.steps(ctx, protos)...)

	results := make([][]Step, len(protos))
	var wg sync.WaitGroup
	for i, pr := range protos {
		p := &probe{
			proto:       pr,
			label:       strings.ToUpper(string(pr)),
			addr:        a.Server(pr),
			implicitTLS: pr == bridge.SMTP && a.Provider.SMTPImplicitTLS,
			user:        a.UpstreamUser(pr),
			token:       tc.access,
			roots:       o.Roots,
			timeout:     o.Timeout,
			diag:        a.DiagWith(tc.access),
			now:         o.Now,
			hop:         hp,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch pr {
			case bridge.IMAP:
				results[i] = p.imap(ctx)
			case bridge.POP3:
				results[i] = p.pop3(ctx)
			default:
				results[i] = p.smtp(ctx)
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		rep.Steps = append(rep.Steps, r...)
	}
	if a.SMTPVia == "auto" {
		graphCovers(rep.Steps)
	}
	scrub(rep.Steps, tc.secrets()...)
	return rep
}

// probedProtos are the protocols a local listener serves and the account
// has a server for: a protocol no client can use through this bridge is
// not worth a failure (POP is often off in a tenant on purpose).
func probedProtos(cfg *config.Config, a *bridge.Account) []bridge.Proto {
	l := cfg.Listen
	var out []bridge.Proto
	for _, c := range []struct {
		p  bridge.Proto
		on bool
	}{
		{bridge.IMAP, l.IMAP != "" || l.IMAPS != ""},
		{bridge.POP3, l.POP3 != "" || l.POP3S != ""},
		// With smtp_via "graph" no SMTP login happens: the Graph steps
		// check the way mail leaves.
		{bridge.SMTP, (l.SMTP != "" || l.SMTPS != "") && a.SMTPVia != "graph"},
	} {
		if c.on && a.Server(c.p) != "" {
			out = append(out, c.p)
		}
	}
	return out
}

func describeAccount(a *bridge.Account, protos []bridge.Proto) string {
	var b strings.Builder
	b.WriteString("found")
	if a.Mailbox != a.Email {
		fmt.Fprintf(&b, "; opens the mailbox %s", a.Mailbox)
	}
	if a.TokenFrom != "" {
		fmt.Fprintf(&b, "; uses the sign-in of %s", a.TokenFrom)
	}
	if a.App {
		fmt.Fprintf(&b, "; app-only: app %s in tenant %s", a.ClientID, a.Tenant)
	}
	switch a.SMTPVia {
	case "graph":
		b.WriteString("; sends through Microsoft Graph (smtp_via = \"graph\")")
	case "auto":
		b.WriteString("; sends through SMTP, or Microsoft Graph while SMTP AUTH is off (smtp_via = \"auto\")")
	}
	var checked, off []string
	for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
		name := strings.ToUpper(string(p))
		if containsProto(protos, p) {
			checked = append(checked, name+" "+a.Server(p))
		} else {
			off = append(off, name)
		}
	}
	if len(checked) > 0 {
		fmt.Fprintf(&b, "; checking %s", strings.Join(checked, ", "))
	}
	if len(off) > 0 {
		fmt.Fprintf(&b, "; not checking %s (no local listener or server configured)", strings.Join(off, ", "))
	}
	return b.String()
}

func containsProto(ps []bridge.Proto, p bridge.Proto) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// graphCovers turns a failed SMTP login that says SMTP AUTH is off into a
// warning, for an account on smtp_via "auto": its mail goes through
// Microsoft Graph then, which the Graph steps check.
func graphCovers(steps []Step) {
	for i, s := range steps {
		if s.Name == "smtp-login" && s.Status == Fail && s.Diagnosis != nil && strings.HasPrefix(s.Diagnosis.ID, "smtp-auth-disabled-") {
			steps[i].Status, steps[i].OK = Warn, true
			steps[i].Detail += "; the bridge sends through Microsoft Graph instead"
		}
	}
}

// scrub replaces every secret in the steps' texts. No step should ever
// hold one; this makes sure a server that echoes a token back cannot put
// it on the screen.
func scrub(steps []Step, secrets ...string) {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 8 {
			pairs = append(pairs, s, "[secret]")
		}
	}
	if len(pairs) == 0 {
		return
	}
	r := strings.NewReplacer(pairs...)
	for i := range steps {
		steps[i].Detail = r.Replace(steps[i].Detail)
		if d := steps[i].Diagnosis; d != nil {
			d.Title, d.Cause, d.Fix, d.Raw = r.Replace(d.Title), r.Replace(d.Cause), r.Replace(d.Fix), r.Replace(d.Raw)
		}
	}
}
