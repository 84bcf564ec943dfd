package tokens_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// boundedSource is e.source with a RequestTimeout of bound.
func (e *env) boundedSource(store tokens.Store, bound time.Duration) *tokens.Source {
	p := tokens.Microsoft("common")
	p.TokenURL = e.srv.TokenURL("common")
	return tokens.NewSource(tokens.SourceOptions{
		Account:        testUser,
		Provider:       p,
		ClientID:       testClient,
		Store:          store,
		Now:            e.clock.Now,
		RequestTimeout: bound,
		Logger:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// timedToken calls Token with a generous deadline and fails the test when
// the call took longer than max.
func timedToken(t *testing.T, src *tokens.Source, max time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	tok, err := src.Token(ctx)
	if took := time.Since(start); took > max {
		t.Errorf("Token took %v, more than %v", took.Round(time.Millisecond), max)
	}
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// TestTokenPlatformHangs: a token endpoint that does not answer holds a
// caller for one RequestTimeout, not for the whole refresh with its
// retries; the caller gets an *Error naming the token endpoint. The
// refresh goes on, each request bounded, and callers after the platform
// recovers get a token without waiting for the stuck requests.
func TestTokenPlatformHangs(t *testing.T) {
	const bound = time.Second
	const slack = 2 * time.Second // a loaded machine
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.boundedSource(store, bound)
	// The first two requests hang; the third is answered.
	e.srv.FailNext(2, tokenstest.Slow(time.Hour))

	_, err := timedToken(t, src, bound+slack)
	var te *tokens.Error
	var ue *url.Error
	if !errors.As(err, &te) || !te.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token with a hanging platform: %v", err)
	}
	if !errors.As(err, &ue) || ue.URL != e.srv.TokenURL("common") {
		t.Errorf("the error does not name the token endpoint: %v", err)
	}

	// The refresh is still under way, its second request stuck: later
	// callers wait at most one bound each, and get a token once the
	// platform answers.
	deadline := time.Now().Add(6 * bound)
	for {
		tok, err := timedToken(t, src, bound+slack)
		if err == nil {
			if tok == "" {
				t.Fatal("empty access token")
			}
			break
		}
		if !errors.As(err, &te) || !te.Temporary() {
			t.Fatalf("Token while the refresh is stuck: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token %v after the platform recovered: %v", 6*bound, err)
		}
	}
	if n := e.srv.RefreshRequests(); n != 3 {
		t.Errorf("%d refresh requests, want 3 (one refresh, two requests timed out)", n)
	}
	e.noSecrets(t, "the log", e.logs.String())
}

// TestTokenPlatformHangsOldTokenUsable: while the refresh hangs, a caller
// gets the access token in memory when it still has some life left.
func TestTokenPlatformHangsOldTokenUsable(t *testing.T) {
	const bound = 300 * time.Millisecond
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.boundedSource(store, bound)
	first, err := timedToken(t, src, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Within RefreshBefore of its expiry, so Token refreshes, but with
	// more than a minute left.
	e.clock.Advance(55 * time.Minute)
	e.srv.FailNext(3, tokenstest.Slow(time.Hour))
	got, err := timedToken(t, src, bound+2*time.Second)
	if err != nil || got != first {
		t.Fatalf("Token while the refresh hangs: %v (same token: %v)", err, got == first)
	}
	// Let the refresh end (three requests timed out) before the test does.
	for deadline := time.Now().Add(10 * time.Second); src.State().LastError == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stuck refresh never ended")
		}
	}
}
