package doctor

import (
	"errors"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

// checkStore opens the configured token store unless one was given, and
// asks the keyring whether it answers at all.
func checkStore(cfg *config.Config, o *Options) Step {
	if o.Store == nil {
		st, err := tokens.OpenStore(cfg.Store.Backend, cfg.Store.Path)
		if err != nil {
			return fail(keyProblem("store", err.Error(),
				"Set [store] backend to \"keyring\" or \"file\", and for \"file\" a path in a directory you can write."), "%v", err)
		}
		o.Store = st
	}
	if p, ok := o.Store.(interface{ Ping() error }); ok {
		if err := p.Ping(); err != nil {
			d := &Diagnosis{
				ID:    "keyring-unavailable",
				Kind:  "user",
				Title: "The OS keyring does not answer",
				Cause: err.Error(),
				Fix: "Start or unlock the desktop keyring (on Linux a Secret Service such as GNOME Keyring or KWallet in this session), " +
					"or keep tokens in a file: set backend = \"file\" in the [store] section and run `bridge login EMAIL` again.",
			}
			if !errors.Is(err, tokens.ErrKeyringUnavailable) {
				d.ID, d.Title = "store-error", "The token store cannot be used"
				d.Fix = "Check the [store] settings and that the store's file or keyring can be read and written by this user."
			}
			return fail(d, "the %s store cannot be used: %v", o.Store.Name(), err)
		}
	}
	if c, ok := o.Store.(interface{ Check() error }); ok {
		if err := c.Check(); err != nil {
			d := &Diagnosis{ID: "store-error", Kind: "user", Title: "The token file cannot be read or written", Cause: err.Error(),
				Fix: "Check that the token file and its directory belong to this user and that the disk has room."}
			if errors.Is(err, tokens.ErrStorePassphrase) {
				d.ID, d.Title = "store-passphrase", "The token file is encrypted and its passphrase is missing or wrong"
				d.Fix = "Set " + tokens.PassphraseEnv + " to the passphrase the file was written with, or " +
					tokens.PassphraseFileEnv + " to a file holding it (what `bridge service install` sets up)."
			}
			return fail(d, "the %s store cannot be used: %v", o.Store.Name(), err)
		}
	}
	if w, ok := o.Store.(interface{ Warning() string }); ok {
		if msg := w.Warning(); msg != "" {
			return warn(nil, "%s", msg)
		}
	}
	return pass("the %s store answers", o.Store.Name())
}
