package bridge

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// Proto names a mail protocol; it is the diagnosis's own, so a failure
// names the protocol it was seen on without a conversion.
type Proto = diag.Proto

// The protocols the bridge relays.
const (
	IMAP = diag.ProtoIMAP
	POP3 = diag.ProtoPOP3
	SMTP = diag.ProtoSMTP
)

// Options configure a Bridge. The zero value of each field has a usable
// default noted beside it.
type Options struct {
	// Accounts are the resolved accounts (ResolveAccounts).
	Accounts []*Account
	// Store holds refresh tokens and local passwords. Required.
	Store tokens.Store
	// UpstreamRoots verify the upstream servers (tlsutil.UpstreamRoots:
	// the system roots plus tls.upstream_ca_file); nil is the system roots.
	UpstreamRoots *x509.CertPool
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient talks to the token endpoints; nil uses a 30 s timeout.
	HTTPClient *http.Client
	// DialTimeout bounds dialing and the TLS handshake upstream; 0 is 15 s.
	DialTimeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Guard paces wrong local passwords; nil uses DefaultGuard().
	Guard *Guard
	// OnEvent, when set, is called (outside any lock) when an account's
	// diagnosis changes or it needs sign-in.
	OnEvent func(Event)
}

// Bridge holds what every front end shares: the accounts, their token
// sources and local passwords, the upstream TLS settings and the status.
// It is safe for concurrent use.
type Bridge struct {
	opts  Options
	log   *slog.Logger
	guard *Guard

	mu       sync.RWMutex
	accounts map[string]*Account       // by lower-case email
	sources  map[string]*tokens.Source // by token account
	srcKeys  map[string]sourceKey      // what each source was built with
	secrets  map[string]string         // local passwords by email and proxy passwords by ProxyStoreKey, read once
	// secretsGen grows whenever secrets is emptied (SetAccounts, Reload), so
	// a store read that began before cannot put a replaced password back.
	secretsGen uint64
	status     map[string]*accountStatus // by email
	live       [3]int64                  // sessions per protocol, see protoIndex
	refusals   freshRefusals             // see upstreamLogin
	graph      graphModes                // accounts on smtp_via "auto" sending through Graph
}

// New returns a Bridge for the accounts in o. It does no I/O: secrets are
// read from the store on first use.
func New(o Options) (*Bridge, error) {
	if o.Store == nil {
		return nil, errors.New("bridge: no token store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Guard == nil {
		o.Guard = DefaultGuard()
	}
	b := &Bridge{opts: o, log: o.Logger, guard: o.Guard, status: map[string]*accountStatus{}}
	b.SetAccounts(o.Accounts)
	return b, nil
}

// Logger returns the bridge's logger.
func (b *Bridge) Logger() *slog.Logger { return b.log }

// SetAccounts replaces the account list (a config reload). Token sources of
// accounts that stay with the same client and token endpoint are kept, so
// live sessions and cached access tokens survive; cached passwords are
// re-read from the store.
func (b *Bridge) SetAccounts(accts []*Account) {
	var dropped []*tokens.Source
	// Runs after the unlock below: a source going away first saves a
	// rotated refresh token its store refused earlier.
	defer func() { b.flush(dropped) }()
	b.mu.Lock()
	defer b.mu.Unlock()
	old, oldKeys := b.sources, b.srcKeys
	b.accounts = make(map[string]*Account, len(accts))
	b.sources = make(map[string]*tokens.Source, len(accts))
	b.srcKeys = make(map[string]sourceKey, len(accts))
	b.secrets = map[string]string{}
	b.secretsGen++
	for _, a := range accts {
		b.accounts[strings.ToLower(a.Email)] = a
	}
	for _, a := range accts {
		ta := a.TokenAccount()
		if _, ok := b.sources[ta]; ok {
			continue
		}
		owner := b.accounts[ta]
		if owner == nil {
			continue // rejected by Config.Validate; nothing to refresh
		}
		key := sourceKeyOf(owner)
		b.srcKeys[ta] = key
		if s, ok := old[ta]; ok && oldKeys[ta] == key {
			s.Reload()
			b.sources[ta] = s
			continue
		}
		so := owner.SourceOptions()
		so.Store, so.HTTPClient, so.Now, so.Logger = b.opts.Store, b.tokenClient(owner), b.opts.Now, b.log
		b.sources[ta] = tokens.NewSource(so)
	}
	for ta, s := range old {
		if b.sources[ta] != s {
			dropped = append(dropped, s)
		}
	}
}

// Flush saves every rotated refresh token a store refused earlier and
// stops the retries in the background. Serve calls it at shutdown; a
// failure is logged, since the token then lives in memory only.
func (b *Bridge) Flush() {
	b.mu.RLock()
	all := make([]*tokens.Source, 0, len(b.sources))
	for _, s := range b.sources {
		all = append(all, s)
	}
	b.mu.RUnlock()
	b.flush(all)
}

func (b *Bridge) flush(srcs []*tokens.Source) {
	for _, s := range srcs {
		if err := s.Flush(); err != nil {
			b.log.Error("a new refresh token could not be saved; the next start may need `bridge login`", "err", err)
		}
	}
}

// sourceKey is what a token source refreshes with. A reload that changes
// any of it (another client_id after `bridge login --client-id`, another
// tenant's endpoint) needs a new source: the old one would refresh the new
// sign-in's token as the wrong client and mark the account as needing a
// sign-in again. Another proxy setting needs a new source too, since the
// source's HTTP client dials through it.
type sourceKey struct {
	clientID, clientSecret, tokenURL, scopes, proxy string
	app                                             bool
}

func sourceKeyOf(a *Account) sourceKey {
	return sourceKey{a.ClientID, a.ClientSecret, a.Provider.TokenURL, strings.Join(a.Provider.Scopes, "\x00"), a.Proxy, a.App}
}

// Accounts returns the accounts, in no particular order.
func (b *Bridge) Accounts() []*Account {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*Account, 0, len(b.accounts))
	for _, a := range b.accounts {
		out = append(out, a)
	}
	return out
}

// Account looks an account up by login name, ignoring case.
func (b *Bridge) Account(email string) *Account {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.accounts[strings.ToLower(email)]
}

// Source returns the token source an account uses, or nil.
func (b *Bridge) Source(a *Account) *tokens.Source {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sources[a.TokenAccount()]
}

// Reload makes every token source and cached password re-read the store,
// for SIGHUP and after another process ran `bridge login`.
func (b *Bridge) Reload() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secrets = map[string]string{}
	b.secretsGen++
	for _, s := range b.sources {
		s.Reload()
	}
}

// Login is a checked local login with a fresh access token.
type Login struct {
	// Account is the account logged in to.
	Account *Account
	// User is the XOAUTH2 user= to send upstream: the mailbox for IMAP and
	// POP3, the token owner for SMTP (shared mailboxes send as a delegate);
	// the mailbox on every protocol for an app-only account, whose token
	// names no user.
	User string
	// Token is the access token. Never log it.
	Token string
	// Expiry is when Token expires.
	Expiry time.Time
	// Fresh is true when Token came from a refresh made for this login
	// (or one it waited for): a refusal of it is the upstream's answer,
	// not a token revoked since it was issued (see upstreamLogin).
	Fresh bool
}

// ErrAuthFailed is a wrong local password or an unknown login name; the
// two are not told apart, to the client or in timing.
var ErrAuthFailed = errors.New("bridge: wrong local password or unknown account")

// Login checks a client's local login for proto and takes a fresh access
// token. peer is the client's address and client the name it gave (IMAP
// ID, SMTP EHLO; "" when none), for the password guard and the account's
// refused logins. Every error is a *LoginError, whose Account is set once
// the local password was accepted, wrapping ErrAuthFailed, a store error,
// or a token error (tokens.ErrNeedsLogin, *tokens.Error). Nothing is
// dialed and nothing recorded: the front end hands the error to Refuse.
//
// The password is checked before anything else: the right one is accepted
// without a pause whatever wrong ones came before. A wrong one is answered
// after the guard's pause, which grows with the recent failures of the
// login name (and of the peer); an unknown name is counted and paused in
// the same way, so the reply and its timing do not tell the two apart.
func (b *Bridge) Login(ctx context.Context, proto Proto, user, pass string, peer net.Addr, client string) (*Login, error) {
	a, err := b.checkPassword(ctx, proto, user, pass, peer, client)
	if err != nil {
		return nil, err
	}
	return b.loginToken(ctx, proto, a)
}

// checkPassword is the local half of Login: the account whose local
// password pass is, or a *LoginError (ErrAuthFailed, a store error) after
// the guard's pause. The SMTP front end calls it alone for an account
// that sends through Graph, whose token is another.
func (b *Bridge) checkPassword(ctx context.Context, proto Proto, user, pass string, peer net.Addr, client string) (*Account, error) {
	user = strings.ToLower(strings.TrimSpace(user))
	a := b.Account(user)
	want, err := b.password(a)
	if err != nil {
		return nil, &LoginError{Err: err}
	}
	// Compare even when the account is unknown, so timing tells nothing.
	if !tokens.PasswordEqual(want, pass) || a == nil || want == "" {
		d := b.guard.Fail(user, peer)
		if a != nil {
			b.noteRefused(a, proto, peer, client)
		}
		b.log.Warn("local login refused", "proto", proto, "user", logName(user), "peer", peerString(peer),
			"client", clientName(client), "pause", d)
		sleep(ctx, d)
		return nil, &LoginError{Err: ErrAuthFailed}
	}
	return a, nil
}

// loginToken is the token half of Login, for account a whose local
// password was accepted.
func (b *Bridge) loginToken(ctx context.Context, proto Proto, a *Account) (*Login, error) {
	src := b.Source(a)
	if src == nil {
		return nil, &LoginError{Account: a, Err: fmt.Errorf("bridge: %s: token account %s is not configured: %w", a.Email, a.TokenAccount(), tokens.ErrNeedsLogin)}
	}
	l, err := b.takeToken(ctx, src, a, a.UpstreamUser(proto))
	if err != nil {
		return nil, &LoginError{Account: a, Err: err}
	}
	return l, nil
}

// password returns the account's local password from memory, reading the
// store once. An unknown account yields "" and no error.
func (b *Bridge) password(a *Account) (string, error) {
	if a == nil {
		return "", nil
	}
	b.mu.RLock()
	pw, ok := b.secrets[a.Email]
	gen := b.secretsGen
	b.mu.RUnlock()
	if ok {
		return pw, nil
	}
	e, err := b.opts.Store.Get(a.Email)
	if err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return "", fmt.Errorf("bridge: reading the local password of %s: %w", a.Email, err)
	}
	b.mu.Lock()
	if b.secretsGen == gen {
		b.secrets[a.Email] = e.Password
	}
	b.mu.Unlock()
	return e.Password, nil
}

// logName is a client-sent login name as it may be logged: at most 100
// bytes, printable ASCII. A client that types its password into the name
// field would otherwise put it in the log in full.
func logName(user string) string {
	return diag.ReplyText(user[:min(len(user), 400)], 100)
}

func peerString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
