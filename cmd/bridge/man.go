package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailbridge/bridge/tokens"
)

func runMan(ctx context.Context, e *env, args []string) error {
	if pos, err := parseFlags(newFlags("man"), args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge man")
	}
	fmt.Fprint(e.stdout, manPage(commandSpecs(), currentBuild()))
	return nil
}

// roff escapes text for a roff line: backslashes, and a leading . or '
// that would make the line a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffFlag is a flag and its value's name, in bold and italics.
func roffFlag(f flagSpec) string {
	s := `\fB` + strings.ReplaceAll(f.dash(), "-", `\-`) + `\fR`
	if f.arg != "" {
		s += ` \fI` + roff(f.arg) + `\fR`
	}
	return s
}

// roffArgs sets a usage line's words: flags in bold, the rest as written.
func roffArgs(args string) string {
	var out []string
	for _, w := range strings.Fields(args) {
		i := strings.Index(w, "--")
		if i < 0 {
			out = append(out, roff(w))
			continue
		}
		name := strings.TrimRight(w[i+2:], "]")
		out = append(out, roff(w[:i])+`\fB\-\-`+strings.ReplaceAll(roff(name), "-", `\-`)+`\fR`+strings.Repeat("]", len(w[i+2:])-len(name)))
	}
	return strings.Join(out, " ")
}

// manPage is bridge.1: the commands and flags as `bridge help` and
// `bridge CMD -h` give them, and the files, variables and exit codes.
func manPage(specs []cmdSpec, b buildStamp) string {
	var m strings.Builder
	day, _, _ := strings.Cut(b.Date, "T")
	fmt.Fprintf(&m, ".TH BRIDGE 1 %q %q \"User Commands\"\n", day, "bridge "+b.Version)
	m.WriteString(`.SH NAME
bridge \- let password-only mail clients use Microsoft 365 and Outlook.com through OAuth
.SH SYNOPSIS
.B bridge
[\fB\-\-config\fR \fIFILE\fR]
.I COMMAND
[\fIARGS\fR]
.SH DESCRIPTION
.B bridge
listens on 127.0.0.1 for IMAP, POP3 and SMTP clients that log in with a password, and logs
in to Microsoft 365 or Outlook.com on their behalf with OAuth 2.0 (SASL XOAUTH2), using
tokens that
.B bridge login
obtained once and that it refreshes by itself.
The mail client's password is a local password made by
.BR "bridge login" ;
it never reaches Microsoft.
After the login, IMAP and POP3 bytes are relayed unchanged; SMTP is relayed command by
command, and a message is acknowledged only after the upstream accepted it.
When Microsoft refuses a login, the client's error, the log,
.B bridge status
and
.B bridge doctor
say why and what fixes it.
.SH OPTIONS
`)
	for _, f := range globalFlags {
		fmt.Fprintf(&m, ".TP\n%s\n%s\n", roffFlag(f), roff(f.usage))
	}
	m.WriteString(".SH COMMANDS\n")
	for _, s := range specs {
		fmt.Fprintf(&m, ".TP\n\\fB%s\\fR %s\n%s\n", roff(s.name), roffArgs(s.args), roff(s.summary))
		if len(s.flags) > 0 {
			m.WriteString(".RS\n")
			for _, f := range s.flags {
				fmt.Fprintf(&m, ".TP\n%s\n%s\n", roffFlag(f), roff(f.usage))
			}
			m.WriteString(".RE\n")
		}
	}
	fmt.Fprintf(&m, `.SH ENVIRONMENT
.TP
.B BRIDGE_CONFIG
the config file, when \fB\-\-config\fR is not given
.TP
.B %s
the passphrase that encrypts the token file of the file store
.TP
.B %s
a file whose first line is that passphrase (set this or the one above, not both)
`, tokens.PassphraseEnv, tokens.PassphraseFileEnv)
	m.WriteString(`.SH FILES
.TP
.I <user config dir>/bridge/config.toml
the config file: \fI$XDG_CONFIG_HOME/bridge/config.toml\fR or
\fI~/.config/bridge/config.toml\fR on Linux,
\fI~/Library/Application Support/bridge/config.toml\fR on macOS,
\fI%AppData%\ebridge\econfig.toml\fR on Windows.
.B config.example.toml
documents every key with its default; the packages install it in
\fI/usr/share/doc/mailbridge/\fR.
.TP
.I ~/.config/systemd/user/bridge.service
the unit \fBbridge service install\fR writes; it takes precedence over the packaged
\fI/usr/lib/systemd/user/bridge.service\fR, which runs \fBbridge serve\fR with the default
config (\fBsystemctl \-\-user enable \-\-now bridge\fR).
.SH EXIT STATUS
0 on success, 1 on a runtime failure (and from \fBdoctor\fR when a check fails),
2 on a usage or config error.
.SH EXAMPLES
Sign in, then start the bridge at every login:
.PP
.RS
.nf
bridge login me@example.com \-\-client\-id 00000000\-0000\-0000\-0000\-000000000000
bridge service install
.fi
.RE
.PP
Try it without an account:
.PP
.RS
.nf
bridge demo
.fi
.RE
.SH SEE ALSO
The README, and \fBbridge \fICOMMAND\fB \-h\fR for a command's flags.
`)
	return m.String()
}
