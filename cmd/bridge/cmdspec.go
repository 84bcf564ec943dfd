package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"sort"
	"strings"
)

// cmdSpec is what the completion scripts and the man page say about a
// command: its line in commands() and the flags its own flag set defines,
// so that neither can drift from `bridge help` and `bridge CMD -h`.
type cmdSpec struct {
	name, args, summary string
	flags               []flagSpec
	// words are the fixed first arguments (service's install, uninstall,
	// status).
	words []string
	// email is true when the first argument is an account address.
	email bool
}

// flagSpec is one flag of a command.
type flagSpec struct {
	name, usage string
	// arg names the flag's value ("string", "duration", or the name
	// quoted in its usage, such as FILE); "" for a boolean flag.
	arg string
}

// dash is the flag as people type it: --name, or -n for one letter.
func (f flagSpec) dash() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// takesFile reports whether the flag's value is a file name.
func (f flagSpec) takesFile() bool { return strings.EqualFold(f.arg, "file") }

// globalFlags are bridge's own flags, before the command.
var globalFlags = []flagSpec{
	{name: "config", usage: "the config file (default: $BRIDGE_CONFIG or <user config dir>/bridge/config.toml)", arg: "FILE"},
	{name: "help", usage: "list the commands"},
}

// commandSpecs describes every command in commands(). Each command's
// flags come from running it with -h: every command parses its flags
// before it does anything (TestCommandSpecsAskEveryCommand checks that).
func commandSpecs() []cmdSpec {
	var specs []cmdSpec
	for _, c := range commands() {
		s := cmdSpec{name: c.name, args: c.args, summary: c.summary}
		if fs := commandFlags(c); fs != nil {
			fs.VisitAll(func(f *flag.Flag) {
				arg, usage := flag.UnquoteUsage(f)
				s.flags = append(s.flags, flagSpec{name: f.Name, usage: usage, arg: arg})
			})
		}
		sort.Slice(s.flags, func(i, j int) bool { return s.flags[i].name < s.flags[j].name })
		if first, _, _ := strings.Cut(c.args, " "); first == "EMAIL" || first == "[EMAIL]" {
			s.email = true
		} else if strings.Contains(first, "|") && !strings.ContainsAny(first[:1], "[-") {
			s.words = strings.Split(first, "|")
		}
		specs = append(specs, s)
	}
	return specs
}

// commandFlags returns the flag set of c, or nil when c did not answer
// -h with its usage.
func commandFlags(c command) *flag.FlagSet {
	quiet := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	var he *helpError
	if err := c.run(context.Background(), quiet, []string{"-h"}); errors.As(err, &he) {
		return he.fs
	}
	return nil
}
