package bridge

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// RefusedLogins are an account's recent wrong local passwords, so that "my
// scanner still has the old password" shows in `bridge status`, the tray
// and `bridge doctor`. Only logins with a known account's name count: a
// made-up name is nobody's, and is not kept.
type RefusedLogins struct {
	// Count is how many local logins were refused since Since, each
	// within the guard's Window of the one before.
	Count int `json:"count"`
	// Since is when the first of them came.
	Since time.Time `json:"since"`
	// Last is when the last came.
	Last time.Time `json:"last"`
	// LastPeer is the address (without port) the last came from.
	LastPeer string `json:"last_peer,omitempty"`
	// LastProto is the protocol of the last.
	LastProto Proto `json:"last_proto"`
	// LastClient is the name the last client gave (IMAP ID "name", SMTP
	// EHLO), cleaned for display; "" when it gave none (POP3 has none).
	LastClient string `json:"last_client,omitempty"`
}

// clientNameMax bounds a client's name as kept and logged.
const clientNameMax = 64

// clientName is a client-sent name (IMAP ID, SMTP EHLO) as it may be kept
// and shown: printable ASCII, at most clientNameMax bytes.
func clientName(s string) string {
	return diag.ReplyText(s[:min(len(s), 4*clientNameMax)], clientNameMax)
}

// noteRefused adds a wrong local password for account a to its refused
// logins. A count that saw nothing for the guard's Window starts again.
func (b *Bridge) noteRefused(a *Account, p Proto, peer net.Addr, client string) {
	now := b.guard.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.statusOf(a)
	r := st.refused
	if r.Count == 0 || now.Sub(r.Last) > b.guard.window() {
		r = RefusedLogins{Since: now}
	}
	r.Count++
	r.Last, r.LastPeer, r.LastProto, r.LastClient = now, peerHost(peer), p, clientName(client)
	st.refused = r
}

// refusedNow returns the account's refused logins unless they aged out;
// b.mu is held.
func (b *Bridge) refusedNow(st *accountStatus) *RefusedLogins {
	r := st.refused
	if r.Count == 0 || b.guard.now().Sub(r.Last) > b.guard.window() {
		return nil
	}
	return &r
}

// Text says it for people, in local time: "12 wrong local passwords since
// 13:58, the last at 14:02 from 127.0.0.1 (Canon MF, SMTP)".
func (r *RefusedLogins) Text() string {
	from := r.LastPeer
	if from == "" {
		from = "an unknown address"
	}
	how := strings.ToUpper(string(r.LastProto))
	if r.LastClient != "" {
		how = r.LastClient + ", " + how
	}
	if r.Count == 1 {
		return fmt.Sprintf("1 wrong local password at %s from %s (%s)", clock(r.Last), from, how)
	}
	since, last := clock(r.Since), clock(r.Last)
	if since == last {
		return fmt.Sprintf("%d wrong local passwords at %s, the last from %s (%s)", r.Count, last, from, how)
	}
	return fmt.Sprintf("%d wrong local passwords since %s, the last at %s from %s (%s)", r.Count, since, last, from, how)
}

// Fix says what the person does about them.
func (r *RefusedLogins) Fix(email string) string {
	return "A mail client or device still has an old password: give it the one `bridge password " + email + "` shows"
}

// clock formats t in local time: the time of day, with the date unless
// it is today.
func clock(t time.Time) string {
	t = t.Local()
	y, m, d := t.Date()
	if ny, nm, nd := time.Now().Date(); y == ny && m == nm && d == nd {
		return t.Format("15:04")
	}
	return t.Format("2006-01-02 15:04")
}
