package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// keyringService is the service name every entry is filed under; the
// keyring user is the account address.
const keyringService = "bridge"

// chunkSize bounds every value written to the keyring. Windows' Credential
// Manager refuses secrets above 2,560 bytes and macOS' `security -i` line
// leaves roughly 3,000; 2,000 fits both with room for service and user.
const chunkSize = 2000

// maxChunks bounds how many parts a value may have, so a damaged header
// cannot make a read loop for long. 64 parts is 128 KB, far above any entry.
const maxChunks = 64

// chunkHeader starts the value stored under the account itself when the
// entry is split: "chunked:v1:<parts>:<total bytes>".
const chunkHeader = "chunked:v1:"

// KeyringStore keeps entries in the OS keyring (Secret Service on Linux,
// Keychain on macOS, Credential Manager on Windows) as JSON, one item per
// account, split into parts when larger than Windows allows.
type KeyringStore struct {
	// mu serialises read-modify-write sequences (chunk bookkeeping) within
	// the process; the keyring itself has no transactions.
	mu sync.Mutex
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
	v, err := k.getValue(account)
	k.mu.Unlock()
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		// The JSON error could quote part of a secret; leave it out.
		return Entry{}, fmt.Errorf("tokens: keyring entry for %s is damaged (not JSON); run `bridge login %s`", account, account)
	}
	return e, nil
}

// Put replaces the account's entry.
func (k *KeyringStore) Put(account string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("tokens: encoding entry for %s: %w", account, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.setValue(account, string(b))
}

// Delete removes the account's entry and all its parts.
func (k *KeyringStore) Delete(account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	old, err := k.partsStored(account)
	if err != nil {
		return err
	}
	if err := keyring.Delete(keyringService, account); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return keyringError("deleting", account, err)
	}
	return k.removeParts(account, 0, old)
}

// getValue reads the raw value, joining parts when the header says so, and
// checks the joined length against the header.
func (k *KeyringStore) getValue(account string) (string, error) {
	head, err := keyring.Get(keyringService, account)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", fmt.Errorf("tokens: keyring has no entry for %s: %w", account, ErrNotFound)
	}
	if err != nil {
		return "", keyringError("reading", account, err)
	}
	if !strings.HasPrefix(head, chunkHeader) {
		return head, nil
	}
	n, total, ok := parseChunkHeader(head)
	if !ok {
		return "", fmt.Errorf("tokens: keyring entry for %s has a damaged header; run `bridge login %s`", account, account)
	}
	var b strings.Builder
	b.Grow(total)
	for i := range n {
		part, err := keyring.Get(keyringService, partName(account, i))
		if errors.Is(err, keyring.ErrNotFound) {
			return "", fmt.Errorf("tokens: keyring entry for %s is incomplete (part %d of %d missing); run `bridge login %s`", account, i+1, n, account)
		}
		if err != nil {
			return "", keyringError("reading", account, err)
		}
		b.WriteString(part)
	}
	if b.Len() != total {
		return "", fmt.Errorf("tokens: keyring entry for %s is damaged (%d bytes, header says %d); run `bridge login %s`", account, b.Len(), total, account)
	}
	return b.String(), nil
}

// setValue writes v, in parts when it is larger than chunkSize. Parts go
// first and the header last, so a reader never sees a header that points to
// parts not yet written; parts left over from a longer value go afterwards.
func (k *KeyringStore) setValue(account, v string) error {
	old, err := k.partsStored(account)
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
			if err := keyring.Set(keyringService, partName(account, i), p); err != nil {
				return keyringError("writing", account, err)
			}
		}
		head = chunkHeader + strconv.Itoa(len(parts)) + ":" + strconv.Itoa(len(v))
	} else {
		parts = nil
	}
	if err := keyring.Set(keyringService, account, head); err != nil {
		return keyringError("writing", account, err)
	}
	return k.removeParts(account, len(parts), old)
}

// partsStored returns how many parts the account's current value has
// (0 when it is missing or not split).
func (k *KeyringStore) partsStored(account string) (int, error) {
	head, err := keyring.Get(keyringService, account)
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
func (k *KeyringStore) removeParts(account string, from, known int) error {
	for i := from; i < maxChunks; i++ {
		err := keyring.Delete(keyringService, partName(account, i))
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

func partName(account string, i int) string { return account + "#" + strconv.Itoa(i) }

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
