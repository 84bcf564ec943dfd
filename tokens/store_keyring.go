package tokens

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// keyringService is the service name every item is filed under; the
// keyring user is the item's name (see KeyringStore).
const keyringService = "bridge"

// chunkSize bounds every value written to the keyring. Windows' Credential
// Manager refuses secrets above 2,560 bytes and macOS' `security -i` line
// leaves roughly 3,000; 2,000 fits both with room for service and user.
const chunkSize = 2000

// maxChunks bounds how many parts a value may have, so a damaged header
// cannot make a read loop for long. 64 parts is 128 KB, far above any entry.
const maxChunks = 64

// chunkHeader starts the value stored under an item's own name when the
// value is split into parts "<item>#0", "<item>#1"...:
// "chunked:v1:<parts>:<total bytes>".
const chunkHeader = "chunked:v1:"

// KeyringStore keeps each account's entry in the OS keyring (Secret
// Service on Linux, Keychain on macOS, Credential Manager on Windows) as
// items, each JSON and split into parts when larger than Windows allows:
// "<account>/refresh" (the refresh token and when it was written),
// "<account>/app" (an app-only account's secret or certificate and key),
// "<account>/password" (the local password) and "<account>/needs-login"
// (why a sign-in is needed, and for which refresh token or credential). The keyring has
// no transactions, so items are what makes changes from two processes
// safe: `bridge password --reset` writes only the password item and a
// server saving a rotated refresh token only the refresh item, so neither
// can write back a stale copy of the other's field. A needs-login mark
// names the refresh token it was made for (by a hash) and is ignored once
// another one is stored, so marking cannot undo a new sign-in either.
//
// Earlier versions kept the whole entry as one item named after the
// account; it is read, and moved into the three items (then deleted) by
// the first change.
type KeyringStore struct {
	// mu serialises read-modify-write sequences (chunk bookkeeping) within
	// the process.
	mu sync.Mutex
}

// Keyring item values.
type (
	refreshItem struct {
		RT      string    `json:"rt"`
		Updated time.Time `json:"updated,omitzero"`
	}
	appItem struct {
		Cred string `json:"cred"`
	}
	passwordItem struct {
		PW string `json:"pw"`
	}
	needsLoginItem struct {
		For    string `json:"for"` // rtHash of the refresh token (or app credential) refused
		Reason string `json:"reason"`
	}
)

// Item name suffixes after the account.
const (
	refreshSuffix    = "/refresh"
	appSuffix        = "/app"
	passwordSuffix   = "/password"
	needsLoginSuffix = "/needs-login"
)

// rtHash identifies a refresh token without revealing it.
func rtHash(rt string) string {
	sum := sha256.Sum256([]byte(rt))
	return hex.EncodeToString(sum[:8])
}

// NewKeyringStore returns the keyring store. It does no I/O.
func NewKeyringStore() *KeyringStore { return &KeyringStore{} }

// Name returns "keyring".
func (k *KeyringStore) Name() string { return "keyring" }

// Ping reads a missing item to learn whether the keyring answers at all.
// It returns nil or an error wrapping ErrKeyringUnavailable.
func (k *KeyringStore) Ping() error {
	_, err := keyring.Get(keyringService, "bridge-keyring-check")
	if err == nil || errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return keyringError("reaching the keyring", "", err)
}

// Get returns the account's entry or an error wrapping ErrNotFound.
func (k *KeyringStore) Get(account string) (Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.read(account)
	if err != nil {
		return Entry{}, err
	}
	if !st.any() {
		return Entry{}, fmt.Errorf("tokens: keyring has no entry for %s: %w", account, ErrNotFound)
	}
	return st.e, nil
}

// Put replaces the account's entry, writing only the items that change.
func (k *KeyringStore) Put(account string, e Entry) error {
	return k.Update(account, func(old *Entry) error {
		*old = e
		return nil
	})
}

// Update changes the account's entry (see Updater), writing only the
// items whose fields change; another process's change to other fields in
// the meantime stays.
func (k *KeyringStore) Update(account string, change func(*Entry) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.read(account)
	if err != nil {
		return err
	}
	old, e := st.e, st.e
	if err := change(&e); err != nil {
		return err
	}
	if e == old {
		return nil
	}
	// Items still missing while the old single item exists are written
	// too, so that the old item can go.
	rtChanged := e.RefreshToken != old.RefreshToken || !e.Updated.Equal(old.Updated)
	if rtChanged || (st.legacy && !st.hasRT) {
		if err := k.setJSON(account, account+refreshSuffix, refreshItem{RT: e.RefreshToken, Updated: e.Updated}); err != nil {
			return err
		}
	}
	if e.AppCredential != old.AppCredential {
		if e.AppCredential != "" {
			err = k.setJSON(account, account+appSuffix, appItem{Cred: e.AppCredential})
		} else {
			err = k.deleteValue(account, account+appSuffix)
		}
		if err != nil {
			return err
		}
	}
	if e.Password != old.Password || (st.legacy && !st.hasPW) {
		if err := k.setJSON(account, account+passwordSuffix, passwordItem{PW: e.Password}); err != nil {
			return err
		}
	}
	grantChanged := rtChanged || e.AppCredential != old.AppCredential
	if e.NeedsLogin != old.NeedsLogin || grantChanged || (st.legacy && !st.hasNL) {
		switch {
		case e.NeedsLogin != "":
			err = k.setJSON(account, account+needsLoginSuffix, needsLoginItem{For: rtHash(e.grant()), Reason: e.NeedsLogin})
		case st.hasNL:
			err = k.deleteValue(account, account+needsLoginSuffix)
		}
		if err != nil {
			return err
		}
	}
	if st.legacy {
		return k.deleteValue(account, account)
	}
	return nil
}

// Delete removes the account's items and all their parts.
func (k *KeyringStore) Delete(account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, item := range []string{account + refreshSuffix, account + appSuffix, account + passwordSuffix, account + needsLoginSuffix, account} {
		if err := k.deleteValue(account, item); err != nil {
			return err
		}
	}
	return nil
}

// storedEntry is an account's entry as read, with which items exist.
type storedEntry struct {
	e                           Entry
	legacy                      bool // the single item of earlier versions
	hasRT, hasApp, hasPW, hasNL bool
}

func (s storedEntry) any() bool { return s.legacy || s.hasRT || s.hasApp || s.hasPW || s.hasNL }

// read reads every item of the account; fields without their own item
// come from the single item of earlier versions, when there is one.
func (k *KeyringStore) read(account string) (storedEntry, error) {
	var st storedEntry
	var old Entry
	var err error
	if st.legacy, err = k.getJSON(account, account, &old); err != nil {
		return st, err
	}
	var rt refreshItem
	var app appItem
	var pw passwordItem
	var nl needsLoginItem
	if st.hasRT, err = k.getJSON(account, account+refreshSuffix, &rt); err != nil {
		return st, err
	}
	if st.hasApp, err = k.getJSON(account, account+appSuffix, &app); err != nil {
		return st, err
	}
	if st.hasPW, err = k.getJSON(account, account+passwordSuffix, &pw); err != nil {
		return st, err
	}
	if st.hasNL, err = k.getJSON(account, account+needsLoginSuffix, &nl); err != nil {
		return st, err
	}
	st.e = old
	st.e.NeedsLogin = ""
	if st.hasRT {
		st.e.RefreshToken, st.e.Updated = rt.RT, rt.Updated
	}
	if st.hasApp {
		st.e.AppCredential = app.Cred
	}
	if st.hasPW {
		st.e.Password = pw.PW
	}
	switch {
	case st.hasNL:
		if nl.For == rtHash(st.e.grant()) {
			st.e.NeedsLogin = nl.Reason
		}
	case st.legacy && old.RefreshToken == st.e.RefreshToken:
		st.e.NeedsLogin = old.NeedsLogin
	}
	return st, nil
}

// getJSON reads one item into v; found is false when it does not exist.
func (k *KeyringStore) getJSON(account, item string, v any) (found bool, err error) {
	raw, err := k.getValue(account, item)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		// The JSON error could quote part of a secret; leave it out.
		return false, fmt.Errorf("tokens: keyring item %s is damaged (not JSON); run `bridge login %s`", item, account)
	}
	return true, nil
}

func (k *KeyringStore) setJSON(account, item string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tokens: encoding keyring item %s: %w", item, err)
	}
	return k.setValue(account, item, string(b))
}

// deleteValue removes an item and its parts; a missing item is no error.
func (k *KeyringStore) deleteValue(account, item string) error {
	old, err := k.partsStored(account, item)
	if err != nil {
		return err
	}
	if err := keyring.Delete(keyringService, item); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return keyringError("deleting", account, err)
	}
	return k.removeParts(account, item, 0, old)
}

// getValue reads an item's raw value, joining parts when the header says
// so, and checks the joined length against the header. account names the
// item's account in errors.
func (k *KeyringStore) getValue(account, item string) (string, error) {
	head, err := keyring.Get(keyringService, item)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", fmt.Errorf("tokens: keyring has no item %s: %w", item, ErrNotFound)
	}
	if err != nil {
		return "", keyringError("reading", account, err)
	}
	if !strings.HasPrefix(head, chunkHeader) {
		return head, nil
	}
	n, total, ok := parseChunkHeader(head)
	if !ok {
		return "", fmt.Errorf("tokens: keyring item %s has a damaged header; run `bridge login %s`", item, account)
	}
	var b strings.Builder
	b.Grow(total)
	for i := range n {
		part, err := keyring.Get(keyringService, partName(item, i))
		if errors.Is(err, keyring.ErrNotFound) {
			return "", fmt.Errorf("tokens: keyring item %s is incomplete (part %d of %d missing); run `bridge login %s`", item, i+1, n, account)
		}
		if err != nil {
			return "", keyringError("reading", account, err)
		}
		b.WriteString(part)
	}
	if b.Len() != total {
		return "", fmt.Errorf("tokens: keyring item %s is damaged (%d bytes, header says %d); run `bridge login %s`", item, b.Len(), total, account)
	}
	return b.String(), nil
}

// setValue writes v, in parts when it is larger than chunkSize. Parts go
// first and the header last, so a reader never sees a header that points to
// parts not yet written; parts left over from a longer value go afterwards.
func (k *KeyringStore) setValue(account, item, v string) error {
	old, err := k.partsStored(account, item)
	if err != nil {
		return err
	}
	parts := splitValue(v)
	if len(parts) > maxChunks {
		return fmt.Errorf("tokens: entry for %s is too large for the keyring (%d bytes)", account, len(v))
	}
	head := v
	if len(parts) > 1 {
		for i, p := range parts {
			if err := keyring.Set(keyringService, partName(item, i), p); err != nil {
				return keyringError("writing", account, err)
			}
		}
		head = chunkHeader + strconv.Itoa(len(parts)) + ":" + strconv.Itoa(len(v))
	} else {
		parts = nil
	}
	if err := keyring.Set(keyringService, item, head); err != nil {
		return keyringError("writing", account, err)
	}
	return k.removeParts(account, item, len(parts), old)
}

// partsStored returns how many parts the item's current value has (0 when
// it is missing or not split).
func (k *KeyringStore) partsStored(account, item string) (int, error) {
	head, err := keyring.Get(keyringService, item)
	if errors.Is(err, keyring.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, keyringError("reading", account, err)
	}
	n, _, _ := parseChunkHeader(head)
	return n, nil
}

// removeParts deletes parts from index from on. It goes at least up to
// known, then on while parts exist, which also clears parts orphaned by an
// interrupted earlier write; maxChunks bounds the walk.
func (k *KeyringStore) removeParts(account, item string, from, known int) error {
	for i := from; i < maxChunks; i++ {
		err := keyring.Delete(keyringService, partName(item, i))
		if errors.Is(err, keyring.ErrNotFound) {
			if i >= known {
				return nil
			}
			continue
		}
		if err != nil {
			return keyringError("deleting a part of", account, err)
		}
	}
	return nil
}

func partName(item string, i int) string { return item + "#" + strconv.Itoa(i) }

// splitValue cuts v into pieces of at most chunkSize bytes, ending each on
// a UTF-8 boundary so every part is valid text for the keyring's API.
func splitValue(v string) []string {
	if len(v) <= chunkSize {
		return []string{v}
	}
	var parts []string
	for len(v) > 0 {
		cut := min(chunkSize, len(v))
		for cut < len(v) && cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		parts = append(parts, v[:cut])
		v = v[cut:]
	}
	return parts
}

// parseChunkHeader reads "chunked:v1:<n>:<total>".
func parseChunkHeader(h string) (n, total int, ok bool) {
	rest, found := strings.CutPrefix(h, chunkHeader)
	if !found {
		return 0, 0, false
	}
	ns, ts, found := strings.Cut(rest, ":")
	if !found {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(ns)
	total, err2 := strconv.Atoi(ts)
	if err1 != nil || err2 != nil || n < 2 || n > maxChunks || total < n || total > n*chunkSize {
		return 0, 0, false
	}
	return n, total, true
}

// keyringError turns a keyring failure into an error that names the way
// out. Every error other than "not found" means the keyring could not be
// used at all (no D-Bus session, no Secret Service, a locked collection).
func keyringError(op, account string, err error) error {
	what := op
	if account != "" {
		what += " " + account
	}
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("tokens: the OS keyring refused %s as too large: %w", what, err)
	}
	return fmt.Errorf("%w (%s: %w); start or unlock a keyring (Secret Service, Keychain, Credential Manager), "+
		"or, on a machine without one, set [store] backend = \"file\" in the config", ErrKeyringUnavailable, what, err)
}
