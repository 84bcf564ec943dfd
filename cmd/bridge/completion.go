package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailbridge/bridge/bridge/config"
)

func runCompletion(ctx context.Context, e *env, args []string) error {
	fs := newFlags("completion")
	accounts := fs.Bool("accounts", false, "print the configured account addresses, one a line (the scripts run this)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *accounts && len(pos) == 0 {
		printAccounts(e)
		return nil
	}
	if len(pos) != 1 {
		return usagef("usage: bridge completion bash|zsh|fish")
	}
	switch pos[0] {
	case "bash":
		fmt.Fprint(e.stdout, bashCompletion(commandSpecs()))
	case "zsh":
		fmt.Fprint(e.stdout, zshCompletion(commandSpecs()))
	case "fish":
		fmt.Fprint(e.stdout, fishCompletion(commandSpecs()))
	default:
		return usagef("bridge completion: no completion for %q; choose bash, zsh or fish", pos[0])
	}
	return nil
}

// printAccounts prints the config's account addresses. It runs at every
// <TAB>: it says nothing when the config cannot be read, and does not
// validate it.
func printAccounts(e *env) {
	path, err := e.configFile()
	if err != nil {
		return
	}
	cfg, err := config.Load(path)
	if err != nil {
		return
	}
	for _, a := range cfg.Accounts {
		if a.Email != "" {
			fmt.Fprintln(e.stdout, strings.ToLower(a.Email))
		}
	}
}

// completionSets is one command's completion data in the shape every
// script uses: the flags as typed, those that take a value, those whose
// value is a file.
type completionSets struct {
	flags, values, files []string
}

func setsOf(flags []flagSpec) completionSets {
	var s completionSets
	for _, f := range flags {
		s.flags = append(s.flags, f.dash())
		if f.arg != "" {
			s.values = append(s.values, f.dash())
		}
		if f.takesFile() {
			s.files = append(s.files, f.dash())
		}
	}
	return s
}

// commandFlagsWithHelp is a command's flags plus -h/--help, which every
// command takes.
func commandFlagsWithHelp(s cmdSpec) []flagSpec {
	return append(append([]flagSpec(nil), s.flags...), flagSpec{name: "help", usage: "show the command's usage and flags"})
}

func bashCompletion(specs []cmdSpec) string {
	var b strings.Builder
	b.WriteString(`# bash completion for bridge, made by ` + "`bridge completion bash`" + `.
# Load it with: source <(bridge completion bash)
_bridge() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local i cmd="" cfg=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--config | -config) cfg=(--config "${COMP_WORDS[i+1]/#\~/$HOME}"); ((i++)) ;;
		--config=* | -config=*) cfg=("${COMP_WORDS[i]}") ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	local words flags values files
	case $cmd in
`)
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	g := setsOf(globalFlags)
	fmt.Fprintf(&b, "\t\"\") words=%q flags=%q values=%q files=%q ;;\n",
		strings.Join(names, " "), strings.Join(g.flags, " "), strings.Join(g.values, " "), strings.Join(g.files, " "))
	for _, s := range specs {
		words := strings.Join(s.words, " ")
		if s.email {
			words = "@accounts"
		}
		c := setsOf(commandFlagsWithHelp(s))
		fmt.Fprintf(&b, "\t%s) words=%q flags=%q values=%q files=%q ;;\n",
			s.name, words, strings.Join(c.flags, " "), strings.Join(c.values, " "), strings.Join(c.files, " "))
	}
	b.WriteString(`	*) return ;;
	esac
	# Flags as typed (-config, --config=x) compare in their canonical form.
	_bridge_flag() { local w=${1#-}; w=${w#-}; w=${w%%=*}; if ((${#w} == 1)); then REPLY=-$w; else REPLY=--$w; fi; }
	if [[ -n $cmd ]]; then
		# The fixed word or the address comes once, first.
		for ((i++; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			-*=*) ;;
			-*) _bridge_flag "${COMP_WORDS[i]}"; [[ " $values " == *" $REPLY "* ]] && ((i++)) ;;
			*) words="" ;;
			esac
		done
	fi
	if [[ $prev == -* && $prev != *=* ]]; then
		_bridge_flag "$prev"
		if [[ " $files " == *" $REPLY "* ]]; then COMPREPLY=($(compgen -f -- "$cur")); return; fi
		if [[ " $values " == *" $REPLY "* ]]; then COMPREPLY=(); return; fi
	fi
	if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); return; fi
	if [[ $words == @accounts ]]; then
		words=$("${COMP_WORDS[0]}" "${cfg[@]}" completion --accounts 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _bridge bridge
`)
	return b.String()
}

// zshQuote quotes s for zsh in single quotes.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshDescribed is a list of name:description items for _describe.
func zshDescribed(items [][2]string) string {
	var q []string
	for _, it := range items {
		q = append(q, zshQuote(strings.ReplaceAll(it[0], ":", `\:`)+":"+it[1]))
	}
	return strings.Join(q, " ")
}

func zshFlags(flags []flagSpec) (described, values, files string) {
	var items [][2]string
	for _, f := range flags {
		items = append(items, [2]string{f.dash(), f.usage})
	}
	s := setsOf(flags)
	return zshDescribed(items), strings.Join(s.values, " "), strings.Join(s.files, " ")
}

func zshCompletion(specs []cmdSpec) string {
	var b strings.Builder
	b.WriteString(`#compdef bridge
# zsh completion for bridge, made by ` + "`bridge completion zsh`" + `.
# Save it as _bridge in a directory of $fpath, or load it with:
# source <(bridge completion zsh)
_bridge() {
	local i cmd= cur=${words[CURRENT]} prev=${words[CURRENT-1]} accounts=0
	local -a cfg cmds flags values files choices
	for ((i = 2; i < CURRENT; i++)); do
		case ${words[i]} in
		(--config|-config) cfg=(--config ${words[i+1]}); ((i++)) ;;
		(--config=*|-config=*) cfg=(${words[i]}) ;;
		(-*) ;;
		(*) cmd=${words[i]}; break ;;
		esac
	done
	case $cmd in
`)
	var cmds [][2]string
	for _, s := range specs {
		cmds = append(cmds, [2]string{s.name, s.summary})
	}
	d, v, f := zshFlags(globalFlags)
	fmt.Fprintf(&b, "\t('') cmds=(%s); flags=(%s); values=(%s); files=(%s) ;;\n", zshDescribed(cmds), d, v, f)
	for _, s := range specs {
		d, v, f := zshFlags(commandFlagsWithHelp(s))
		acc := 0
		if s.email {
			acc = 1
		}
		fmt.Fprintf(&b, "\t(%s) flags=(%s); values=(%s); files=(%s); choices=(%s); accounts=%d ;;\n",
			s.name, d, v, f, strings.Join(s.words, " "), acc)
	}
	b.WriteString(`	(*) return 1 ;;
	esac
	local w
	if [[ -n $cmd ]]; then
		for ((i++; i < CURRENT; i++)); do
			w=${${words[i]#-}#-}
			case ${words[i]} in
			(-*=*) ;;
			(-*) (( ${#w} == 1 )) && w=-$w || w=--$w; (( ${values[(Ie)$w]} )) && ((i++)) ;;
			(*) choices=(); accounts=0 ;;
			esac
		done
	fi
	if [[ $prev == -* && $prev != *=* ]]; then
		w=${${prev#-}#-}
		(( ${#w} == 1 )) && w=-$w || w=--$w
		if (( ${files[(Ie)$w]} )); then _files; return; fi
		if (( ${values[(Ie)$w]} )); then _message 'value'; return; fi
	fi
	if [[ $cur == -* ]]; then _describe -t flags 'flag' flags; return; fi
	if [[ -z $cmd ]]; then _describe -t commands 'bridge command' cmds; return; fi
	if (( accounts )); then
		choices=(${(f)"$(${words[1]} $cfg completion --accounts 2>/dev/null)"})
	fi
	(( $#choices )) && compadd -a choices
}
if [ "$funcstack[1]" = "_bridge" ]; then
	_bridge "$@"
else
	compdef _bridge bridge
fi
`)
	return b.String()
}

// fishQuote quotes s for fish in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// fishFlag is the complete line of one flag under condition cond.
func fishFlag(cond string, f flagSpec) string {
	opt := "-l " + f.name
	if len(f.name) == 1 {
		opt = "-o " + f.name
	}
	switch {
	case f.takesFile():
		opt += " -r -F"
	case f.arg != "":
		opt += " -x"
	}
	return fmt.Sprintf("complete -c bridge -n %s %s -d %s\n", fishQuote(cond), opt, fishQuote(f.usage))
}

func fishCompletion(specs []cmdSpec) string {
	var b strings.Builder
	b.WriteString(`# fish completion for bridge, made by ` + "`bridge completion fish`" + `.
# Save it as ~/.config/fish/completions/bridge.fish, or load it with:
# bridge completion fish | source

# __bridge_cmd prints the command word, skipping bridge's own flags.
function __bridge_cmd
	set -l w (commandline -opc)
	set -e w[1]
	while set -q w[1]
		switch $w[1]
			case --config -config
				set -e w[1]
			case '-*'
			case '*'
				echo $w[1]
				return 0
		end
		set -e w[1]
	end
	return 1
end

function __bridge_using
	set -l c (__bridge_cmd); or return 1
	contains -- $c $argv
end

function __bridge_accounts
	set -l w (commandline -opc)
	set -l cfg
	for i in (seq 2 (count $w))
		switch $w[$i]
			case --config -config
				set cfg --config $w[(math $i + 1)]
			case '--config=*' '-config=*'
				set cfg $w[$i]
		end
	end
	$w[1] $cfg completion --accounts 2>/dev/null
end

complete -c bridge -f
`)
	top := "not __bridge_cmd >/dev/null"
	for _, f := range globalFlags {
		b.WriteString(fishFlag(top, f))
	}
	for _, s := range specs {
		fmt.Fprintf(&b, "complete -c bridge -n %s -a %s -d %s\n", fishQuote(top), s.name, fishQuote(s.summary))
	}
	var email []string
	for _, s := range specs {
		using := "__bridge_using " + s.name
		for _, f := range commandFlagsWithHelp(s) {
			b.WriteString(fishFlag(using, f))
		}
		if len(s.words) > 0 {
			fmt.Fprintf(&b, "complete -c bridge -n %s -a %s\n", fishQuote(using), fishQuote(strings.Join(s.words, " ")))
		}
		if s.email {
			email = append(email, s.name)
		}
	}
	if len(email) > 0 {
		fmt.Fprintf(&b, "complete -c bridge -n %s -a '(__bridge_accounts)'\n", fishQuote("__bridge_using "+strings.Join(email, " ")))
	}
	return b.String()
}
