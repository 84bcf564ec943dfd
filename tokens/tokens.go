// Package tokens signs accounts in with OAuth 2.0, keeps their secrets in a
// store (the OS keyring or a file) and hands out fresh access tokens,
// refreshing them before Exchange would end a session.
package tokens

import (
	"errors"
	"time"
)

// Provider says where an account signs in and which mail servers it uses.
// Every field can be overridden per account.
type Provider struct {
	// Name is "microsoft", "gmail" or "custom".
	Name string
	// AuthURL, TokenURL and DeviceURL are the OAuth endpoints. DeviceURL
	// empty means the provider has no device-code flow.
	AuthURL, TokenURL, DeviceURL string
	// Scopes are requested at sign-in and on every refresh.
	Scopes []string
	// IdentityScopes are OpenID Connect scopes added to the sign-in
	// request only, so that the token answer carries an ID token saying
	// who signed in (see SignedInAs). Empty for providers without OpenID
	// Connect.
	IdentityScopes []string
	// IMAP, POP3 and SMTP are the upstream servers as host:port. IMAP and
	// POP3 use implicit TLS; SMTP uses STARTTLS unless SMTPImplicitTLS.
	IMAP, POP3, SMTP string
	// SMTPImplicitTLS makes SMTP speak TLS from the first byte (RFC 8314
	// section 3.3), as smtp.gmail.com:465 does, instead of STARTTLS. The
	// bridge sets it for an SMTP server on port 465.
	SMTPImplicitTLS bool
	// NeedsSecret is true for providers that refuse public clients.
	NeedsSecret bool
	// AuthParams are added to the browser sign-in's authorize request.
	// Without a "prompt" among them, prompt=select_account is sent.
	AuthParams map[string]string
	// DeviceRefused, when not empty, says why the provider's device-code
	// flow cannot give a token for its mail servers; DeviceLogin refuses
	// with it before sending anything.
	DeviceRefused string
	// MustGrant are scopes the mail servers cannot do without. A sign-in
	// whose answer lists the scopes granted without one of them fails
	// with ErrScopeNotGranted (a person may untick a scope on a consent
	// page that asks for each one). Empty skips the check.
	MustGrant []string
}

// Entry is what the store keeps for one account. Access tokens are never
// stored: they live in memory only.
type Entry struct {
	// RefreshToken is the newest refresh token.
	RefreshToken string `json:"rt,omitempty"`
	// AppCredential is what an app-only account proves itself with
	// instead of a refresh token: its client secret, or its certificate
	// and private key as PEM (see ParseAppCredential). Empty for a
	// delegated account.
	AppCredential string `json:"app,omitempty"`
	// Password is the local password mail clients log in with.
	Password string `json:"pw,omitempty"`
	// Updated is when RefreshToken (or AppCredential) was last written.
	Updated time.Time `json:"updated,omitempty"`
	// NeedsLogin, when not empty, says why the account must run
	// `bridge login` again (for example an AADSTS700082 expiry).
	NeedsLogin string `json:"needs_login,omitempty"`
}

// grant is what the entry's account gets access tokens with: the refresh
// token, or an app-only account's credential. An account has one or the
// other.
func (e Entry) grant() string {
	if e.RefreshToken != "" {
		return e.RefreshToken
	}
	return e.AppCredential
}

// Store keeps account entries. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the account's entry, or an error wrapping ErrNotFound.
	Get(account string) (Entry, error)
	// Put replaces the account's entry.
	Put(account string, e Entry) error
	// Delete forgets the account; deleting a missing account is no error.
	Delete(account string) error
	// Name is "keyring" or "file", for messages.
	Name() string
}

// Updater is a Store that changes one entry in a single step that no other
// writer, in this process or another, can interleave with: the file store
// re-reads its file under an OS lock, the keyring store writes only the
// fields that changed. Update lets every store be used this way.
type Updater interface {
	// Update calls change with the entry as stored now (the zero Entry
	// when there is none) and writes what change left, unless change
	// returned an error or changed nothing.
	Update(account string, change func(*Entry) error) error
}

// Update changes the account's entry through change, in one step when st
// is an Updater, and otherwise by Get and Put (which another writer can
// interleave with). An error from change is returned as is and nothing is
// written; an entry change leaves as it was is not written at all, so a
// missing entry is not created empty.
func Update(st Store, account string, change func(*Entry) error) error {
	if u, ok := st.(Updater); ok {
		return u.Update(account, change)
	}
	e, err := st.Get(account)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	old := e
	if err := change(&e); err != nil {
		return err
	}
	if e == old {
		return nil
	}
	return st.Put(account, e)
}

// ErrNotFound is returned by Store.Get for an account with no entry.
var ErrNotFound = errors.New("tokens: no entry stored")

// ErrScopeNotGranted is returned by a sign-in that did not grant a scope
// in Provider.MustGrant.
var ErrScopeNotGranted = errors.New("tokens: a required scope was not granted")

// ErrNeedsLogin wraps every failure that only a new `bridge login` can fix.
var ErrNeedsLogin = errors.New("tokens: sign-in needed")
