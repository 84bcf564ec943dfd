package tokens

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestFileStore opens a file store at path with the cheapest PBKDF2
// count the format accepts, so the race detector does not make each key
// derivation take most of a second.
func newTestFileStore(t *testing.T, path string) *FileStore {
	t.Helper()
	f, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	f.iter = minIter
	return f
}

func TestFileStoreModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits do not apply on Windows")
	}
	dir := filepath.Join(t.TempDir(), "state", "bridge")
	path := filepath.Join(dir, "tokens.json")
	f := newTestFileStore(t, path)
	if err := f.Put("a@example.com", Entry{RefreshToken: "rt-a"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	// A second write goes through a new temporary file; the mode must hold.
	if err := f.Put("b@example.com", Entry{RefreshToken: "rt-b"}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("after rewrite: mode %v", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".tokens.json.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestFileStoreEncryption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	const rt = "0.AXYZrefresh-token-that-must-not-appear"
	const pw = "abcd-efgh-ijkl"

	t.Setenv(PassphraseEnv, "correct horse")
	f := newTestFileStore(t, path)
	if w := f.Warning(); w != "" {
		t.Errorf("encrypted store warns: %q", w)
	}
	if err := f.Put("a@example.com", Entry{RefreshToken: rt, Password: pw}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{rt, pw, "a@example.com"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("encrypted file contains %q in clear", secret)
		}
	}
	if e, err := newTestFileStore(t, path).Get("a@example.com"); err != nil || e.RefreshToken != rt || e.Password != pw {
		t.Fatalf("reopened with the right passphrase: err=%v, entry matches=%v", err, e.RefreshToken == rt)
	}

	t.Setenv(PassphraseEnv, "wrong horse")
	_, err = newTestFileStore(t, path).Get("a@example.com")
	if err == nil || !strings.Contains(err.Error(), "wrong "+PassphraseEnv) {
		t.Errorf("wrong passphrase: err = %v", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("a wrong passphrase must not look like a missing entry")
	}

	t.Setenv(PassphraseEnv, "")
	_, err = newTestFileStore(t, path).Get("a@example.com")
	if err == nil || !strings.Contains(err.Error(), "encrypted") || !strings.Contains(err.Error(), PassphraseEnv) {
		t.Errorf("missing passphrase: err = %v", err)
	}
	if strings.Contains(err.Error(), rt) {
		t.Error("error contains the refresh token")
	}
}

func TestFileStorePlainWarnsAndRoundTrips(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	path := filepath.Join(t.TempDir(), "tokens.json")
	f := newTestFileStore(t, path)
	if w := f.Warning(); !strings.Contains(w, "UNENCRYPTED") || !strings.Contains(w, path) || !strings.Contains(w, PassphraseEnv) {
		t.Errorf("warning %q should say the file is unencrypted, where, and how to fix it", w)
	}
	if _, err := f.Get("a@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: err = %v, want ErrNotFound", err)
	}
	want := Entry{RefreshToken: "rt", Password: "pw", NeedsLogin: "AADSTS700082"}
	if err := f.Put("a@example.com", want); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Get("a@example.com"); err != nil || got != want {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := f.Delete("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("a@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: err = %v", err)
	}
	if err := f.Delete("a@example.com"); err != nil {
		t.Errorf("deleting a missing account: %v", err)
	}
}

func TestFileStoreSeesOtherWriters(t *testing.T) {
	t.Setenv(PassphraseEnv, "shared")
	path := filepath.Join(t.TempDir(), "tokens.json")
	daemon, login := newTestFileStore(t, path), newTestFileStore(t, path)
	if err := daemon.Put("a@example.com", Entry{RefreshToken: "old"}); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Get("a@example.com"); err != nil {
		t.Fatal(err)
	}
	// Another process signs in again: the daemon's next Get must see it.
	if err := login.Put("a@example.com", Entry{RefreshToken: "new"}); err != nil {
		t.Fatal(err)
	}
	if e, err := daemon.Get("a@example.com"); err != nil || e.RefreshToken != "new" {
		t.Errorf("daemon read %q, %v; want the other writer's token", e.RefreshToken, err)
	}
}

func TestFileStoreConcurrentPuts(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	f := newTestFileStore(t, filepath.Join(t.TempDir(), "tokens.json"))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- f.Put(fmt.Sprintf("u%d@example.com", i), Entry{RefreshToken: fmt.Sprint("rt", i)}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		e, err := f.Get(fmt.Sprintf("u%d@example.com", i))
		if err != nil || e.RefreshToken != fmt.Sprint("rt", i) {
			t.Errorf("account %d lost: %+v, %v", i, e, err)
		}
	}
}

func TestOpenStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	for _, tc := range []struct{ backend, want string }{{"", "keyring"}, {"keyring", "keyring"}, {"FILE", "file"}} {
		s, err := OpenStore(tc.backend, path)
		if err != nil {
			t.Fatalf("%q: %v", tc.backend, err)
		}
		if s.Name() != tc.want {
			t.Errorf("%q: got %s store", tc.backend, s.Name())
		}
	}
	if _, err := OpenStore("vault", path); err == nil || !strings.Contains(err.Error(), "vault") {
		t.Errorf("unknown backend: err = %v", err)
	}
}

func TestDefaultFilePathUsesXDGState(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_STATE_HOME is used on Linux and the BSDs only")
	}
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", dir)
	p, err := DefaultFilePath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "bridge", "tokens.json"); p != want {
		t.Errorf("DefaultFilePath = %s, want %s", p, want)
	}
}

// TestFileStoreRecoversKilledWrite: a write killed between writing its
// temporary file and renaming it (kill -9 during the fsync) leaves
// ".tokens.json.tmp-*" files. Opening the store puts the newest whole one
// in place when it is newer than the file (it holds the last change, such
// as a rotated refresh token), and removes torn and older ones.
func TestFileStoreRecoversKilledWrite(t *testing.T) {
	for _, pass := range []string{"", "correct horse"} {
		t.Run(fmt.Sprintf("encrypted=%v", pass != ""), func(t *testing.T) {
			t.Setenv(PassphraseEnv, pass)
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens.json")
			f := newTestFileStore(t, path)
			if err := f.Put("a@example.com", Entry{RefreshToken: "rt-1", Password: "pw"}); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			leave := func(name string, rt string, torn bool, mtime time.Time) {
				raw, err := f.encode(fileData{Accounts: map[string]Entry{"a@example.com": {RefreshToken: rt, Password: "pw"}}})
				if err != nil {
					t.Fatal(err)
				}
				if torn {
					raw = raw[:len(raw)/2]
				}
				p := filepath.Join(dir, ".tokens.json.tmp-"+name)
				if err := os.WriteFile(p, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chtimes(path, now.Add(-time.Minute), now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			leave("1", "rt-0", false, now.Add(-time.Hour)) // older than the file
			leave("2", "rt-2", false, now.Add(-30*time.Second))
			leave("3", "rt-3", false, now) // the newest whole one
			leave("4", "rt-4", true, now.Add(time.Second))

			g := newTestFileStore(t, path)
			if e, err := g.Get("a@example.com"); err != nil || e.RefreshToken != "rt-3" {
				t.Errorf("after opening: refresh token %q, %v; want the newest whole leftover, rt-3", e.RefreshToken, err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".tokens.json.tmp-*")); len(left) != 0 {
				t.Errorf("leftovers not removed: %v", left)
			}
		})
	}
}

// TestFileStoreLeftoverOlderThanFile: a leftover older than the file (a
// later write went through) is removed and changes nothing; so is one
// left while the store ran, at the next change.
func TestFileStoreLeftoverOlderThanFile(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	f := newTestFileStore(t, path)
	if err := f.Put("a@example.com", Entry{RefreshToken: "rt-1"}); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, ".tokens.json.tmp-9")
	if err := os.WriteFile(old, []byte(`{"v":1,"accounts":{"a@example.com":{"rt":"rt-0"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if err := f.Put("b@example.com", Entry{RefreshToken: "rt-b"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := f.Get("a@example.com"); e.RefreshToken != "rt-1" {
		t.Errorf("an older leftover replaced the file: %q", e.RefreshToken)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the older leftover is still there: %v", err)
	}
}

// TestFileStoreKeepsLeftoverItCannotRead: an encrypted leftover opened
// without the passphrase cannot be judged, so it stays for a store that
// has the passphrase.
func TestFileStoreKeepsLeftoverItCannotRead(t *testing.T) {
	t.Setenv(PassphraseEnv, "correct horse")
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	f := newTestFileStore(t, path)
	raw, err := f.encode(fileData{Accounts: map[string]Entry{"a@example.com": {RefreshToken: "rt-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, ".tokens.json.tmp-1")
	if err := os.WriteFile(left, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PassphraseEnv, "")
	newTestFileStore(t, path)
	if _, err := os.Stat(left); err != nil {
		t.Fatalf("a leftover this store cannot decrypt was removed: %v", err)
	}
	t.Setenv(PassphraseEnv, "correct horse")
	if e, err := newTestFileStore(t, path).Get("a@example.com"); err != nil || e.RefreshToken != "rt-2" {
		t.Errorf("with the passphrase: %q, %v; want the leftover recovered", e.RefreshToken, err)
	}
}

// TestFileStoreWithoutItsPassphrase: an encrypted file opened without its
// passphrase, or with the wrong one, fails loudly with an error naming
// the variable, at Check already; nothing calls it unencrypted.
func TestFileStoreWithoutItsPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	t.Setenv(PassphraseFileEnv, "")
	t.Setenv(PassphraseEnv, "correct horse")
	if err := newTestFileStore(t, path).Put("a@example.com", Entry{RefreshToken: "rt", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if enc, err := FileEncrypted(path); err != nil || !enc {
		t.Errorf("FileEncrypted = %v, %v", enc, err)
	}
	for _, pass := range []string{"", "wrong horse"} {
		t.Setenv(PassphraseEnv, pass)
		f := newTestFileStore(t, path)
		err := f.Check()
		if !errors.Is(err, ErrStorePassphrase) || !strings.Contains(err.Error(), PassphraseEnv) {
			t.Errorf("passphrase %q: Check = %v, want ErrStorePassphrase naming %s", pass, err, PassphraseEnv)
		}
		if _, err := f.Get("a@example.com"); !errors.Is(err, ErrStorePassphrase) || errors.Is(err, ErrNotFound) {
			t.Errorf("passphrase %q: Get = %v", pass, err)
		}
		if err := f.Put("b@example.com", Entry{RefreshToken: "rt-b"}); !errors.Is(err, ErrStorePassphrase) {
			t.Errorf("passphrase %q: Put = %v, want it refused", pass, err)
		}
		if w := f.Warning(); w != "" {
			t.Errorf("passphrase %q: warning %q for an encrypted file", pass, w)
		}
		if !f.Encrypted() {
			t.Errorf("passphrase %q: Encrypted() = false for an encrypted file", pass)
		}
	}
	t.Setenv(PassphraseEnv, "")
	plain := filepath.Join(t.TempDir(), "plain.json")
	if err := newTestFileStore(t, plain).Put("a@example.com", Entry{RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	if err := newTestFileStore(t, plain).Check(); err != nil {
		t.Errorf("Check of a plain file: %v", err)
	}
	if enc, err := FileEncrypted(plain); err != nil || enc {
		t.Errorf("FileEncrypted(plain) = %v, %v", enc, err)
	}
	if enc, err := FileEncrypted(filepath.Join(t.TempDir(), "none.json")); err != nil || enc {
		t.Errorf("FileEncrypted(missing) = %v, %v", enc, err)
	}
}

// TestFileStorePassphraseFile: BRIDGE_STORE_PASSPHRASE_FILE names a file
// holding the passphrase (as systemd's LoadCredential= provides one); its
// final line break is not part of the passphrase.
func TestFileStorePassphraseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	t.Setenv(PassphraseFileEnv, "")
	t.Setenv(PassphraseEnv, "correct horse")
	if err := newTestFileStore(t, path).Put("a@example.com", Entry{RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PassphraseEnv, "")
	passFile := filepath.Join(dir, "passphrase")
	t.Setenv(PassphraseFileEnv, passFile)
	for _, content := range []string{"correct horse", "correct horse\n", "correct horse\r\n"} {
		if err := os.WriteFile(passFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if e, err := newTestFileStore(t, path).Get("a@example.com"); err != nil || e.RefreshToken != "rt" {
			t.Errorf("passphrase file %q: %v", content, err)
		}
	}
	if err := os.WriteFile(passFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileStore(path); !errors.Is(err, ErrStorePassphrase) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty passphrase file: %v", err)
	}
	t.Setenv(PassphraseFileEnv, filepath.Join(dir, "missing"))
	if _, err := NewFileStore(path); !errors.Is(err, ErrStorePassphrase) || !strings.Contains(err.Error(), PassphraseFileEnv) {
		t.Errorf("missing passphrase file: %v", err)
	}
	t.Setenv(PassphraseFileEnv, passFile)
	t.Setenv(PassphraseEnv, "correct horse")
	if _, err := NewFileStore(path); !errors.Is(err, ErrStorePassphrase) || !strings.Contains(err.Error(), "both") {
		t.Errorf("both set: %v", err)
	}
}
