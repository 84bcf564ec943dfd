package integration

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/doctor"
)

// runDoctor runs `bridge --config FILE doctor EMAIL --json` and decodes
// its report, checking that no secret reached the output.
func runDoctor(t *testing.T, bin string, files *bridgeFiles) (*doctor.Report, int) {
	t.Helper()
	r := runTool(t, filepath.Dir(files.config), nil, nil, bin, "--config", files.config, "doctor", testUser, "--json")
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(r.err, &ee) {
		code = ee.ExitCode()
	} else if r.err != nil {
		t.Fatalf("bridge doctor: %v\n%s", r.err, tail(r.stderr, 2000))
	}
	out := string(r.stdout) + string(r.stderr)
	// Every JWT starts with the base64url of `{"`.
	if strings.Contains(out, "eyJ") || strings.Contains(out, files.password) {
		t.Fatal("bridge doctor printed an access token or the local password")
	}
	var rep doctor.Report
	if err := json.Unmarshal(r.stdout, &rep); err != nil || len(rep.Accounts) != 1 {
		t.Fatalf("bridge doctor printed no report for one account (exit %d): %v\n%s\n%s", code, err, tail(r.stdout, 4000), tail(r.stderr, 2000))
	}
	return &rep, code
}

// doctorStep finds the account step named name.
func doctorStep(t *testing.T, rep *doctor.Report, name string) doctor.Step {
	t.Helper()
	for _, s := range rep.Accounts[0].Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in the report", name)
	return doctor.Step{}
}

// TestDoctorDovecot runs the built `bridge doctor` against Dovecot, whose
// oauth2 passdb checks the identity platform's JWT-shaped access tokens
// (1.6-2.3 KB, see tokenstest) by introspection. Every step passes: the
// SMTP login sends AUTH XOAUTH2 alone and the token after the 334, where
// a token on the AUTH line would get Dovecot's "500 5.5.2 Line too long"
// (TestDovecotUpstream pins that). Then the platform refuses the user's
// tokens at introspection, and each login is reported as a refusal with
// a diagnosis and Dovecot's words: its error challenge was answered with
// an empty line, so its final reply came back.
func TestDoctorDovecot(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, tokensOptions())
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)

	rep, code := runDoctor(t, bin, files)
	if code != 0 || !rep.OK() {
		for _, s := range append(rep.Checks, rep.Accounts[0].Steps...) {
			if !s.OK {
				t.Errorf("step %s: %s %q %+v", s.Name, s.Status, s.Detail, s.Diagnosis)
			}
		}
		t.Fatalf("bridge doctor exited %d against Dovecot, want 0", code)
	}
	for _, name := range []string{"refresh", "access-token", "imap-login", "imap-mailbox", "pop3-login", "smtp-login"} {
		if s := doctorStep(t, rep, name); s.Status != doctor.Pass {
			t.Errorf("step %s: %s %q", name, s.Status, s.Detail)
		}
	}
	if s := doctorStep(t, rep, "imap-mailbox"); !strings.Contains(s.Detail, itoa(len(up.seed))+" messages") {
		t.Errorf("imap-mailbox does not count the %d seeded messages: %q", len(up.seed), s.Detail)
	}

	up.idp.RefuseMail(testUser)
	rep, code = runDoctor(t, bin, files)
	if code != 1 {
		t.Errorf("bridge doctor exited %d with the tokens refused, want 1", code)
	}
	for _, name := range []string{"refresh", "imap-tls", "pop3-tls", "smtp-tls"} {
		if s := doctorStep(t, rep, name); s.Status != doctor.Pass {
			t.Errorf("step %s: %s %q, want pass", name, s.Status, s.Detail)
		}
	}
	for _, want := range []struct{ step, reply, id string }{
		{"imap-login", "[AUTHENTICATIONFAILED] Authentication failed.", "imap-auth-failed"},
		{"pop3-login", "-ERR [AUTH] Authentication failed.", "pop-auth-failed"},
		{"smtp-login", "535 5.7.8 Authentication failed.", "smtp-auth-failed"},
	} {
		s := doctorStep(t, rep, want.step)
		if s.Status != doctor.Fail || s.Diagnosis == nil || s.Diagnosis.ID != want.id || s.Diagnosis.Fix == "" {
			t.Errorf("step %s: %s %+v, want a failure diagnosed %s", want.step, s.Status, s.Diagnosis, want.id)
		}
		if s.Detail != "the server answered "+want.reply {
			t.Errorf("step %s: detail %q, want Dovecot's refusal %q", want.step, s.Detail, want.reply)
		}
	}
	if s := doctorStep(t, rep, "imap-mailbox"); s.Status != doctor.Skipped {
		t.Errorf("imap-mailbox: %s, want skipped after the refused login", s.Status)
	}
}
