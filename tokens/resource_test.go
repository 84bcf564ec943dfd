package tokens_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

var graphScopes = []string{tokenstest.GraphResource + "/Mail.Send", "offline_access"}

// Callers of a Resource share one refresh, get a token for the resource's
// audience, and the Source's own token stays the Outlook one.
func TestResourceTokensShareOneRefresh(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	e.srv.GrantConsent(testUser, graphScopes[0])
	src := e.source(store)
	graph := src.Resource("graph token", graphScopes)

	e.srv.FailNext(1, tokenstest.Slow(200*time.Millisecond))
	reqs := e.srv.RefreshRequests()
	const callers = 20
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			tok, err := graph.Token(context.Background())
			errs[i] = err
			if err == nil {
				got[i] = tok.AccessToken
			}
		})
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %v (same token: %v)", i, errs[i], got[i] == got[0])
		}
	}
	if n := e.srv.RefreshRequests() - reqs; n != 1 {
		t.Errorf("%d callers made %d refresh requests, want 1", callers, n)
	}
	info, err := e.srv.Check(got[0])
	if err != nil || info.Audience != tokenstest.GraphResource {
		t.Fatalf("Graph token: %+v, %v", info, err)
	}
	if tok, err := graph.Token(context.Background()); err != nil || tok.AccessToken != got[0] {
		t.Errorf("second call did not use the cached token: %v", err)
	}
	if !graph.Fresh(got[0], e.clock.Now().Add(-time.Minute)) {
		t.Error("the token just fetched is not Fresh")
	}
	out, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := e.srv.Check(out.AccessToken); info.Audience != "https://outlook.office.com" {
		t.Errorf("the Source's own token is for %q", info.Audience)
	}
	graph.Invalidate(got[0])
	if tok, err := graph.Token(context.Background()); err != nil || tok.AccessToken == got[0] {
		t.Errorf("after Invalidate: %v, same token %v", err, err == nil && tok.AccessToken == got[0])
	}
	e.noSecrets(t, "log", e.logs.String(), got[0], out.AccessToken)
}

// With strict rotation (each refresh token good once) the Source and a
// Resource take turns with one refresh token: each starts from the one
// the other saved, including when both refresh at the same moment.
func TestResourceAndSourceShareRotation(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, store)
	e.srv.GrantConsent(testUser, graphScopes[0])
	src := e.source(store)
	graph := src.Resource("graph token", graphScopes)
	ctx := context.Background()

	for round := range 3 {
		if _, err := src.Token(ctx); err != nil {
			t.Fatalf("round %d: outlook: %v", round, err)
		}
		if _, err := graph.Token(ctx); err != nil {
			t.Fatalf("round %d: graph: %v", round, err)
		}
		e.clock.Advance(2 * time.Hour)
	}
	var wg sync.WaitGroup
	var errs [2]error
	wg.Go(func() { _, errs[0] = src.Token(ctx) })
	wg.Go(func() { _, errs[1] = graph.Token(ctx) })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("at the same moment: outlook %v, graph %v", errs[0], errs[1])
	}
	if st := src.State(); st.NeedsLogin != "" {
		t.Fatalf("needs login: %s", st.NeedsLogin)
	}
	if store.entry(t).RefreshToken != e.srv.LatestRefresh(testUser) {
		t.Error("the store does not hold the newest refresh token")
	}
}

// A refusal of the resource's scopes (consent missing) is the Resource's
// error alone: the account does not need a sign-in for its Outlook token.
func TestResourceConsentMissingLeavesSource(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	_, err := src.Resource("graph token", graphScopes).Token(context.Background())
	var te *tokens.Error
	if !errors.As(err, &te) || te.AADSTS != 65001 || te.Op != "graph token" || !te.NeedsLogin() {
		t.Fatalf("want AADSTS65001 for the graph token, got %v", err)
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("the Outlook token after Graph's refusal: %v", err)
	}
	if st := src.State(); st.NeedsLogin != "" {
		t.Errorf("the account was marked: %s", st.NeedsLogin)
	}
	e.noSecrets(t, "error", err.Error())
}
