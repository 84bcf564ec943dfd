package tokens

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/internal/atomicfile"
	"github.com/mailbridge/bridge/internal/filelock"
)

// PassphraseEnv names the environment variable whose value, when set,
// encrypts the file store.
const PassphraseEnv = "BRIDGE_STORE_PASSPHRASE"

// PassphraseFileEnv names the environment variable that gives the file
// store's passphrase as the path of a file holding it (a final line break
// is not part of it), for services: systemd's LoadCredential= puts such a
// file in $CREDENTIALS_DIRECTORY, and the unit sets
// BRIDGE_STORE_PASSPHRASE_FILE=%d/NAME. Set this or PassphraseEnv, not both.
const PassphraseFileEnv = "BRIDGE_STORE_PASSPHRASE_FILE"

// ErrStorePassphrase wraps every failure a passphrase fixes: an encrypted
// token file read without one or with the wrong one, or a passphrase file
// that cannot be read.
var ErrStorePassphrase = errors.New("tokens: the token file's passphrase (" + PassphraseEnv + ") is missing or wrong")

// PBKDF2 settings. 600,000 rounds of HMAC-SHA-256 is OWASP's 2023 advice
// for PBKDF2; the count is stored in the file so it can be raised later.
// minIter and maxIter bound what a file may ask for, so a tampered file
// can neither weaken new writes nor make the bridge spin for minutes.
const (
	kdfName     = "pbkdf2-sha256"
	defaultIter = 600_000
	minIter     = 100_000
	maxIter     = 10_000_000
	saltLen     = 16
)

// fileData is the plain content: every account's entry.
type fileData struct {
	Accounts map[string]Entry `json:"accounts"`
}

// fileEnvelope is what lies on disk. Plain files carry Accounts; encrypted
// ones carry KDF, Iter, Salt, Nonce and Data (AES-256-GCM of a fileData).
type fileEnvelope struct {
	Version  int              `json:"v"`
	Accounts map[string]Entry `json:"accounts,omitempty"`
	KDF      string           `json:"kdf,omitempty"`
	Iter     int              `json:"iter,omitempty"`
	Salt     []byte           `json:"salt,omitempty"`
	Nonce    []byte           `json:"nonce,omitempty"`
	Data     []byte           `json:"data,omitempty"`
}

// FileStore keeps all entries in one JSON file (mode 0600, in a directory
// of mode 0700), encrypted when BRIDGE_STORE_PASSPHRASE (or
// BRIDGE_STORE_PASSPHRASE_FILE) gives a passphrase. Every Get reads the
// file again, so a `bridge login` run by another process is seen at once.
// Every change (Put, Update, Delete) holds an OS lock on "<file>.lock",
// reads the file under it, and replaces the file atomically (temporary
// file and rename), so processes that change the file at the same time
// never undo each other's writes.
type FileStore struct {
	path       string
	passphrase string
	// iter is the PBKDF2 count for files this store creates.
	iter int
	// beforeWrite, when set, runs under the lock just before the new
	// content is written; its error fails the write. Tests slow writes
	// down or make them fail (a full disk) with it.
	beforeWrite func() error

	// mu serialises this process's changes, so they queue here rather
	// than poll the OS lock; it also guards the key cache.
	mu sync.Mutex
	// key caches the derived key for salt and iterations, since deriving
	// it takes a noticeable fraction of a second and Get reads every time.
	key     []byte
	keySalt []byte
	keyIter int
}

// NewFileStore returns a store kept at path (DefaultFilePath when empty),
// reading the passphrase from BRIDGE_STORE_PASSPHRASE, or the file
// BRIDGE_STORE_PASSPHRASE_FILE names, once, now (an error there wraps
// ErrStorePassphrase). It creates the directory with mode 0700 if it is
// missing. It does not read the token file, but deals with temporary
// files a killed write left next to it (see recoverTemps).
func NewFileStore(path string) (*FileStore, error) {
	pass, err := storePassphrase()
	if err != nil {
		return nil, err
	}
	if path == "" {
		p, err := DefaultFilePath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tokens: creating token directory: %w", err)
		}
		// MkdirAll's mode passes through the umask; make it exact.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tokens: securing token directory: %w", err)
		}
	}
	f := &FileStore{path: path, passphrase: pass, iter: defaultIter}
	if temps := f.leftoverTemps(); len(temps) > 0 {
		// Only under the lock: a temporary file may be another process's
		// write under way. Best effort; every change tries again.
		if l, err := filelock.Acquire(f.path+".lock", lockWait); err == nil {
			f.recoverTemps(f.leftoverTemps())
			l.Release()
		}
	}
	return f, nil
}

// storePassphrase reads the passphrase from PassphraseEnv, or from the
// file PassphraseFileEnv names.
func storePassphrase() (string, error) {
	pass, file := os.Getenv(PassphraseEnv), os.Getenv(PassphraseFileEnv)
	switch {
	case file == "":
		return pass, nil
	case pass != "":
		return "", fmt.Errorf("%w: both %s and %s are set; unset one", ErrStorePassphrase, PassphraseEnv, PassphraseFileEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: reading the file %s names: %w", ErrStorePassphrase, PassphraseFileEnv, err)
	}
	pass = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pass == "" {
		return "", fmt.Errorf("%w: the file %s names (%s) is empty", ErrStorePassphrase, PassphraseFileEnv, file)
	}
	return pass, nil
}

// FileEncrypted reports whether the token file at path (DefaultFilePath
// when empty) is encrypted; a missing file is not. It needs no passphrase.
func FileEncrypted(path string) (bool, error) {
	if path == "" {
		p, err := DefaultFilePath()
		if err != nil {
			return false, err
		}
		path = p
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tokens: reading token file: %w", err)
	}
	var env fileEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return false, fmt.Errorf("tokens: token file %s is damaged (not JSON)", path)
	}
	return env.KDF != "", nil
}

// Name returns "file".
func (f *FileStore) Name() string { return "file" }

// Path returns the file the store uses.
func (f *FileStore) Path() string { return f.path }

// Encrypted reports whether the file is or will be encrypted: a
// passphrase is set, or the file on disk is encrypted (and then reading it
// needs one). It reads the file when no passphrase is set.
func (f *FileStore) Encrypted() bool {
	if f.passphrase != "" {
		return true
	}
	enc, _ := FileEncrypted(f.path)
	return enc
}

// Check reads (and decrypts) the file now, so that a missing or wrong
// passphrase stops a server at start rather than failing every login:
// such errors wrap ErrStorePassphrase. A missing file is fine.
func (f *FileStore) Check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.load()
	return err
}

// Warning returns a warning to show the user prominently (log it at start
// and print it from `bridge login`), or "" when the file is, or will be,
// encrypted. An encrypted file without its passphrase gets no warning (it
// is not unencrypted): reading it fails with ErrStorePassphrase instead.
func (f *FileStore) Warning() string {
	if f.Encrypted() {
		return ""
	}
	return fmt.Sprintf("WARNING: tokens are stored UNENCRYPTED in %s; anyone who can read this file can read "+
		"the mail of its accounts. Set %s to encrypt it, or use the OS keyring ([store] backend = \"keyring\").",
		f.path, PassphraseEnv)
}

// lockWait bounds how long a change waits for another process's change
// to finish; those hold the lock for one read and one write.
const lockWait = 20 * time.Second

// Get returns the account's entry, read from the file now. It takes no OS
// lock: a write replaces the file whole, so a read sees the old content or
// the new.
func (f *FileStore) Get(account string) (Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.load()
	if err != nil {
		return Entry{}, err
	}
	e, ok := d.Accounts[account]
	if !ok {
		return Entry{}, fmt.Errorf("tokens: %s has no entry for %s: %w", f.path, account, ErrNotFound)
	}
	return e, nil
}

// Put replaces the account's entry.
func (f *FileStore) Put(account string, e Entry) error {
	return f.Update(account, func(old *Entry) error {
		*old = e
		return nil
	})
}

// Update changes the account's entry in one step that no other process
// can interleave with (see Updater): the file is read under the lock,
// change edits the entry, and the file is written before the lock goes.
func (f *FileStore) Update(account string, change func(*Entry) error) error {
	return f.change(func(d *fileData) (bool, error) {
		old := d.Accounts[account]
		e := old
		if err := change(&e); err != nil {
			return false, err
		}
		if e == old {
			return false, nil
		}
		d.Accounts[account] = e
		return true, nil
	})
}

// Delete removes the account's entry, rewriting the file if it had one.
func (f *FileStore) Delete(account string) error {
	return f.change(func(d *fileData) (bool, error) {
		if _, ok := d.Accounts[account]; !ok {
			return false, nil
		}
		delete(d.Accounts, account)
		return true, nil
	})
}

// CheckWrite tells whether a change could be saved now, writing nothing
// that stays: under the lock it reads (and decrypts) the file and writes,
// syncs and removes a scratch file the size of a token file next to it.
// A refresh that rotates the refresh token asks first, so that a full disk
// or a read-only directory does not burn the stored token at the platform
// and then fail to save the new one.
func (f *FileStore) CheckWrite() error {
	return f.change(func(*fileData) (bool, error) {
		if f.beforeWrite != nil {
			if err := f.beforeWrite(); err != nil {
				return false, fmt.Errorf("tokens: the token file cannot be written: %w", err)
			}
		}
		if err := probeWrite(filepath.Dir(f.path), f.tempPattern()); err != nil {
			return false, fmt.Errorf("tokens: the token file cannot be written: %w", err)
		}
		return false, nil
	})
}

// probeWrite creates a file named like atomicfile's temporary files (so
// one left by a crash is cleaned like them), fills and syncs it, and
// removes it.
func probeWrite(dir, pattern string) error {
	p, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	defer os.Remove(p.Name())
	_, err = p.Write(make([]byte, 4096))
	if err == nil {
		err = p.Sync()
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

// change runs edit on the file's content under both locks and writes the
// result when edit reports a change.
func (f *FileStore) change(edit func(*fileData) (bool, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := filelock.Acquire(f.path+".lock", lockWait)
	if err != nil {
		return fmt.Errorf("tokens: locking the token file: %w", err)
	}
	defer l.Release()
	if temps := f.leftoverTemps(); len(temps) > 0 {
		f.recoverTemps(temps)
	}
	d, err := f.load()
	if err != nil {
		return err
	}
	changed, err := edit(&d)
	if err != nil || !changed {
		return err
	}
	return f.save(d)
}

// load reads and, if needed, decrypts the file. A missing file is empty.
func (f *FileStore) load() (fileData, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileData{Accounts: map[string]Entry{}}, nil
	}
	if err != nil {
		return fileData{Accounts: map[string]Entry{}}, fmt.Errorf("tokens: reading token file: %w", err)
	}
	return f.decode(f.path, raw)
}

// decode reads a token file's content; name names it in errors.
func (f *FileStore) decode(name string, raw []byte) (fileData, error) {
	d := fileData{Accounts: map[string]Entry{}}
	var env fileEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return d, fmt.Errorf("tokens: token file %s is damaged (not JSON)", name)
	}
	if env.KDF == "" {
		// A plain file; with a passphrase set, the next write encrypts it.
		if env.Accounts != nil {
			d.Accounts = env.Accounts
		}
		return d, nil
	}
	if f.passphrase == "" {
		return d, fmt.Errorf("%w: %s is encrypted; set %s to its passphrase, or %s to a file that holds it", ErrStorePassphrase, name, PassphraseEnv, PassphraseFileEnv)
	}
	if env.KDF != kdfName || env.Iter < minIter || env.Iter > maxIter || len(env.Salt) < saltLen {
		return d, fmt.Errorf("tokens: token file %s uses an unknown or unsafe encryption setting (%s, %d rounds)", name, env.KDF, env.Iter)
	}
	aead, err := f.aead(env.Salt, env.Iter)
	if err != nil {
		return d, err
	}
	if len(env.Nonce) != aead.NonceSize() {
		return d, fmt.Errorf("tokens: token file %s is damaged (bad nonce)", name)
	}
	plain, err := aead.Open(nil, env.Nonce, env.Data, aad(env.Version))
	if err != nil {
		return d, fmt.Errorf("%w: cannot decrypt %s: wrong %s, or the file was altered", ErrStorePassphrase, name, PassphraseEnv)
	}
	if err := json.Unmarshal(plain, &d); err != nil {
		return d, fmt.Errorf("tokens: token file %s is damaged (decrypted content is not JSON)", name)
	}
	if d.Accounts == nil {
		d.Accounts = map[string]Entry{}
	}
	return d, nil
}

// tempPattern matches the temporary files atomicfile.Write makes next to
// the token file.
func (f *FileStore) tempPattern() string { return "." + filepath.Base(f.path) + ".tmp-*" }

// recoverTemps deals with temporary files left next to the token file by
// a write killed before its rename (kill -9, a power cut). One that holds
// a whole, readable token file newer than the file itself is the content
// that write was about to put in place (with a rotated refresh token the
// platform may already insist on), and replaces the file; the others (torn,
// or older) are removed. One this store cannot decrypt is left alone.
// It runs under the lock, so no write of any process is under way, and
// is best effort: what it cannot do now, the next change tries again.
func (f *FileStore) recoverTemps(names []string) {
	newest, newestTime := "", time.Time{}
	if fi, err := os.Stat(f.path); err == nil {
		newestTime = fi.ModTime()
	}
	var stale []string
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		if _, err := f.decode(n, raw); err != nil {
			if !errors.Is(err, ErrStorePassphrase) {
				stale = append(stale, n)
			}
			continue
		}
		if fi.ModTime().After(newestTime) {
			if newest != "" {
				stale = append(stale, newest)
			}
			newest, newestTime = n, fi.ModTime()
			continue
		}
		stale = append(stale, n)
	}
	if newest != "" {
		os.Rename(newest, f.path)
	}
	for _, n := range stale {
		os.Remove(n)
	}
}

// leftoverTemps lists the temporary files next to the token file.
func (f *FileStore) leftoverTemps() []string {
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(f.path), f.tempPattern()))
	return names
}

// save writes d, encrypted when a passphrase is set, to a temporary file in
// the same directory and renames it over the old one, so readers see the
// old or the new content, never a torn write.
func (f *FileStore) save(d fileData) error {
	out, err := f.encode(d)
	if err != nil {
		return err
	}
	if f.beforeWrite != nil {
		if err := f.beforeWrite(); err != nil {
			return fmt.Errorf("tokens: writing token file: %w", err)
		}
	}
	return writeAtomic(f.path, out)
}

// encode makes the file's content: d, encrypted when a passphrase is set.
func (f *FileStore) encode(d fileData) ([]byte, error) {
	env := fileEnvelope{Version: 1}
	if f.passphrase == "" {
		env.Accounts = d.Accounts
	} else {
		plain, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("tokens: encoding token file: %w", err)
		}
		salt, iter := f.keySalt, f.keyIter
		if salt == nil || iter < f.iter {
			salt = make([]byte, saltLen)
			rand.Read(salt)
			iter = f.iter
		}
		aead, err := f.aead(salt, iter)
		if err != nil {
			return nil, err
		}
		// A fresh random nonce per write; a salt is reused only with the
		// same key, and 96-bit random nonces stay unique for far more
		// writes than a token file sees.
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		env.KDF, env.Iter, env.Salt, env.Nonce = kdfName, iter, salt, nonce
		env.Data = aead.Seal(nil, nonce, plain, aad(env.Version))
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tokens: encoding token file: %w", err)
	}
	return append(out, '\n'), nil
}

// aead returns AES-256-GCM keyed from the passphrase, salt and count,
// deriving the key only when they changed since last time.
func (f *FileStore) aead(salt []byte, iter int) (cipher.AEAD, error) {
	if f.key == nil || f.keyIter != iter || !bytes.Equal(f.keySalt, salt) {
		key, err := pbkdf2.Key(sha256.New, f.passphrase, salt, iter, 32)
		if err != nil {
			return nil, fmt.Errorf("tokens: deriving the token file key: %w", err)
		}
		f.key, f.keySalt, f.keyIter = key, bytes.Clone(salt), iter
	}
	block, err := aes.NewCipher(f.key)
	if err != nil {
		return nil, fmt.Errorf("tokens: token file cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("tokens: token file cipher: %w", err)
	}
	return aead, nil
}

// aad binds the ciphertext to the format version.
func aad(version int) []byte { return fmt.Appendf(nil, "bridge-tokens-v%d", version) }

// writeAtomic writes data to a new file (mode 0600) next to path, syncs it
// and renames it over path.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("tokens: writing token file: %w", err)
	}
	return nil
}
