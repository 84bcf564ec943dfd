package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// handWritten is a config a person edited: comments everywhere, aligned
// values, a multi-line array, keys in their own order.
const handWritten = `# my bridge
[listen]
imap  = "127.0.0.1:1143"   # for mutt
smtp  = "127.0.0.1:1587"

[[account]]
# the main mailbox
email     = "me@example.com"   # work
client_id = "old-id"           # from the portal
scopes = [
  "https://outlook.office.com/IMAP.AccessAsUser.All", # imap
  "offline_access",
]

# the shared one, read with my tokens
[[account]]
  email = "Shared@Example.com"
  token_from = "me@example.com"

# logging last
[log]
level = "debug"
`

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpsertAccountUpdatesInPlace(t *testing.T) {
	p := writeConfig(t, handWritten)
	err := UpsertAccount(p, Account{Email: "ME@example.com", ClientID: "new-id", Tenant: "contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(handWritten, `client_id = "old-id"           # from the portal`, `client_id = "new-id"           # from the portal`, 1)
	want = strings.Replace(want, "  \"offline_access\",\n]\n", "  \"offline_access\",\n]\ntenant = \"contoso.com\"\n", 1)
	if got := readFile(t, p); got != want {
		t.Errorf("file after upsert:\n%s\nwant:\n%s", got, want)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Account("me@example.com"); a == nil || a.ClientID != "new-id" || a.Tenant != "contoso.com" || len(a.Scopes) != 2 {
		t.Errorf("account after upsert = %+v", a)
	}
}

func TestUpsertAccountIndentedBlockAndSameValues(t *testing.T) {
	p := writeConfig(t, handWritten)
	// The email differs in case and token_from is unchanged: only the new
	// key is added, indented like the block.
	if err := UpsertAccount(p, Account{Email: "shared@example.com", TokenFrom: "me@example.com", Mailbox: "shared@example.com"}); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(handWritten, "  token_from = \"me@example.com\"\n", "  token_from = \"me@example.com\"\n  mailbox = \"shared@example.com\"\n", 1)
	if got := readFile(t, p); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Writing the same values again changes nothing at all.
	if err := UpsertAccount(p, Account{Email: "me@example.com", ClientID: "old-id",
		Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != want {
		t.Errorf("a no-op upsert changed the file:\n%s", got)
	}
}

func TestUpsertAccountAppendsNewBlock(t *testing.T) {
	p := writeConfig(t, handWritten)
	a := Account{Email: "new@example.com", Provider: "microsoft", ClientID: "cid", Scopes: []string{"a", "b"}}
	if err := UpsertAccount(p, a); err != nil {
		t.Fatal(err)
	}
	want := handWritten + "\n[[account]]\nemail = \"new@example.com\"\nprovider = \"microsoft\"\nclient_id = \"cid\"\nscopes = [\"a\", \"b\"]\n"
	if got := readFile(t, p); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestUpsertAccountCreatesFileAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "bridge")
	p := filepath.Join(dir, "config.toml")
	if err := UpsertAccount(p, Account{Email: "me@example.com", ClientID: "cid"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 1 || c.Accounts[0].Email != "me@example.com" || c.Accounts[0].ClientID != "cid" {
		t.Errorf("accounts = %+v", c.Accounts)
	}
	if !strings.HasPrefix(readFile(t, p), "# bridge configuration") {
		t.Error("a created file should start with the header comment")
	}
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits to check")
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	// The edit lock's file stays (removing it would let two processes lock
	// two different files); nothing else may.
	entries, _ := os.ReadDir(dir)
	var stray []string
	for _, e := range entries {
		if e.Name() != "config.toml" && e.Name() != "config.toml.lock" {
			stray = append(stray, e.Name())
		}
	}
	if len(stray) != 0 {
		t.Errorf("stray files left next to the config: %v", stray)
	}
}

func TestUpsertAccountKeepsExistingMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits to check")
	}
	p := writeConfig(t, handWritten)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := UpsertAccount(p, Account{Email: "me@example.com", ClientID: "x"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", st.Mode().Perm())
	}
}

func TestUpsertAccountEscapesValues(t *testing.T) {
	p := writeConfig(t, "")
	odd := "a \"quoted\" \\ back\tslash\nnew line \x01 é"
	if err := UpsertAccount(p, Account{Email: "me@example.com", ClientID: odd}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Accounts[0].ClientID != odd {
		t.Errorf("client_id = %q, want %q", c.Accounts[0].ClientID, odd)
	}
}

func TestUpsertAccountRefusesInvalidResult(t *testing.T) {
	p := writeConfig(t, handWritten)
	err := UpsertAccount(p, Account{Email: "x@example.com", TokenFrom: "nobody@example.com"})
	if err == nil {
		t.Fatal("want an error for a token_from naming no account")
	}
	findErr(t, configErrors(t, err), "account[2].token_from")
	if got := readFile(t, p); got != handWritten {
		t.Error("a refused edit changed the file")
	}
	if err := UpsertAccount(p, Account{}); err == nil {
		t.Error("want an error for an account without email")
	}
	// A file that is already broken is not edited.
	broken := writeConfig(t, "[listen]\nimapp = \"127.0.0.1:1\"\n")
	if err := UpsertAccount(broken, Account{Email: "me@example.com"}); err == nil || !strings.Contains(err.Error(), "imapp") {
		t.Errorf("editing a broken file: %v", err)
	}
}

func TestRemoveAccount(t *testing.T) {
	p := writeConfig(t, handWritten)
	if err := RemoveAccount(p, "shared@EXAMPLE.com"); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(handWritten, "\n# the shared one, read with my tokens\n[[account]]\n  email = \"Shared@Example.com\"\n  token_from = \"me@example.com\"\n", "", 1)
	if got := readFile(t, p); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := RemoveAccount(p, "shared@example.com"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("removing twice: %v, want ErrNoAccount", err)
	}
}

func TestRemoveAccountRefusesWhenBorrowedFrom(t *testing.T) {
	p := writeConfig(t, handWritten)
	err := RemoveAccount(p, "me@example.com")
	if err == nil {
		t.Fatal("removing the delegate of a shared mailbox should be refused")
	}
	if !strings.Contains(err.Error(), "token_from") {
		t.Errorf("error should explain the token_from: %v", err)
	}
	if got := readFile(t, p); got != handWritten {
		t.Error("a refused removal changed the file")
	}
}

func TestUpsertAccountKeepsCRLF(t *testing.T) {
	crlf := strings.ReplaceAll(handWritten, "\n", "\r\n")
	p := writeConfig(t, crlf)
	if err := UpsertAccount(p, Account{Email: "me@example.com", Mailbox: "box@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := UpsertAccount(p, Account{Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, p)
	if strings.Count(got, "\n") != strings.Count(got, "\r\n") {
		t.Errorf("bare LF written into a CRLF file:\n%q", got)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Account("me@example.com"); a == nil || a.Mailbox != "box@example.com" {
		t.Errorf("me = %+v", a)
	}
	if a, _ := c.Account("new@example.com"); a == nil {
		t.Error("new account missing")
	}
}

func TestUpsertAccountFileWithoutFinalNewline(t *testing.T) {
	p := writeConfig(t, "[[account]]\nemail = \"me@example.com\"")
	if err := UpsertAccount(p, Account{Email: "me@example.com", ClientID: "cid"}); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, p), "[[account]]\nemail = \"me@example.com\"\nclient_id = \"cid\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Edits made at the same time (two `bridge login` runs) each read, change
// and write the whole file; the lock makes sure none writes back a file
// without the other's account.
func TestUpsertAccountConcurrentEditsKeepEveryAccount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- UpsertAccount(path, Account{Email: fmt.Sprintf("user%d@example.com", i), ClientID: "c"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != n {
		t.Fatalf("%d accounts in the file after %d concurrent additions", len(cfg.Accounts), n)
	}
}
