//go:build keyring_integration

// This test needs a real, unlocked Secret Service; run it through
// scripts/with-keyring.sh (see there).

package tokens

import (
	"errors"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

func TestKeyringIntegrationRoundTrip(t *testing.T) {
	k := NewKeyringStore()
	if err := k.Ping(); err != nil {
		// The tag asks for a real keyring; its absence is a failure, not a skip.
		t.Fatalf("no usable Secret Service (run under scripts/with-keyring.sh): %v", err)
	}
	const acct = "keyring-integration@example.invalid"
	t.Cleanup(func() { _ = k.Delete(acct) })

	// 3,000 bytes: above Windows' cap, so the value goes through parts
	// even where the platform itself would take it whole.
	var b strings.Builder
	for i := range 3000 {
		b.WriteByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i%64])
	}
	want := Entry{RefreshToken: b.String(), Password: "integration-pw"}
	if err := k.Put(acct, want); err != nil {
		t.Fatal(err)
	}
	head, err := keyring.Get(keyringService, acct+refreshSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(head, chunkHeader) {
		t.Errorf("a 3,000-byte token was stored whole, not in parts")
	}
	got, err := k.Get(acct)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != want.RefreshToken || got.Password != want.Password {
		t.Fatal("entry read back from the keyring differs from the one written")
	}

	// Shrinking must clear the parts.
	if err := k.Put(acct, Entry{RefreshToken: "short"}); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get(keyringService, partName(acct+refreshSuffix, 0)); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("part 0 after shrinking: err = %v, want not found", err)
	}
	if err := k.Delete(acct); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(acct); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: err = %v, want ErrNotFound", err)
	}
}
