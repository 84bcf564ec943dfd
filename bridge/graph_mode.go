package bridge

import (
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// graphRetrySMTP is how long an account on smtp_via "auto" sends through
// Microsoft Graph after Exchange said SMTP AUTH is off, before a login
// tries SMTP again: an administrator who switches it back on sees the
// bridge return to SMTP within that time, and a tenant that keeps it off
// costs one refused SMTP login per period.
const graphRetrySMTP = 6 * time.Hour

// GraphUse says that and why the SMTP front end sends an account's mail
// through Microsoft Graph, for `bridge status` and the tray.
type GraphUse struct {
	// Since is when the bridge began to (config smtp_via "graph": zero).
	Since time.Time `json:"since,omitzero"`
	// Reason is the diagnosis id of the SMTP refusal that made it switch
	// ("smtp-auth-disabled-tenant"), or "smtp_via = graph".
	Reason string `json:"reason"`
	// RetrySMTP is when a login tries SMTP again; zero with smtp_via
	// "graph".
	RetrySMTP time.Time `json:"retry_smtp,omitzero"`
}

// graphModes remembers, in memory, the accounts on smtp_via "auto" that
// send through Graph. The zero value is empty and ready.
type graphModes struct {
	mu sync.Mutex
	m  map[string]GraphUse // by email
}

// sendsViaGraph reports whether a's next SMTP login submits through
// Graph: always with smtp_via "graph", never with "smtp", and with "auto"
// while Exchange's last word on SMTP AUTH is less than graphRetrySMTP old.
func (b *Bridge) sendsViaGraph(a *Account) bool {
	_, ok := b.graphUse(a)
	return ok
}

// graphUse is sendsViaGraph with the reason.
func (b *Bridge) graphUse(a *Account) (GraphUse, bool) {
	switch a.SMTPVia {
	case viaGraph:
		return GraphUse{Reason: "smtp_via = graph"}, true
	case viaAuto:
	default:
		return GraphUse{}, false
	}
	g := &b.graph
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.m[a.Email]
	if ok && !b.opts.Now().Before(u.RetrySMTP) {
		return u, false
	}
	return u, ok
}

// graphStatus is graphUse for status: an account on "auto" shows Graph
// until a login found SMTP working again.
func (b *Bridge) graphStatus(a *Account) (GraphUse, bool) {
	if a.SMTPVia != viaAuto {
		return b.graphUse(a)
	}
	g := &b.graph
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.m[a.Email]
	return u, ok
}

// switchToGraph makes account a (smtp_via "auto") send through Graph for
// graphRetrySMTP, because of d, Exchange's refusal of SMTP AUTH.
func (b *Bridge) switchToGraph(a *Account, d diag.Diagnosis) {
	now := b.opts.Now()
	g := &b.graph
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]GraphUse{}
	}
	u, known := g.m[a.Email]
	if !known {
		u.Since = now
	}
	u.Reason, u.RetrySMTP = d.ID, now.Add(graphRetrySMTP)
	g.m[a.Email] = u
	g.mu.Unlock()
	b.log.Warn("SMTP AUTH is switched off; sending through Microsoft Graph instead",
		"account", a.Email, "id", d.ID, "retry_smtp", u.RetrySMTP.Format(time.RFC3339))
}

// backToSMTP forgets that a sends through Graph: an SMTP login worked.
func (b *Bridge) backToSMTP(a *Account) {
	g := &b.graph
	g.mu.Lock()
	_, was := g.m[a.Email]
	delete(g.m, a.Email)
	g.mu.Unlock()
	if was {
		b.log.Info("SMTP AUTH works again; sending through SMTP", "account", a.Email)
	}
}

// smtpAuthOff reports whether d says Exchange switched SMTP AUTH off for
// the tenant or the mailbox: what makes smtp_via "auto" use Graph.
func smtpAuthOff(d diag.Diagnosis) bool {
	return strings.HasPrefix(d.ID, "smtp-auth-disabled-")
}
