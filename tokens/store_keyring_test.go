//go:build !keyring_integration

// These tests install go-keyring's process-wide mock, so they stay out of
// the build that talks to a real Secret Service.

package tokens

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// countParts returns how many "<item>#i" parts exist, looking a little
// past maxWant so stale parts are found too.
func countParts(t *testing.T, item string, maxWant int) int {
	t.Helper()
	n := 0
	for i := range maxWant + 3 {
		if _, err := keyring.Get(keyringService, partName(item, i)); err == nil {
			n++
		} else if !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("reading part %d: %v", i, err)
		}
	}
	return n
}

func filler(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[i%36])
	}
	return b.String()
}

func TestChunkingRoundTripAndShrink(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "chunks@example.com"
	// Grow through every boundary, then shrink, so every step must both
	// write the new parts and clear the ones the previous value left.
	for _, size := range []int{10, 2000, 2001, 5000, 2001, 10} {
		v := filler(size)
		if err := k.setValue(acct, acct, v); err != nil {
			t.Fatalf("size %d: set: %v", size, err)
		}
		got, err := k.getValue(acct, acct)
		if err != nil {
			t.Fatalf("size %d: get: %v", size, err)
		}
		if got != v {
			t.Fatalf("size %d: read back %d bytes that differ from what was written", size, len(got))
		}
		wantParts := 0
		if size > chunkSize {
			wantParts = (size + chunkSize - 1) / chunkSize
		}
		if n := countParts(t, acct, 5); n != wantParts {
			t.Errorf("size %d: %d parts in the keyring, want %d", size, n, wantParts)
		}
		head, err := keyring.Get(keyringService, acct)
		if err != nil {
			t.Fatal(err)
		}
		if len(head) > chunkSize {
			t.Errorf("size %d: header item is %d bytes, above the %d limit", size, len(head), chunkSize)
		}
		for i := range wantParts {
			p, _ := keyring.Get(keyringService, partName(acct, i))
			if len(p) > chunkSize {
				t.Errorf("size %d: part %d is %d bytes", size, i, len(p))
			}
		}
	}
}

func TestChunkingKeepsRunesWhole(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	v := strings.Repeat("é€", 900) // 4,500 bytes of 2- and 3-byte runes
	if err := k.setValue("runes@example.com", "runes@example.com", v); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p, err := keyring.Get(keyringService, partName("runes@example.com", i))
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if !utf8.ValidString(p) {
			t.Errorf("part %d is not valid UTF-8", i)
		}
	}
	if got, err := k.getValue("runes@example.com", "runes@example.com"); err != nil || got != v {
		t.Fatalf("round trip failed: err=%v equal=%v", err, got == v)
	}
}

func TestChunkedEntryDamageIsReported(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "damaged@example.com"
	if err := k.setValue(acct, acct, filler(4500)); err != nil {
		t.Fatal(err)
	}
	// A part replaced by a shorter one: the length check must catch it.
	if err := keyring.Set(keyringService, partName(acct, 1), "short"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.getValue(acct, acct); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("shortened part: err = %v, want a damaged-entry error", err)
	}
	// A missing part.
	if err := keyring.Delete(keyringService, partName(acct, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.getValue(acct, acct); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing part: err = %v, want an incomplete-entry error", err)
	}
}

func TestKeyringStoreEntryRoundTripAndDelete(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "entry@example.com"
	if _, err := k.Get(acct); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: err = %v, want ErrNotFound", err)
	}
	want := Entry{RefreshToken: "0.A" + filler(3000), Password: "pw-1234", NeedsLogin: ""}
	if err := k.Put(acct, want); err != nil {
		t.Fatal(err)
	}
	got, err := k.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != want.RefreshToken || got.Password != want.Password {
		t.Fatal("entry read back differs from the one written")
	}
	if n := countParts(t, acct+refreshSuffix, 3); n < 2 {
		t.Fatalf("a 3,000-byte token was stored in %d parts, want it split", n)
	}
	if err := k.Delete(acct); err != nil {
		t.Fatal(err)
	}
	if n := countParts(t, acct+refreshSuffix, 3); n != 0 {
		t.Errorf("%d parts left after Delete", n)
	}
	if _, err := k.Get(acct); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := k.Delete(acct); err != nil {
		t.Errorf("deleting a missing account: %v", err)
	}
}

func TestUnreachableSecretServiceNamesFileBackend(t *testing.T) {
	keyring.MockInitWithError(errors.New("The name org.freedesktop.secrets was not provided by any .service files"))
	t.Cleanup(keyring.MockInit)
	k := NewKeyringStore()
	checks := map[string]error{
		"Get":  func() error { _, err := k.Get("a@example.com"); return err }(),
		"Put":  k.Put("a@example.com", Entry{RefreshToken: "rt"}),
		"Ping": k.Ping(),
	}
	for op, err := range checks {
		if !errors.Is(err, ErrKeyringUnavailable) {
			t.Errorf("%s: err = %v, want ErrKeyringUnavailable", op, err)
			continue
		}
		if errors.Is(err, ErrNotFound) {
			t.Errorf("%s: an unreachable keyring must not look like a missing entry", op)
		}
		if msg := err.Error(); !strings.Contains(msg, `backend = "file"`) || !strings.Contains(msg, "org.freedesktop.secrets") {
			t.Errorf("%s: message %q should give the cause and name the file backend", op, msg)
		}
	}
}

// TestKeyringChangesDoNotUndoEachOther plays two processes with two
// stores on one keyring: each change of one runs in the middle of a change
// of the other (after its read, before its write), the way a password
// reset and a server saving a rotated refresh token can meet.
func TestKeyringChangesDoNotUndoEachOther(t *testing.T) {
	keyring.MockInit()
	server, cli := NewKeyringStore(), NewKeyringStore()
	const acct = "both@example.com"
	big := "0.A" + filler(2600) // split into parts, as real refresh tokens may be
	if err := cli.Put(acct, Entry{RefreshToken: "rt-1", Password: "pw-1"}); err != nil {
		t.Fatal(err)
	}
	set := func(st *KeyringStore, f func(*Entry)) {
		t.Helper()
		if err := st.Update(acct, func(e *Entry) error { f(e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// A reset password written while the server saves a rotated token.
	set(server, func(e *Entry) {
		set(cli, func(e *Entry) { e.Password = "pw-2" })
		e.RefreshToken, e.Updated = big, time.Now()
	})
	// A rotated token saved while the CLI resets the password.
	set(cli, func(e *Entry) {
		set(server, func(e *Entry) { e.RefreshToken = "rt-3" })
		e.Password = "pw-3"
	})
	got, err := cli.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != "rt-3" || got.Password != "pw-3" {
		t.Errorf("after interleaved changes: refresh token rt-3=%v, password %q; want both changes kept", got.RefreshToken == "rt-3", got.Password)
	}

	// A needs-login mark made for rt-3 lands after a new sign-in stored
	// rt-4: the sign-in stands, the stale mark does not apply to it.
	set(server, func(e *Entry) {
		set(cli, func(e *Entry) { e.RefreshToken, e.NeedsLogin = "rt-4", "" })
		e.NeedsLogin = "AADSTS70008 (expired)"
	})
	if got, _ := server.Get(acct); got.RefreshToken != "rt-4" || got.NeedsLogin != "" || got.Password != "pw-3" {
		t.Errorf("after a stale needs-login mark: rt-4=%v needs_login=%q password=%q", got.RefreshToken == "rt-4", got.NeedsLogin, got.Password)
	}
	// A mark for the stored token applies, and a rotation clears it.
	set(server, func(e *Entry) { e.NeedsLogin = "AADSTS50173 (revoked)" })
	if got, _ := cli.Get(acct); got.NeedsLogin != "AADSTS50173 (revoked)" {
		t.Errorf("needs_login = %q after marking", got.NeedsLogin)
	}
	set(cli, func(e *Entry) { e.RefreshToken, e.NeedsLogin = "rt-5", "" })
	if got, _ := server.Get(acct); got.NeedsLogin != "" || got.RefreshToken != "rt-5" {
		t.Errorf("after a new sign-in: needs_login = %q", got.NeedsLogin)
	}
	if err := server.Delete(acct); err != nil {
		t.Fatal(err)
	}
	for _, item := range []string{acct, acct + refreshSuffix, acct + passwordSuffix, acct + needsLoginSuffix} {
		if _, err := keyring.Get(keyringService, item); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("item %s after Delete: %v", item, err)
		}
		if n := countParts(t, item, 3); n != 0 {
			t.Errorf("item %s: %d parts after Delete", item, n)
		}
	}
}

// TestKeyringReadsAndMovesTheSingleItem: an entry written by an earlier
// version as one item (split into parts when large) is read as it was,
// and the first change moves every field into its own item and removes
// the old one.
func TestKeyringReadsAndMovesTheSingleItem(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "old@example.com"
	old := Entry{RefreshToken: "0.A" + filler(3000), Password: "pw-old", NeedsLogin: "AADSTS700082 (expired)", Updated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	raw, _ := json.Marshal(old)
	if err := k.setValue(acct, acct, string(raw)); err != nil {
		t.Fatal(err)
	}
	if n := countParts(t, acct, 3); n < 2 {
		t.Fatalf("the old item has %d parts, want it split", n)
	}
	got, err := k.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != old.RefreshToken || got.Password != old.Password || got.NeedsLogin != old.NeedsLogin || !got.Updated.Equal(old.Updated) {
		t.Fatal("the single item of earlier versions reads back differently")
	}
	if err := k.Update(acct, func(e *Entry) error { e.Password = "pw-new"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err = k.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != old.RefreshToken || got.Password != "pw-new" || got.NeedsLogin != old.NeedsLogin || !got.Updated.Equal(old.Updated) {
		t.Errorf("after the first change: refresh token kept=%v, password %q, needs_login %q", got.RefreshToken == old.RefreshToken, got.Password, got.NeedsLogin)
	}
	if _, err := keyring.Get(keyringService, acct); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("the old item is still there: %v", err)
	}
	if n := countParts(t, acct, 3); n != 0 {
		t.Errorf("%d parts of the old item are left", n)
	}
	for _, item := range []string{acct + refreshSuffix, acct + passwordSuffix, acct + needsLoginSuffix} {
		if _, err := keyring.Get(keyringService, item); err != nil {
			t.Errorf("item %s: %v", item, err)
		}
	}
}

// TestKeyringAppCredential: an app-only account's credential (a PEM
// certificate and key, larger than one keyring item may be) has an item
// of its own, split into parts; a needs-login mark holds for the
// credential it was made for and goes when another one is stored;
// Delete removes it all.
func TestKeyringAppCredential(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "scanner@example.com"
	cred := "-----BEGIN CERTIFICATE-----\n" + filler(3000) + "\n-----END CERTIFICATE-----\n"
	if err := k.Put(acct, Entry{AppCredential: cred, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if n := countParts(t, acct+appSuffix, 5); n != 2 {
		t.Errorf("%d parts for the credential, want 2", n)
	}
	if err := k.Update(acct, func(e *Entry) error { e.NeedsLogin = "AADSTS7000222 (expired)"; return nil }); err != nil {
		t.Fatal(err)
	}
	e, err := k.Get(acct)
	if err != nil || e.AppCredential != cred || e.Password != "pw" || e.NeedsLogin == "" {
		t.Fatalf("read back: %v, same credential %v, needs-login %q", err, e.AppCredential == cred, e.NeedsLogin)
	}
	// Another process stores a new secret without touching the mark.
	if err := keyring.Set(keyringService, acct+appSuffix, `{"cred":"new~secret"}`); err != nil {
		t.Fatal(err)
	}
	if e, _ := k.Get(acct); e.AppCredential != "new~secret" || e.NeedsLogin != "" {
		t.Errorf("after a new credential: %q, needs-login %q; the mark was for the old one", e.AppCredential, e.NeedsLogin)
	}
	if err := k.Delete(acct); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(acct); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: %v", err)
	}
	if n := countParts(t, acct+appSuffix, 5); n != 0 {
		t.Errorf("%d parts left", n)
	}
}
