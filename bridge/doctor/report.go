package doctor

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/mailbridge/bridge/bridge/diag"
)

// FormatVersion is the version of the JSON document. It changes only when
// a field changes meaning or goes away; new fields may appear without it.
const FormatVersion = 1

// Status is the outcome of one step.
type Status string

// The outcomes of a step.
const (
	// Pass: the step did what a working setup does.
	Pass Status = "pass"
	// Warn: the step ran but saw something that may explain a later
	// failure; it does not fail the report.
	Warn Status = "warn"
	// Fail: the step failed; its Diagnosis says how to fix it.
	Fail Status = "fail"
	// Skipped: the step could not run because an earlier one failed.
	Skipped Status = "skipped"
)

// Report is the outcome of a doctor run.
type Report struct {
	// FormatVersion is FormatVersion.
	FormatVersion int `json:"format_version"`
	// Config is the config file checked.
	Config string `json:"config"`
	// Checks are the steps about the whole bridge: the config and the
	// local listeners.
	Checks []Step `json:"checks"`
	// Accounts hold the steps of each account checked, in config order.
	Accounts []AccountReport `json:"accounts"`
}

// AccountReport is the steps run for one account.
type AccountReport struct {
	// Email is the account's login name.
	Email string `json:"email"`
	// Steps are in the order a person would walk them.
	Steps []Step `json:"steps"`
}

// Step is one check.
type Step struct {
	// Name is stable, for scripts: "refresh", "imap-login".
	Name string `json:"name"`
	// Title names the step for people: "IMAP login".
	Title string `json:"title"`
	// OK is true for Pass and Warn.
	OK bool `json:"ok"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Detail says what was seen.
	Detail string `json:"detail"`
	// Diagnosis explains a failure or a warning; nil otherwise.
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// DurationMS is how long the step took, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
}

// Diagnosis is the part of a diag.Diagnosis the report carries: what it
// is, why it likely happened and what fixes it.
type Diagnosis struct {
	// ID is the diagnosis table's stable identifier, or one of doctor's
	// own ("listen-port-taken", "token-user-mismatch",
	// "local-password-wrong").
	ID string `json:"id"`
	// Kind says who acts (diag.Kind).
	Kind string `json:"kind"`
	// Title, Cause and Fix are for people, with the address filled in.
	Title string `json:"title"`
	Cause string `json:"cause"`
	Fix   string `json:"fix"`
	// Raw is what the server or identity platform said, if anything.
	Raw string `json:"raw,omitempty"`
}

func fromDiag(d diag.Diagnosis) *Diagnosis {
	return &Diagnosis{ID: d.ID, Kind: string(d.Kind), Title: d.Title, Cause: d.Cause, Fix: d.Fix, Raw: d.Raw}
}

// OK reports whether no step failed. Warnings and steps skipped because
// of a failure elsewhere do not count; the failure itself does.
func (r *Report) OK() bool {
	return r.Failures() == 0
}

// Failures counts the failed steps.
func (r *Report) Failures() int {
	n := 0
	count := func(steps []Step) {
		for _, s := range steps {
			if s.Status == Fail {
				n++
			}
		}
	}
	count(r.Checks)
	for _, a := range r.Accounts {
		count(a.Steps)
	}
	return n
}

// WriteJSON writes the report as an indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("doctor: writing JSON: %w", err)
	}
	return nil
}
