// Package doctor walks the checklist a person would otherwise walk by hand
// when mail through the bridge fails: the config, the stored sign-in, a
// token refresh and what the access token grants, the network path (through
// the proxy, when one is set) and TLS to each Microsoft server, a real
// XOAUTH2 login per protocol (plus one mailbox command for IMAP) and the
// local listeners. Every step runs for real and passes or fails with what
// was seen; a failure carries the diagnosis table's fix (package diag). A
// failed step does not hide the others: whatever can still run, runs.
// `bridge doctor` renders the Report as text or JSON.
package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

// DefaultTimeout bounds each network probe (one protocol's whole
// conversation, the token refresh, a listener check).
const DefaultTimeout = 15 * time.Second

// Options configure Run. Config (or ConfigErr) is required; every other
// zero value has the default noted beside it.
type Options struct {
	// Config is the loaded, validated config; nil when loading failed.
	Config *config.Config
	// ConfigPath names the config file in the report when Config is nil.
	ConfigPath string
	// ConfigErr is why the config could not be loaded; the report then
	// holds only the failed config step.
	ConfigErr error
	// Store holds the refresh tokens and local passwords; nil opens the
	// store the config names.
	Store tokens.Store
	// Account limits the run to one account (any case); empty checks all.
	Account string
	// Roots verify the upstream servers; nil loads the system roots plus
	// tls.upstream_ca_file (tlsutil.UpstreamRoots), as the bridge does.
	Roots *x509.CertPool
	// HTTPClient talks to the token endpoint; nil uses one with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
	// Served lists the addresses a running bridge for this config has
	// bound, by config key ("listen.imap"), loopback twins included, as
	// its control socket reports them; nil when none runs.
	Served map[string][]string
	// Live is the status of that running bridge; nil when none runs. The
	// local password step warns of the wrong local passwords it refused
	// lately.
	Live *bridge.Status
	// Token, when set, takes an account's access token from that running
	// bridge (its control socket), which refreshes with its own token
	// source: a second refresh of the same refresh token here could, where
	// the platform rotates strictly, leave the bridge with one that no
	// longer works. An error wrapping ErrRefreshHere makes the step
	// refresh here after all; nil always refreshes here, with the refresh
	// token in the store.
	Token func(ctx context.Context, email string) (*oauth2.Token, error)
}

// ErrRefreshHere, from Options.Token, says that no running bridge holds
// the account's tokens after all (it stopped, or does not know the
// account), so doctor refreshes with the store's refresh token itself.
var ErrRefreshHere = errors.New("doctor: no running bridge refreshes this account")

// Run performs every check and returns the report. It never returns
// early: a failed step marks the steps that need it as skipped and the
// rest still run. Probes of one account's three protocols run side by
// side; each is bounded by o.Timeout, and ctx ends them all.
func Run(ctx context.Context, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	r := &Report{FormatVersion: FormatVersion, Config: o.ConfigPath, Checks: []Step{}, Accounts: []AccountReport{}}
	if o.Config != nil && o.Config.Path != "" {
		r.Config = o.Config.Path
	}
	var accts []*bridge.Account
	cfgStep := timed("config", "Config file", func() Step {
		if o.ConfigErr != nil {
			return configFailed(o.ConfigErr)
		}
		if o.Config == nil {
			return configFailed(fmt.Errorf("doctor: no config given"))
		}
		var err error
		if accts, err = bridge.ResolveAccounts(o.Config); err != nil {
			return configFailed(err)
		}
		return pass("valid; %s", plural(len(accts), "account"))
	})
	r.Checks = append(r.Checks, cfgStep)
	if cfgStep.Status == Fail {
		return r
	}
	cfg := o.Config
	if o.Roots == nil && cfg.TLS.UpstreamCAFile != "" {
		r.Checks = append(r.Checks, timed("upstream-ca", "Upstream CA file", func() Step {
			roots, err := tlsutil.UpstreamRoots(cfg.TLS.UpstreamCAFile)
			if err != nil {
				return fail(keyProblem("tls.upstream_ca_file", err.Error(),
					"Point tls.upstream_ca_file at a readable PEM file holding the CA certificate, or remove the key to trust the system roots alone."),
					"%v", err)
			}
			o.Roots = roots
			return pass("%s adds its certificates to the system roots", cfg.TLS.UpstreamCAFile)
		}))
	} else if o.Roots == nil {
		// nil verifies with the system roots, which is what a
		// failed load would leave anyway.
		o.Roots, _ = tlsutil.UpstreamRoots("")
	}
	storeStep := timed("store", "Token store", func() Step { return checkStore(cfg, &o) })
	r.Checks = append(r.Checks, storeStep)
	r.Checks = append(r.Checks, checkListeners(ctx, cfg, o)...)

	selected := accts
	if o.Account != "" {
		selected = nil
		for _, a := range accts {
			if strings.EqualFold(a.Email, o.Account) {
				selected = append(selected, a)
			}
		}
		if len(selected) == 0 {
			r.Accounts = append(r.Accounts, AccountReport{Email: strings.ToLower(o.Account), Steps: []Step{
				timed("account", "Account in the config", func() Step {
					return fail(accountMissing(o.Account, cfg.Path), "%s is not in %s", o.Account, cfg.Path)
				}),
			}})
			return r
		}
	} else if len(accts) == 0 {
		r.Checks = append(r.Checks, timed("accounts", "Accounts", func() Step {
			return fail(accountMissing("", cfg.Path), "the config has no accounts")
		}))
	}
	for _, a := range selected {
		r.Accounts = append(r.Accounts, checkAccount(ctx, o, accts, a))
	}
	return r
}

// timed runs f and completes the step it returns: name, title, OK and how
// long it took.
func timed(name, title string, f func() Step) Step {
	start := time.Now()
	s := f()
	s.Name, s.Title = name, title
	s.OK = s.Status == Pass || s.Status == Warn
	s.DurationMS = time.Since(start).Milliseconds()
	return s
}

func pass(format string, a ...any) Step {
	return Step{Status: Pass, Detail: fmt.Sprintf(format, a...)}
}

func warn(d *Diagnosis, format string, a ...any) Step {
	return Step{Status: Warn, Detail: fmt.Sprintf(format, a...), Diagnosis: d}
}

func fail(d *Diagnosis, format string, a ...any) Step {
	return Step{Status: Fail, Detail: fmt.Sprintf(format, a...), Diagnosis: d}
}

// skip marks a step that could not run; why names the failed step.
func skip(name, title, why string) Step {
	return Step{Name: name, Title: title, Status: Skipped, Detail: "not run: " + why}
}

func configFailed(err error) Step {
	return fail(&Diagnosis{
		ID:    "config-invalid",
		Kind:  "app",
		Title: "The config file has errors",
		Cause: err.Error(),
		Fix:   "Correct the keys named above (each with its line), then run `bridge check-config`.",
	}, "%v", err)
}

// keyProblem explains a config setting that is well-formed but does not
// work.
func keyProblem(key, cause, fix string) *Diagnosis {
	return &Diagnosis{ID: "config-setting", Kind: "app", Title: "The setting " + key + " does not work", Cause: cause, Fix: fix}
}

func accountMissing(email, path string) *Diagnosis {
	name := email
	if name == "" {
		name = "EMAIL"
	}
	return &Diagnosis{
		ID:    "account-not-configured",
		Kind:  "user",
		Title: "No such account in the config",
		Cause: "The bridge only serves the accounts listed as [[account]] blocks in " + path + ".",
		Fix:   "Run `bridge login " + name + "` to sign the account in and add it, or check the spelling.",
	}
}
