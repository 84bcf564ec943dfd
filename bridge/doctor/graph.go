package doctor

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// graph checks the Microsoft Graph path of an account that sends through
// it (smtp_via "graph" or "auto"): a Graph token from the stored sign-in,
// which shows the consent to Mail.Send, and GET /me with it. No mail is
// sent. The Graph token is always fetched here, with the store's refresh
// token (a rotated one is saved): the running bridge hands out only its
// Outlook token.
func (tc *tokenCheck) graph(ctx context.Context, stored Step) []Step {
	const (
		tokName  = "graph-token"
		tokTitle = "Microsoft Graph token (Mail.Send)"
		meName   = "graph-me"
		meTitle  = "Microsoft Graph (GET /me)"
	)
	if tc.o.Store == nil || stored.Status == Fail {
		return []Step{skip(tokName, tokTitle, "no usable sign-in is stored (see above)"), skip(meName, meTitle, "no Graph token")}
	}
	ctx, cancel := context.WithTimeout(ctx, tc.o.Timeout)
	defer cancel()
	src := tokens.NewSource(tokens.SourceOptions{
		Account:      tc.a.TokenAccount(),
		Provider:     tc.owner.Provider,
		ClientID:     tc.owner.ClientID,
		ClientSecret: tc.owner.ClientSecret,
		Store:        tc.o.Store,
		HTTPClient:   bridge.TokenHTTPClient(tc.o.HTTPClient, tc.owner, bridge.ProxyDial(tc.owner, tc.o.Store)),
		Now:          tc.o.Now,
	})
	scopes := tc.a.GraphScopes()
	tok := timed(tokName, tokTitle, func() Step {
		t, err := src.Resource(string(diag.StageGraphToken), scopes).Token(ctx)
		if err != nil {
			return fail(fromDiag(diag.Classify(err, tc.diagAccount(), tc.o.Now())), "%v", err)
		}
		tc.graphAccess = t.AccessToken
		return pass("%s issued a Microsoft Graph token for %s, valid until %s", tc.owner.Provider.TokenURL,
			strings.Join(scopes[:len(scopes)-1], " "), expiryText(t.Expiry, tc.o.Now()))
	})
	if tc.graphAccess == "" {
		return []Step{tok, skip(meName, meTitle, "no Graph token")}
	}
	me := timed(meName, meTitle, func() Step {
		upn, err := bridge.GraphMe(ctx, bridge.TokenHTTPClient(tc.o.HTTPClient, tc.a, bridge.ProxyDial(tc.a, tc.o.Store)), tc.a, tc.graphAccess)
		if err != nil {
			var f *diag.Failure
			if !errors.As(err, &f) {
				host := tc.a.GraphURL
				if u, perr := url.Parse(tc.a.GraphURL); perr == nil {
					host = u.Host
				}
				f = &diag.Failure{Proto: diag.ProtoGraph, Stage: diag.StageAuth, Text: host, Err: err}
			}
			return fail(fromDiag(diag.Classify(f, tc.diagAccount(), tc.o.Now())), "%s", diag.ReplyText(f.Error(), 300))
		}
		return pass("Graph knows the token as %s; messages go to %s; no mail was sent", upn, tc.a.GraphSendURL())
	})
	return []Step{tok, me}
}
