//go:build !keyring_integration

// These tests install go-keyring's process-wide mock, so they stay out of
// the build that talks to a real Secret Service.

package tokens

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
)

// countParts returns how many "<account>#i" parts exist, looking a little
// past maxWant so stale parts are found too.
func countParts(t *testing.T, account string, maxWant int) int {
	t.Helper()
	n := 0
	for i := range maxWant + 3 {
		if _, err := keyring.Get(keyringService, partName(account, i)); err == nil {
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
		if err := k.setValue(acct, v); err != nil {
			t.Fatalf("size %d: set: %v", size, err)
		}
		got, err := k.getValue(acct)
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
	if err := k.setValue("runes@example.com", v); err != nil {
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
	if got, err := k.getValue("runes@example.com"); err != nil || got != v {
		t.Fatalf("round trip failed: err=%v equal=%v", err, got == v)
	}
}

func TestChunkedEntryDamageIsReported(t *testing.T) {
	keyring.MockInit()
	k := NewKeyringStore()
	const acct = "damaged@example.com"
	if err := k.setValue(acct, filler(4500)); err != nil {
		t.Fatal(err)
	}
	// A part replaced by a shorter one: the length check must catch it.
	if err := keyring.Set(keyringService, partName(acct, 1), "short"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.getValue(acct); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("shortened part: err = %v, want a damaged-entry error", err)
	}
	// A missing part.
	if err := keyring.Delete(keyringService, partName(acct, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.getValue(acct); err == nil || !strings.Contains(err.Error(), "missing") {
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
	if n := countParts(t, acct, 3); n < 2 {
		t.Fatalf("a 3,000-byte token was stored in %d parts, want it split", n)
	}
	if err := k.Delete(acct); err != nil {
		t.Fatal(err)
	}
	if n := countParts(t, acct, 3); n != 0 {
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
