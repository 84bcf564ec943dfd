package bridge

import (
	"errors"
	"sort"
	"sync/atomic"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// Event tells a listener (the control socket, the notify command) that an
// account's state changed.
type Event struct {
	// Account is the account's email.
	Account string `json:"account"`
	// Proto is the protocol the failure was seen on, or "" for the token.
	Proto Proto `json:"proto,omitempty"`
	// Diagnosis is the new diagnosis; its ID is "" when the account
	// recovered.
	Diagnosis diag.Diagnosis `json:"diagnosis"`
}

type accountStatus struct {
	last    map[Proto]diag.Diagnosis
	lastOK  map[Proto]time.Time
	current string // ID of the diagnosis last announced, for once-per-change events
	refused RefusedLogins
}

// statusOf returns account a's status record, making it; b.mu is held.
func (b *Bridge) statusOf(a *Account) *accountStatus {
	st := b.status[a.Email]
	if st == nil {
		st = &accountStatus{last: map[Proto]diag.Diagnosis{}, lastOK: map[Proto]time.Time{}}
		b.status[a.Email] = st
	}
	return st
}

// AccountStatus is the state of one account, for `bridge status` and the
// tray.
type AccountStatus struct {
	Email     string             `json:"email"`
	Mailbox   string             `json:"mailbox,omitempty"`
	TokenFrom string             `json:"token_from,omitempty"`
	Token     tokens.SourceState `json:"token"`
	// Last is the last failure seen per protocol.
	Last map[Proto]diag.Diagnosis `json:"last,omitempty"`
	// LastOK is when each protocol last logged in upstream.
	LastOK map[Proto]time.Time `json:"last_ok,omitempty"`
	// Refused are the recent wrong local passwords; nil when none came
	// within the guard's Window.
	Refused *RefusedLogins `json:"refused_logins,omitempty"`
	// Graph is set while the SMTP front end sends the account's mail
	// through Microsoft Graph (smtp_via "graph", or "auto" after Exchange
	// said SMTP AUTH is off).
	Graph *GraphUse `json:"graph,omitempty"`
}

// Status is a snapshot of the bridge.
type Status struct {
	Accounts []AccountStatus `json:"accounts"`
	// Sessions counts live client sessions per protocol.
	Sessions map[Proto]int64 `json:"sessions"`
}

func protoIndex(p Proto) int {
	switch p {
	case IMAP:
		return 0
	case POP3:
		return 1
	}
	return 2
}

// Track counts a live session of p until the returned func is called.
func (b *Bridge) Track(p Proto) (done func()) {
	n := &b.live[protoIndex(p)]
	atomic.AddInt64(n, 1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			atomic.AddInt64(n, -1)
		}
	}
}

// Record classifies err for account a, keeps it as the account's last
// diagnosis for p, logs the full form and announces a change. It returns the
// diagnosis so the caller can word its reply. A nil err records a success.
func (b *Bridge) Record(a *Account, p Proto, err error) diag.Diagnosis {
	d := b.diagnose(a, err)
	// A wrong local password is the client's mistake, not a change of the
	// account's state.
	b.keep(a, p, d, errors.Is(err, ErrAuthFailed))
	return d
}

// diagnose classifies err for account a, at the bridge's clock; a nil err
// gives the zero Diagnosis.
func (b *Bridge) diagnose(a *Account, err error) diag.Diagnosis {
	return diag.Classify(err, diagAccount(a, err), b.opts.Now())
}

// keep is Record after the classification: d (zero for a success) becomes
// account a's last diagnosis for p, is logged, and a change is announced
// unless quiet.
func (b *Bridge) keep(a *Account, p Proto, d diag.Diagnosis, quiet bool) {
	failed, now := d.ID != "", b.opts.Now()
	b.mu.Lock()
	st := b.statusOf(a)
	if failed {
		st.last[p] = d
	} else {
		st.lastOK[p] = now
		delete(st.last, p)
	}
	changed := st.current != d.ID && (failed || len(st.last) == 0)
	if changed {
		st.current = d.ID
	}
	b.mu.Unlock()
	if failed {
		b.log.Warn("upstream refused", "account", a.Email, "proto", p, "id", d.ID, "title", d.Title, "raw", d.Raw, "fix", d.Fix)
	}
	if changed && b.opts.OnEvent != nil && !quiet {
		b.opts.OnEvent(Event{Account: a.Email, Proto: p, Diagnosis: d})
	}
}

// Status returns a snapshot of every account and the live sessions.
func (b *Bridge) Status() Status {
	accts := b.Accounts()
	sort.Slice(accts, func(i, j int) bool { return accts[i].Email < accts[j].Email })
	s := Status{Sessions: map[Proto]int64{}}
	for _, p := range []Proto{IMAP, POP3, SMTP} {
		s.Sessions[p] = atomic.LoadInt64(&b.live[protoIndex(p)])
	}
	for _, a := range accts {
		as := AccountStatus{Email: a.Email, TokenFrom: a.TokenFrom}
		if a.Mailbox != a.Email {
			as.Mailbox = a.Mailbox
		}
		if src := b.Source(a); src != nil {
			as.Token = src.State()
		}
		if u, ok := b.graphStatus(a); ok {
			as.Graph = &u
		}
		b.mu.RLock()
		if st := b.status[a.Email]; st != nil {
			as.Last = make(map[Proto]diag.Diagnosis, len(st.last))
			for k, v := range st.last {
				as.Last[k] = v
			}
			as.LastOK = make(map[Proto]time.Time, len(st.lastOK))
			for k, v := range st.lastOK {
				as.LastOK[k] = v
			}
			as.Refused = b.refusedNow(st)
		}
		b.mu.RUnlock()
		s.Accounts = append(s.Accounts, as)
	}
	return s
}
