package tokens

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// The two-process test runs this test binary again as its children; these
// variables tell a child its part.
const (
	childRoleEnv  = "TOKENS_TEST_STORE_CHILD"
	childStoreEnv = "TOKENS_TEST_STORE_PATH"
	childURLEnv   = "TOKENS_TEST_TOKEN_URL"
)

const (
	rotatingUser = "server@example.com"
	otherUser    = "other@example.com"
	childRounds  = 12
)

// TestFileStoreTwoProcesses: one process plays `bridge serve`, refreshing
// (and so rotating, strictly: each refresh token works once) an account's
// tokens; another plays `bridge password --reset` on that account and
// `bridge login` on a second one, in a loop. Every write of both is slowed
// down while it holds its read of the file, so their changes overlap. No
// change may be lost: the password reads back as last set, the rotated
// refresh token is the newest one, and the second account is as its last
// sign-in left it.
func TestFileStoreTwoProcesses(t *testing.T) {
	switch os.Getenv(childRoleEnv) {
	case "rotate":
		childRotate(t)
		return
	case "reset":
		childReset(t)
		return
	}
	t.Setenv(PassphraseEnv, "")
	srv := tokenstest.New(tokenstest.Options{ClientID: testClient, RevokeOnRotate: true})
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "tokens.json")
	f := newTestFileStore(t, path)
	_, rt, _ := srv.Issue(rotatingUser)
	if err := f.Put(rotatingUser, Entry{RefreshToken: rt, Password: "pw-0"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(otherUser, Entry{RefreshToken: "other-rt-0", Password: "other-pw-0"}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for _, role := range []string{"rotate", "reset"} {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreTwoProcesses$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childStoreEnv+"="+path, childURLEnv+"="+srv.TokenURL("common"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("the %s process failed: %v\n%s", role, err, out)
			}
		})
	}
	wg.Wait()

	e, err := f.Get(rotatingUser)
	if err != nil {
		t.Fatal(err)
	}
	if e.Password != fmt.Sprint("pw-", childRounds) {
		t.Errorf("the reset password was lost: the store holds %q", e.Password)
	}
	if e.RefreshToken != srv.LatestRefresh(rotatingUser) || e.NeedsLogin != "" {
		t.Errorf("the rotated refresh token was lost (newest stored: %v, needs_login %q)", e.RefreshToken == srv.LatestRefresh(rotatingUser), e.NeedsLogin)
	}
	if n := srv.RefreshRequests(); n != childRounds {
		t.Errorf("%d refreshes, want %d", n, childRounds)
	}
	o, err := f.Get(otherUser)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint("other-rt-", childRounds); o.RefreshToken != want || o.Password != fmt.Sprint("other-pw-", childRounds) {
		t.Errorf("the second account's sign-in was lost: %+v", o)
	}
	// With strict rotation the account still works from the store alone.
	src := NewSource(SourceOptions{Account: rotatingUser, Provider: childProvider(srv.TokenURL("common")), ClientID: testClient, Store: f})
	if _, err := src.Token(context.Background()); err != nil {
		t.Errorf("a new server cannot refresh from the store: %v", err)
	}
}

func childProvider(tokenURL string) Provider {
	p := Microsoft("common")
	p.TokenURL = tokenURL
	return p
}

// childStore opens the shared file with every write slowed down by 20-40
// ms, as a slow disk's fsync would.
func childStore(t *testing.T) *FileStore {
	f := newTestFileStore(t, os.Getenv(childStoreEnv))
	f.beforeWrite = func() error {
		time.Sleep(time.Duration(20+rand.IntN(20)) * time.Millisecond)
		return nil
	}
	return f
}

// childRotate refreshes childRounds times, each refresh rotating the
// refresh token and saving it.
func childRotate(t *testing.T) {
	f := childStore(t)
	var mu sync.Mutex
	now := time.Now()
	src := NewSource(SourceOptions{
		Account: rotatingUser, Provider: childProvider(os.Getenv(childURLEnv)), ClientID: testClient, Store: f,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	for i := range childRounds {
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		if st := src.State(); st.NotSaved != "" {
			t.Fatalf("refresh %d: not saved: %s", i+1, st.NotSaved)
		}
		mu.Lock()
		now = now.Add(2 * time.Hour) // the access token is spent: refresh again
		mu.Unlock()
	}
}

// childReset resets the first account's password and signs the second
// account in again, childRounds times, checking each time that its own
// last write is still there.
func childReset(t *testing.T) {
	f := childStore(t)
	for i := 1; i <= childRounds; i++ {
		err := f.Update(rotatingUser, func(e *Entry) error {
			if want := "pw-" + strconv.Itoa(i-1); e.Password != want {
				return fmt.Errorf("round %d: the password reads %q, want %q: a write was lost", i, e.Password, want)
			}
			e.Password = "pw-" + strconv.Itoa(i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = f.Update(otherUser, func(e *Entry) error {
			if want := "other-rt-" + strconv.Itoa(i-1); e.RefreshToken != want {
				return fmt.Errorf("round %d: the second account's refresh token reads %q, want %q: a write was lost", i, e.RefreshToken, want)
			}
			e.RefreshToken, e.Password, e.Updated = "other-rt-"+strconv.Itoa(i), "other-pw-"+strconv.Itoa(i), time.Now()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
