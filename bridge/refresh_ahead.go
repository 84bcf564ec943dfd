package bridge

import (
	"context"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// refreshAheadEvery is how often the server looks for access tokens to
// renew before a login needs them. Each source bounds its own refreshes
// (tokens.Source.RefreshAhead: with one-hour tokens a busy account
// refreshes every 24 minutes, at most 3 times an hour, never more than
// 12 times an hour whatever the lifetime, and not at all an hour after
// its last login). Tests shorten it.
var refreshAheadEvery = time.Minute

// refreshAhead renews the access tokens of the accounts in use before
// they get too short for a new session, every refreshAheadEvery until ctx
// ends, so that logins find a token with at least half its lifetime left
// and do not wait for the identity platform. It returns when ctx ends,
// cutting short a refresh under way.
func (b *Bridge) refreshAhead(ctx context.Context) {
	t := time.NewTicker(refreshAheadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, src := range b.tokenSources() {
			src.RefreshAhead(ctx)
		}
	}
}

// tokenSources returns every token source, in no particular order.
func (b *Bridge) tokenSources() []*tokens.Source {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*tokens.Source, 0, len(b.sources))
	for _, s := range b.sources {
		out = append(out, s)
	}
	return out
}
