package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBridge builds this command into a temporary directory, with extra
// go build arguments.
func buildBridge(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	out, err := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestCommandSpecsAskEveryCommand checks what commandSpecs relies on:
// every command answers -h with its usage and flag set, so the scripts
// and the man page know its flags and asking has no effect.
func TestCommandSpecsAskEveryCommand(t *testing.T) {
	for _, c := range commands() {
		var he *helpError
		err := c.run(context.Background(), &env{stdin: strings.NewReader(""), stdout: failWriter{t, c.name}, stderr: failWriter{t, c.name}, getenv: func(string) string { return "" }}, []string{"-h"})
		if !errors.As(err, &he) || he.fs == nil {
			t.Errorf("bridge %s -h: %v, want its usage", c.name, err)
		}
	}
	specs := commandSpecs()
	byName := map[string]cmdSpec{}
	for _, s := range specs {
		byName[s.name] = s
	}
	if s := byName["login"]; !s.email || !hasFlag(s, "device", "") || !hasFlag(s, "client-id", "string") {
		t.Errorf("login spec %+v", s)
	}
	if s := byName["service"]; strings.Join(s.words, " ") != "install uninstall status" || s.email {
		t.Errorf("service spec %+v", s)
	}
	if s := byName["doctor"]; !s.email {
		t.Errorf("doctor spec %+v: [EMAIL] not seen", s)
	}
	if s := byName["serve"]; s.email || len(s.words) != 0 || !hasFlag(s, "grace", "duration") {
		t.Errorf("serve spec %+v", s)
	}
}

type failWriter struct {
	t    *testing.T
	name string
}

func (w failWriter) Write(p []byte) (int, error) {
	w.t.Errorf("bridge %s -h wrote %q itself; run prints the usage", w.name, p)
	return len(p), nil
}

func hasFlag(s cmdSpec, name, arg string) bool {
	for _, f := range s.flags {
		if f.name == name && f.arg == arg {
			return true
		}
	}
	return false
}

// TestBashCompletion loads `bridge completion bash` into bash and
// completes command lines as <TAB> would: COMP_WORDS and COMP_CWORD set,
// the function called, COMPREPLY read. Account addresses come from the
// built program reading the config named on the command line.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	bin := buildBridge(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "bridge.bash")
	out, _, code := runCmd(t, context.Background(), "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d", code)
	}
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "[[account]]\nemail = \"Me@Example.com\"\nclient_id = \"x\"\n\n[[account]]\nemail = \"shared@example.com\"\ntoken_from = \"me@example.com\"\n")
	complete := func(words ...string) string {
		t.Helper()
		// The last word is the one being completed.
		c := exec.Command(bash, "--norc", "--noprofile", "-c",
			`source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bridge; printf '%s\n' "${COMPREPLY[*]}"`,
			"bash", script, bin)
		c.Args = append(c.Args, words...)
		c.Env = append(os.Environ(), "BRIDGE_CONFIG=/nonexistent/config.toml")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"lo"}, "login logout"},
		{[]string{"--config", cfg, "login", ""}, "me@example.com shared@example.com"},
		{[]string{"--config=" + cfg, "password", "sh"}, "shared@example.com"},
		{[]string{"--config", cfg, "doctor", "--json", "m"}, "me@example.com"},
		{[]string{"--config", cfg, "login", "me@example.com", ""}, ""},
		{[]string{"--config", cfg, "login", "--tenant", ""}, ""},
		{[]string{"login", "--dev"}, "--device"},
		{[]string{"service", "un"}, "uninstall"},
		{[]string{"completion", ""}, "bash zsh fish"},
		{[]string{"--con"}, "--config"},
		{[]string{"demo", "-"}, "--imap --pop3 --smtp -v --help"},
		// No config: no addresses, and no error on the terminal.
		{[]string{"logout", ""}, ""},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("bridge %s<TAB>: %q, want %q", strings.Join(tc.words, " "), got, tc.want)
		}
	}
}

// TestCompletionScriptsParse checks the zsh and fish scripts with the
// shells' own syntax check, where they are installed.
func TestCompletionScriptsParse(t *testing.T) {
	for _, sh := range []struct{ shell, flag string }{{"bash", "-n"}, {"zsh", "-n"}, {"fish", "--no-execute"}} {
		t.Run(sh.shell, func(t *testing.T) {
			p, err := exec.LookPath(sh.shell)
			if err != nil {
				t.Skipf("%s is not installed", sh.shell)
			}
			out, _, code := runCmd(t, context.Background(), "completion", sh.shell)
			if code != 0 || out == "" {
				t.Fatalf("completion %s: exit %d", sh.shell, code)
			}
			f := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(p, sh.flag, f).CombinedOutput(); err != nil || len(b) != 0 {
				t.Fatalf("%s %s: %v\n%s", sh.shell, sh.flag, err, b)
			}
		})
	}
}

func TestCompletionAccountsWithoutConfig(t *testing.T) {
	out, stderr, code := runCmd(t, context.Background(), "--config", filepath.Join(t.TempDir(), "none.toml"), "completion", "--accounts")
	if code != 0 || out != "" || stderr != "" {
		t.Fatalf("code %d, out %q, stderr %q", code, out, stderr)
	}
	_, stderr, code = runCmd(t, context.Background(), "completion", "tcsh")
	if code != 2 || !strings.Contains(stderr, "bash, zsh or fish") {
		t.Fatalf("completion tcsh: code %d, stderr %q", code, stderr)
	}
}

// TestFishCompletion completes with fish's own engine (complete -C), where
// fish is installed.
func TestFishCompletion(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed")
	}
	bin := buildBridge(t)
	out, _, _ := runCmd(t, context.Background(), "completion", "fish")
	script := filepath.Join(t.TempDir(), "bridge.fish")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "[[account]]\nemail = \"me@example.com\"\nclient_id = \"x\"\n")
	for line, want := range map[string]string{
		"bridge lo":                             "login logout",
		"bridge --config " + cfg + " password ": "me@example.com",
		"bridge service un":                     "uninstall",
		"bridge login --dev":                    "--device",
	} {
		c := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2] | string replace -r '\t.*' '' | string join ' '; true`, script, line)
		c.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		b, err := c.CombinedOutput()
		if got := strings.TrimSpace(string(b)); err != nil || got != want {
			t.Errorf("fish: %s<TAB>: %q (%v), want %q", line, got, err, want)
		}
	}
}

// TestZshCompletion runs the zsh function with zsh's completion builtins
// (_describe, compadd, _files, _message) replaced by ones that print what
// they were given, where zsh is installed: it checks which candidates the
// script offers; zsh itself filters them by the typed prefix.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed")
	}
	bin := buildBridge(t)
	out, _, _ := runCmd(t, context.Background(), "completion", "zsh")
	script := filepath.Join(t.TempDir(), "_bridge")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "[[account]]\nemail = \"me@example.com\"\nclient_id = \"x\"\n")
	const harness = `compdef() { :; }
_describe() { local a; for a in ${(P)${@[-1]}}; do print -rn -- "${a%%:*} "; done; print }
compadd() { print -r -- ${(P)2} }
_files() { print "<files>" }
_message() { print "<value>" }
source $1; shift
words=("$@"); CURRENT=$#; _bridge; true`
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"bridge", "--config", cfg, "doctor", ""}, "me@example.com"},
		{[]string{"bridge", "--config", cfg, "doctor", "me@example.com", ""}, ""},
		{[]string{"bridge", "service", ""}, "install uninstall status"},
		{[]string{"bridge", "--config", ""}, "<files>"},
		{[]string{"bridge", "login", "--tenant", ""}, "<value>"},
		{[]string{"bridge", "password", "-"}, "--reset --help"},
		{[]string{"bridge", "s"}, commandNames()},
	} {
		c := exec.Command(zsh, append([]string{"-f", "-c", harness, "zsh", script}, tc.words...)...)
		c.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		b, err := c.CombinedOutput()
		if got := strings.TrimSpace(string(b)); err != nil || got != tc.want {
			t.Errorf("zsh: %s<TAB>: %q (%v), want %q", strings.Join(tc.words, " "), got, err, tc.want)
		}
	}
}

// commandNames is every command, in the order of `bridge help`.
func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, " ")
}
