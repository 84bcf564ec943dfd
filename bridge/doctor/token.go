package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// tokenCheck walks the sign-in steps of one account and keeps what the
// protocol probes need (the access token) and what must never be shown.
type tokenCheck struct {
	o        Options
	a, owner *bridge.Account

	refresh, password, access string
	graphAccess               string // the Graph token, for accounts that send through Graph
	expiry                    time.Time
}

func (tc *tokenCheck) secrets() []string {
	return []string{tc.access, tc.refresh, tc.password, tc.graphAccess}
}

func (tc *tokenCheck) steps(ctx context.Context, protos []bridge.Proto) []Step {
	stored := timed("stored-token", "Sign-in stored", tc.stored)
	pw := timed("local-password", "Local password", tc.localPassword)
	var refresh Step
	switch {
	case tc.o.Store == nil:
		refresh = skip("refresh", "Token refresh", "the token store cannot be used")
	case stored.Status == Fail:
		// The bridge would not try either: only a new sign-in helps.
		refresh = skip("refresh", "Token refresh", "no usable sign-in is stored (see above)")
	default:
		refresh = timed("refresh", "Token refresh", func() Step { return tc.refreshToken(ctx) })
	}
	var claims Step
	if tc.access == "" {
		claims = skip("access-token", "Access token", "no access token (see the refresh step)")
	} else {
		claims = timed("access-token", "Access token", func() Step {
			return checkClaims(tc.access, tc.a, protos, tc.o.Now())
		})
	}
	steps := []Step{stored, pw, refresh, claims}
	if tc.a.UsesGraph() {
		steps = append(steps, tc.graph(ctx, stored)...)
	}
	return steps
}

// diagAccount is the account as the fix texts need it.
func (tc *tokenCheck) diagAccount() diag.Account { return tc.a.Diag() }

func (tc *tokenCheck) stored() Step {
	st := tc.o.Store
	if st == nil {
		return fail(&Diagnosis{ID: "store-error", Kind: "user", Title: "The token store cannot be used",
			Cause: "The store step above failed.", Fix: "Fix the token store first (see its step)."},
			"the token store cannot be used")
	}
	who := tc.a.TokenAccount()
	e, err := st.Get(who)
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		return fail(tc.notSignedIn(who, st.Name()), "no sign-in for %s in the %s store", who, st.Name())
	case err != nil:
		return fail(fromDiag(diag.Classify(err, tc.diagAccount(), tc.o.Now())), "reading the %s store: %v", st.Name(), err)
	}
	if tc.a.App {
		return tc.storedApp(e)
	}
	tc.refresh = e.RefreshToken
	switch {
	case e.NeedsLogin != "":
		return fail(tc.needsLogin(e.NeedsLogin), "the store marks %s as needing a new sign-in: %s", who, e.NeedsLogin)
	case e.RefreshToken == "":
		return fail(tc.needsLogin("no refresh token is stored"), "no refresh token for %s in the %s store", who, st.Name())
	}
	when := "at an unknown time"
	if !e.Updated.IsZero() {
		when = e.Updated.Local().Format(time.DateTime)
	}
	if who != tc.a.Email {
		return pass("a refresh token of %s (whose sign-in this account uses) is in the %s store, saved %s", who, st.Name(), when)
	}
	return pass("a refresh token is in the %s store, saved %s", st.Name(), when)
}

// needsLogin is the diagnosis of a sign-in that only `bridge login`
// replaces; reason often names the AADSTS number that caused it.
func (tc *tokenCheck) needsLogin(reason string) *Diagnosis {
	return fromDiag(diag.Classify(fmt.Errorf("%w: %s", tokens.ErrNeedsLogin, reason), tc.diagAccount(), tc.o.Now()))
}

// notSignedIn explains an account the store knows nothing of. The table's
// needs-login entry gives the ID and the fix; its cause speaks of a
// refusal, which this is not.
func (tc *tokenCheck) notSignedIn(who, store string) *Diagnosis {
	if tc.a.App {
		e, _ := diag.Lookup("app-credential-missing")
		d := fromDiag(e.For(tc.diagAccount()))
		d.Cause = "No app secret or certificate for " + who + " is in the " + store + " store: `bridge login " + who +
			" --app` has not run for it, ran with another config or store, or `bridge logout` removed it."
		return d
	}
	e, _ := diag.Lookup("token-needs-login")
	d := fromDiag(e.For(tc.diagAccount()))
	d.Title = "The account has not signed in"
	d.Cause = "No refresh token for " + who + " is in the " + store + " store: `bridge login` has not run for it, " +
		"ran with another config or store, or `bridge logout` removed it."
	return d
}

func (tc *tokenCheck) localPassword() Step {
	st := tc.o.Store
	if st == nil {
		return fail(nil, "the token store cannot be used")
	}
	e, err := st.Get(tc.a.Email)
	if err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return fail(fromDiag(diag.Classify(err, tc.diagAccount(), tc.o.Now())), "reading the %s store: %v", st.Name(), err)
	}
	if e.Password == "" {
		return fail(&Diagnosis{
			ID:    "no-local-password",
			Kind:  "user",
			Title: "The account has no local password",
			Cause: "Mail clients log in to the bridge with a local password, and none is stored for " + tc.a.Email + ".",
			Fix:   "Run `bridge password " + tc.a.Email + "` and put the password it prints in the mail client.",
		}, "no local password for %s", tc.a.Email)
	}
	tc.password = e.Password
	if r := tc.refused(); r != nil {
		return warn(&Diagnosis{
			ID:    "local-password-wrong",
			Kind:  "user",
			Title: "A mail client gives a wrong local password",
			Cause: "The running bridge refused " + r.Text() + ".",
			Fix:   r.Fix(tc.a.Email) + ".",
		}, "set, but the running bridge refused %s", r.Text())
	}
	return pass("set (print it with `bridge password %s`)", tc.a.Email)
}

// refused returns the account's recent wrong local passwords as the
// running bridge reports them; nil when there are none or no bridge runs.
func (tc *tokenCheck) refused() *bridge.RefusedLogins {
	if tc.o.Live == nil {
		return nil
	}
	for _, as := range tc.o.Live.Accounts {
		if strings.EqualFold(as.Email, tc.a.Email) {
			return as.Refused
		}
	}
	return nil
}

// refreshToken asks the identity platform for a new access token with the
// stored refresh token, as the bridge does before every upstream login.
// A rotated refresh token is saved, so running doctor never strands the
// account. Beside a running bridge (Options.Token) the bridge hands out
// its token instead, and nothing is refreshed here.
func (tc *tokenCheck) refreshToken(ctx context.Context) Step {
	ctx, cancel := context.WithTimeout(ctx, tc.o.Timeout)
	defer cancel()
	if tc.o.Token != nil {
		tok, err := tc.o.Token(ctx, tc.a.Email)
		switch {
		case err == nil:
			tc.access, tc.expiry = tok.AccessToken, tok.Expiry
			return pass("the running bridge handed out its access token, valid until %s (it refreshes on its own, so doctor does not)",
				expiryText(tok.Expiry, tc.o.Now()))
		case !errors.Is(err, ErrRefreshHere):
			return fail(fromDiag(diag.Classify(err, tc.diagAccount(), tc.o.Now())), "the running bridge: %v", err)
		}
	}
	so := tc.owner.SourceOptions()
	so.Store, so.HTTPClient, so.Now = tc.o.Store, bridge.TokenHTTPClient(tc.o.HTTPClient, tc.owner, bridge.ProxyDial(tc.owner, tc.o.Store)), tc.o.Now
	src := tokens.NewSource(so)
	tok, err := src.Token(ctx)
	if err != nil {
		return fail(fromDiag(diag.Classify(err, tc.diagAccount(), tc.o.Now())), "%v", err)
	}
	tc.access, tc.expiry = tok.AccessToken, tok.Expiry
	return pass("%s issued a new access token, valid until %s", tc.owner.Provider.TokenURL, expiryText(tok.Expiry, tc.o.Now()))
}
