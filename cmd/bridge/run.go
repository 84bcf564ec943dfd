package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mailbridge/bridge/bridge/config"
)

// env is what a command may touch of the outside world, so tests can give
// their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// configPath is --config, or "" for the default.
	configPath string
}

// command is one subcommand. All of them are listed in commands(), in
// the order `bridge help` shows them (a func, not a var, because the
// commands' own usage messages read the list).
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "", "run the listeners in the foreground (SIGHUP reloads the config)", runServe},
		{"login", "EMAIL [--provider P] [--tenant T] [--client-id ID] [--device] [--no-browser] [--port N] [--sign-in-as NAME] [--app [--certificate FILE]]", "sign an account in (--app: an app-only account) and print its client settings and local password", runLogin},
		{"logout", "EMAIL [--remove]", "forget an account's tokens and local password; --remove also deletes its [[account]] block", runLogout},
		{"password", "EMAIL [--reset]", "print the local password (or make a new one)", runPassword},
		{"proxy-password", "[EMAIL] [--forget]", "store the password of the proxy user named in [network] proxy (or in EMAIL's proxy)", runProxyPassword},
		{"status", "[--json]", "accounts, token state and the last diagnosis", runStatus},
		{"doctor", "[EMAIL] [--json]", "check config, sign-in, network, TLS and a real login; say how to fix what fails", runDoctor},
		{"token", "EMAIL [--xoauth2] [--json]", "print a fresh access token, for mail clients that speak XOAUTH2 themselves", runToken},
		{"check-config", "", "validate the config file without starting anything", runCheckConfig},
		{"cert", "", "print the local certificate's path and fingerprint", runCert},
		{"service", "install|uninstall|status [--print]", "start the bridge at every login (systemd, launchd, Windows Run key)", runService},
		{"tray", "", "show the bridge's state in the system tray", runTray},
		{"demo", "", "run the bridge against a built-in imitation of Microsoft 365", runDemo},
		{"version", "", "print the version, commit and build date", runVersion},
		{"completion", "bash|zsh|fish", "print the shell completion script", runCompletion},
		{"man", "", "print the manual page (roff)", runMan},
	}
}

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit code chosen by a command (doctor's 1 when a
// check fails), with its message already printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.configPath, "config", "", "config file")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	args = fs.Args()
	if *help || len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout)
		if len(args) == 0 && !*help {
			return &exitError{2}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			var he *helpError
			if errors.As(err, &he) {
				fmt.Fprintf(e.stdout, "usage: bridge %s\n\n%s\n", usageLine(c.name), c.summary)
				if he.flags != "" {
					fmt.Fprintf(e.stdout, "\nFlags:\n%s", he.flags)
				}
				return nil
			}
			return err
		}
	}
	return usagef("unknown command %q (run `bridge help`)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: bridge [--config FILE] COMMAND [ARGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The config file defaults to $BRIDGE_CONFIG or <user config dir>/bridge/config.toml.")
}

// report prints err and returns the exit code: 0 success, 1 runtime failure,
// 2 usage or config error.
func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var xe *exitError
	if errors.As(err, &xe) {
		return xe.code
	}
	// Errors that already name the program ("bridge: config ...", or a
	// command's "bridge serve: ...") do not say it twice.
	msg := err.Error()
	if !strings.HasPrefix(msg, "bridge: ") && !strings.HasPrefix(msg, "bridge ") {
		msg = "bridge: " + msg
	}
	fmt.Fprintln(w, msg)
	var ue *usageError
	var ce *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.Is(err, errConfig) {
		return 2
	}
	return 1
}

// errConfig marks configuration problems that are not a *config.Error.
var errConfig = errors.New("config")

// newFlags returns a flag set for a subcommand whose errors become usage
// errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bridge "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// helpError is -h or --help given to a subcommand: run prints the
// command's usage and its flags. fs is the command's flag set, which the
// completion scripts and the man page read.
type helpError struct {
	flags string
	fs    *flag.FlagSet
}

func (e *helpError) Error() string { return "help requested" }

// parseFlags parses flags that may come before or after positional
// arguments (`bridge login a@b.c --device` and `--device a@b.c` both work).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				var b strings.Builder
				fs.SetOutput(&b)
				fs.PrintDefaults()
				return nil, &helpError{b.String(), fs}
			}
			if misplacedConfig(fs, args) {
				return nil, usagef("%s: --config goes before the command: bridge --config FILE %s", fs.Name(), strings.TrimPrefix(fs.Name(), "bridge "))
			}
			return nil, usagef("%s: %v (run `%s -h`)", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// misplacedConfig reports whether args, which fs could not parse, give
// --config, a flag of bridge itself, to a command that has none.
func misplacedConfig(fs *flag.FlagSet, args []string) bool {
	if fs.Lookup("config") != nil {
		return false
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "config" {
			return true
		}
	}
	return false
}

// configFile returns the config file in use.
func (e *env) configFile() (string, error) {
	if e.configPath != "" {
		return e.configPath, nil
	}
	if p := e.getenv("BRIDGE_CONFIG"); p != "" {
		return p, nil
	}
	return config.DefaultPath()
}

// loadConfig loads and validates the config.
func (e *env) loadConfig() (*config.Config, error) {
	path, err := e.configFile()
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// oneEmail takes exactly one EMAIL argument of command name.
func oneEmail(name string, pos []string) (string, error) {
	if len(pos) != 1 || !strings.Contains(pos[0], "@") {
		return "", usagef("usage: bridge %s", usageLine(name))
	}
	return strings.ToLower(pos[0]), nil
}

// usageLine is a command's name and arguments, as `bridge help` lists them.
func usageLine(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return strings.TrimSpace(c.name + " " + c.args)
		}
	}
	return name
}
