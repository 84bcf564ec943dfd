package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// graphConsent makes sure the sign-in acct uses may mint Microsoft Graph
// tokens when acct, or an account that borrows the same sign-in, sends
// through Graph (smtp_via "graph" or "auto"). One token request cannot mix
// Graph's scopes with Outlook's (AADSTS70011), so the sign-in asked for
// Outlook's; the stored refresh token is now asked for a Graph token. When
// the platform answers that nobody consented yet (AADSTS65001), a second
// sign-in (login, with o) asks for Graph's scopes alone, which shows the
// consent prompt once, and the check runs again. o is nil when acct
// borrows another account's sign-in: that account's `bridge login` asks.
func graphConsent(ctx context.Context, e *env, acct *bridge.Account, accts []*bridge.Account, st tokens.Store,
	login func(context.Context, tokens.LoginOptions) (*oauth2.Token, error), o *tokens.LoginOptions) error {
	owner := acct
	var scopes []string
	for _, a := range accts {
		if a.Email == acct.TokenAccount() {
			owner = a
		}
	}
	for _, a := range accts {
		if a.TokenAccount() != owner.Email || !a.UsesGraph() {
			continue
		}
		for _, s := range a.GraphScopes() {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	// offline_access last, as GraphScopes has it.
	scopes = append(slices.DeleteFunc(scopes, func(s string) bool { return s == "offline_access" }), "offline_access")
	check := func() error {
		src := tokens.NewSource(tokens.SourceOptions{Account: owner.Email, Provider: owner.Provider,
			ClientID: owner.ClientID, ClientSecret: owner.ClientSecret, Store: st})
		_, err := src.Resource(string(diag.StageGraphToken), scopes).Token(ctx)
		return err
	}
	err := check()
	if err != nil && o != nil && consentMissing(err) {
		fmt.Fprintf(e.stdout, "\nSending through Microsoft Graph needs the consent to %s once; a second sign-in asks for it.\n", graphNames(scopes))
		o2 := *o
		o2.Provider.Scopes = scopes
		t, lerr := login(ctx, o2)
		if lerr != nil {
			return signInError(acct, lerr)
		}
		if err := checkSignedIn(e.stderr, owner.Email, "", tokens.SignedInAs(t)); err != nil {
			return err
		}
		err = check()
	}
	if err != nil {
		var te *tokens.Error
		if errors.As(err, &te) && !te.Temporary() {
			return &signInFailure{email: owner.Email, d: diag.Classify(err, acct.Diag(), time.Now()), err: err}
		}
		return fmt.Errorf("checking the Microsoft Graph permission of %s: %w", owner.Email, err)
	}
	fmt.Fprintf(e.stdout, "\nMicrosoft Graph: the sign-in of %s may send mail (%s).\n", owner.Email, graphNames(scopes))
	return nil
}

// consentMissing reports whether err is the identity platform's answer
// that nobody consented to the scopes asked for.
func consentMissing(err error) bool {
	var te *tokens.Error
	return errors.As(err, &te) && (te.AADSTS == 65001 || te.Code == "consent_required")
}

// graphNames lists the permission names of Graph scopes.
func graphNames(scopes []string) string {
	var names []string
	for _, s := range scopes {
		if s != "offline_access" {
			names = append(names, strings.TrimPrefix(s, "https://graph.microsoft.com/"))
		}
	}
	return strings.Join(names, ", ")
}
