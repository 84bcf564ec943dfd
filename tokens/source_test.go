package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	testClient = "11111111-2222-3333-4444-555555555555"
	testUser   = "alice@contoso.example"
)

// memStore is an in-memory tokens.Store that counts writes and can be
// told to fail them.
type memStore struct {
	mu      sync.Mutex
	m       map[string]tokens.Entry
	puts    atomic.Int64
	failPut error
	failGet error
}

func newMemStore() *memStore { return &memStore{m: map[string]tokens.Entry{}} }

func (s *memStore) Get(a string) (tokens.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet != nil {
		return tokens.Entry{}, s.failGet
	}
	e, ok := s.m[a]
	if !ok {
		return tokens.Entry{}, fmt.Errorf("memstore %s: %w", a, tokens.ErrNotFound)
	}
	return e, nil
}

func (s *memStore) Put(a string, e tokens.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		return s.failPut
	}
	s.puts.Add(1)
	s.m[a] = e
	return nil
}

func (s *memStore) Delete(a string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, a)
	return nil
}

func (s *memStore) Name() string { return "memory" }

func (s *memStore) entry(t *testing.T) tokens.Entry {
	t.Helper()
	e, err := s.Get(testUser)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// clock is a settable time source shared by a Source and its test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	srv   *tokenstest.Server
	clock *clock
	logs  *syncBuffer
	rt    string // the refresh token first stored
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts an identity platform that insists on scopes in refresh
// requests and stores a freshly issued refresh token for testUser.
func newEnv(t *testing.T, o tokenstest.Options, store tokens.Store) *env {
	t.Helper()
	o.ClientID = testClient
	o.RequireRefreshScope = true
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	srv := tokenstest.New(o)
	t.Cleanup(srv.Close)
	_, rt, _ := srv.Issue(testUser)
	if err := store.Put(testUser, tokens.Entry{RefreshToken: rt, Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, clock: &clock{now: time.Now()}, logs: &syncBuffer{}, rt: rt}
}

func (e *env) source(store tokens.Store) *tokens.Source {
	p := tokens.Microsoft("common")
	p.TokenURL = e.srv.TokenURL("common")
	return tokens.NewSource(tokens.SourceOptions{
		Account:  testUser,
		Provider: p,
		ClientID: testClient,
		Store:    store,
		Now:      e.clock.Now,
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// noSecrets fails the test if s contains any token the platform issued
// for the test, or the local password.
func (e *env) noSecrets(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range append(secrets, e.rt, e.srv.LatestRefresh(testUser), "local-pw") {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains a secret", what)
		}
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Past the first token's expiry, with a slow platform so that every
	// caller arrives while the refresh is in flight.
	e.clock.Advance(2 * time.Hour)
	e.srv.FailNext(1, tokenstest.Slow(200*time.Millisecond))
	reqs, puts := e.srv.RefreshRequests(), store.puts.Load()

	const callers = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := src.Token(ctx)
			errs[i] = err
			if err == nil {
				got[i] = tok.AccessToken
			}
		})
	}
	close(start)
	wg.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("caller %d got a different access token", i)
		}
	}
	if got[0] == first.AccessToken {
		t.Fatal("the expired access token was handed out again")
	}
	if err := e.srv.Validate(testUser, got[0]); err != nil {
		t.Errorf("the shared token is not valid at the platform: %v", err)
	}
	if n := e.srv.RefreshRequests() - reqs; n != 1 {
		t.Errorf("%d callers made %d refresh requests, want 1", callers, n)
	}
	if n := store.puts.Load() - puts; n != 1 {
		t.Errorf("%d store writes for one rotation, want 1", n)
	}
	if rt := store.entry(t).RefreshToken; rt != e.srv.LatestRefresh(testUser) {
		t.Error("the store does not hold the newest refresh token")
	}
	if store.entry(t).Password != "local-pw" {
		t.Error("saving the rotated refresh token lost the local password")
	}
	e.noSecrets(t, "log", e.logs.String(), got[0])
}

func TestRotatedRefreshTokenSurvivesRestart(t *testing.T) {
	t.Setenv(tokens.PassphraseEnv, "")
	path := filepath.Join(t.TempDir(), "tokens.json")
	open := func() tokens.Store {
		s, err := tokens.OpenStore("file", path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The platform revokes a refresh token once it has been rotated, so
	// the second process can only succeed with the rotated one.
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, open())
	if _, err := e.source(open()).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	rotated := e.srv.LatestRefresh(testUser)
	if rotated == e.rt {
		t.Fatal("the platform did not rotate the refresh token")
	}

	restarted := open()
	if en, err := restarted.Get(testUser); err != nil || en.RefreshToken != rotated || en.Updated.IsZero() {
		t.Fatalf("store after rotation: matches=%v updated=%v err=%v", en.RefreshToken == rotated, en.Updated, err)
	}
	tok, err := e.source(restarted).Token(context.Background())
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if err := e.srv.Validate(testUser, tok.AccessToken); err != nil {
		t.Error(err)
	}
	if tok.RefreshToken != "" {
		t.Error("Token handed out a refresh token")
	}
}

func TestServerErrorKeepsStoredToken(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	e.srv.FailNext(5, tokenstest.ServerError())
	src := e.source(store)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := src.Token(ctx)
	if err == nil {
		t.Fatal("Token succeeded while the platform answered 500")
	}
	var te *tokens.Error
	if !errors.As(err, &te) || te.Status != 500 || !te.Temporary() {
		t.Fatalf("err = %v, want a temporary *tokens.Error with status 500", err)
	}
	if errors.Is(err, tokens.ErrNeedsLogin) {
		t.Error("a 500 was treated as needing a new sign-in")
	}
	if n := e.srv.RefreshRequests(); n < 2 || n > 5 {
		t.Errorf("%d refresh requests; want a few retries, bounded", n)
	}
	en := store.entry(t)
	if en.RefreshToken != e.rt || en.NeedsLogin != "" {
		t.Errorf("stored entry changed by a 500: same token=%v needs_login=%q", en.RefreshToken == e.rt, en.NeedsLogin)
	}
	if store.puts.Load() != 1 { // the Put by newEnv
		t.Errorf("%d store writes, want none by the source", store.puts.Load()-1)
	}
	if st := src.State(); st.LastError == "" || st.NeedsLogin != "" || !st.HasRefreshToken {
		t.Errorf("State = %+v", st)
	}
	e.noSecrets(t, "error", err.Error())

	// Once the queued failures are used up, the same source works.
	for range 3 {
		if _, err = src.Token(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the platform recovered: %v", err)
	}
	if st := src.State(); st.LastError != "" || st.LastRefresh.IsZero() {
		t.Errorf("State after success = %+v", st)
	}
}

func TestInvalidGrantMarksNeedsLogin(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	e.srv.FailNext(1, tokenstest.InvalidGrant(700082,
		"The refresh token has expired due to inactivity. The token was issued on 2024-01-01 and was inactive for 90.00:00:00."))
	src := e.source(store)

	_, err := src.Token(context.Background())
	if !errors.Is(err, tokens.ErrNeedsLogin) {
		t.Fatalf("err = %v, want ErrNeedsLogin", err)
	}
	var te *tokens.Error
	if !errors.As(err, &te) || te.AADSTS != 700082 || te.Code != "invalid_grant" {
		t.Fatalf("err = %v, want the *tokens.Error with AADSTS700082", err)
	}
	meaning := tokens.Meaning(700082)
	if meaning == "" {
		t.Fatal("tokens.Meaning has no text for AADSTS700082")
	}
	reason := store.entry(t).NeedsLogin
	for _, want := range []string{"AADSTS700082", meaning} {
		if !strings.Contains(reason, want) {
			t.Errorf("stored NeedsLogin %q lacks %q", reason, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(err.Error(), "bridge login "+testUser) {
		t.Errorf("error %q does not say what to run", err)
	}
	if store.entry(t).RefreshToken != e.rt {
		t.Error("marking needs-login replaced the stored refresh token")
	}
	if st := src.State(); st.NeedsLogin != reason {
		t.Errorf("State().NeedsLogin = %q, want %q", st.NeedsLogin, reason)
	}
	e.noSecrets(t, "error", err.Error())

	// Fails fast, without asking the platform, even after a Reload,
	// since the store says so too.
	reqs := e.srv.RefreshRequests()
	for range 2 {
		if _, err := src.Token(context.Background()); !errors.Is(err, tokens.ErrNeedsLogin) {
			t.Fatalf("second call: err = %v", err)
		}
		src.Reload()
	}
	if n := e.srv.RefreshRequests() - reqs; n != 0 {
		t.Errorf("%d refresh requests for an account that needs sign-in", n)
	}

	// `bridge login` in another process writes a new entry; Reload sees it.
	_, rt, _ := e.srv.Issue(testUser)
	if err := store.Put(testUser, tokens.Entry{RefreshToken: rt, Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	src.Reload()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("after a new sign-in and Reload: %v", err)
	}
	if st := src.State(); st.NeedsLogin != "" {
		t.Errorf("still needs login: %q", st.NeedsLogin)
	}
}

func TestInvalidGrantTriesNewerStoredToken(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The token the source holds gets revoked, while another process
	// signs in again and stores a new one, without telling the source.
	e.srv.RevokeRefresh(store.entry(t).RefreshToken)
	_, fresh, _ := e.srv.Issue(testUser)
	if err := store.Put(testUser, tokens.Entry{RefreshToken: fresh, Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	reqs := e.srv.RefreshRequests()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("the newer stored token was not tried: %v", err)
	}
	if n := e.srv.RefreshRequests() - reqs; n != 2 {
		t.Errorf("%d refresh requests, want 2 (the revoked token, then the stored one)", n)
	}
	if en := store.entry(t); en.NeedsLogin != "" || en.RefreshToken != e.srv.LatestRefresh(testUser) {
		t.Errorf("store after recovery: needs_login=%q newest=%v", en.NeedsLogin, en.RefreshToken == e.srv.LatestRefresh(testUser))
	}
}

func TestMissingEntryNeedsLogin(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	if err := store.Delete(testUser); err != nil {
		t.Fatal(err)
	}
	src := e.source(store)
	if st := src.State(); st.HasRefreshToken || st.NeedsLogin == "" {
		t.Errorf("State for an account with nothing stored = %+v", st)
	}
	_, err := src.Token(context.Background())
	if !errors.Is(err, tokens.ErrNeedsLogin) || !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("err = %v, want ErrNeedsLogin wrapping ErrNotFound", err)
	}
	if n := e.srv.RefreshRequests(); n != 0 {
		t.Errorf("%d refresh requests with no refresh token", n)
	}
}

func TestSeedServesWithoutRefresh(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	at, rt, exp := e.srv.Issue(testUser)
	src.Seed(tokensFrom(at, rt, exp))
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != at || e.srv.RefreshRequests() != 0 {
		t.Errorf("Seed's access token not used (refreshes: %d)", e.srv.RefreshRequests())
	}
}

func TestWaitingCallerHonoursContext(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	e.srv.FailNext(1, tokenstest.Slow(2*time.Second))
	src := e.source(store)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := src.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("caller waited %v past its deadline", d)
	}
	// The shared refresh goes on and serves the next caller.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, err := src.Token(ctx2); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.RefreshRequests(); n != 1 {
		t.Errorf("%d refresh requests, want the one that was in flight", n)
	}
}

func tokensFrom(access, refresh string, expiry time.Time) *oauth2.Token {
	return &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", Expiry: expiry}
}
