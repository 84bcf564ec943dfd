// Package traymodel turns the running server's state into the tray's icon
// and menu, as plain values: the tray draws them with systray, and tests
// check them without a desktop.
package traymodel

import (
	"fmt"
	"strings"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/diag"
)

// Icon is the tray icon's state.
type Icon int

// The icon states.
const (
	// IconOK: the server runs and no account needs anyone.
	IconOK Icon = iota
	// IconAttention: an account needs sign-in or a protocol is refused.
	IconAttention
	// IconStopped: no server runs for the config.
	IconStopped
)

// Action is what clicking an item does.
type Action int

// The actions; ActionNone items are labels.
const (
	ActionNone Action = iota
	ActionSignIn
	ActionCopyPassword
	ActionDiagnose
	ActionOpenLog
	ActionQuit
)

// State is an account's condition as the tray shows it.
type State int

// The account states.
const (
	// StateUnknown: no server runs, or it has not loaded the account yet.
	StateUnknown State = iota
	// StateOK: nothing refused lately.
	StateOK
	// StateTemporary: a failure that passes by itself (throttling, network).
	StateTemporary
	// StateNeedsSignIn: `bridge login` must run again.
	StateNeedsSignIn
	// StateRefused: Microsoft refuses a protocol; someone must switch it on.
	StateRefused
	// StateWrongPassword: a client keeps giving a wrong local password
	// (most often one that still has an old password).
	StateWrongPassword
)

// Item is one menu entry.
type Item struct {
	Title    string
	Tooltip  string
	Action   Action
	Account  string // for the account actions
	Disabled bool
	// Separator items draw a line and nothing else.
	Separator bool
	// Children make the item a submenu.
	Children []Item
}

// Menu is the whole tray: icon, tooltip and menu.
type Menu struct {
	Icon    Icon
	Tooltip string
	Items   []Item
}

// Input is what the menu is built from.
type Input struct {
	// Server is the running server's status; nil when none answers.
	Server *control.Status
	// Accounts are the configured emails in file order, shown even when
	// no server runs.
	Accounts []string
	// Doctor says whether `bridge doctor` exists in this build.
	Doctor bool
	// Notice is the outcome of the last action ("Password copied"), or "".
	Notice string
}

// AccountState says what state an account is in and why, in a few words.
func AccountState(as *bridge.AccountStatus) (State, string) {
	if as == nil {
		return StateUnknown, "bridge not running"
	}
	if as.Token.NeedsLogin != "" {
		return StateNeedsSignIn, "needs sign-in"
	}
	if !as.Token.HasRefreshToken {
		return StateNeedsSignIn, "not signed in"
	}
	var temp string
	for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
		d, ok := as.Last[p]
		if !ok {
			continue
		}
		switch {
		case d.Kind == diag.KindUser && strings.HasPrefix(d.ID, "token-"):
			return StateNeedsSignIn, "needs sign-in"
		case d.Kind == diag.KindTemporary:
			temp = fmt.Sprintf("%s: %s", strings.ToUpper(string(p)), d.Title)
		default:
			return StateRefused, strings.ToUpper(string(p)) + " refused"
		}
	}
	if r := as.Refused; r != nil {
		return StateWrongPassword, fmt.Sprintf("%d wrong local %s", r.Count, plural(int64(r.Count), "password", "passwords"))
	}
	if temp != "" {
		return StateTemporary, temp
	}
	return StateOK, "ok"
}

// Build returns the menu for in.
func Build(in Input) Menu {
	m := Menu{Icon: IconOK}
	byEmail := map[string]*bridge.AccountStatus{}
	emails := append([]string(nil), in.Accounts...)
	if in.Server != nil {
		for i := range in.Server.Accounts {
			as := &in.Server.Accounts[i]
			if _, ok := byEmail[as.Email]; !ok && !contains(emails, as.Email) {
				emails = append(emails, as.Email)
			}
			byEmail[as.Email] = as
		}
		var live int64
		for _, n := range in.Server.Sessions {
			live += n
		}
		m.Items = append(m.Items, Item{Title: fmt.Sprintf("Bridge running · %d live %s", live, plural(live, "session", "sessions")), Disabled: true})
	} else {
		m.Icon = IconStopped
		m.Items = append(m.Items,
			Item{Title: "Bridge is not running", Disabled: true},
			Item{Title: "Start it with `bridge serve` or `bridge service install`", Disabled: true})
	}
	m.Items = append(m.Items, Item{Separator: true})
	attention := 0
	for _, email := range emails {
		var as *bridge.AccountStatus
		if in.Server != nil {
			as = byEmail[email]
		}
		st, why := AccountState(as)
		if in.Server != nil && as == nil {
			why = "not loaded by the running bridge"
		}
		if st == StateNeedsSignIn || st == StateRefused || st == StateWrongPassword {
			attention++
		}
		m.Items = append(m.Items, accountItem(email, st, why, as, in.Doctor))
	}
	if len(emails) == 0 {
		m.Items = append(m.Items, Item{Title: "No accounts: run `bridge login EMAIL`", Disabled: true})
	}
	m.Items = append(m.Items, Item{Separator: true})
	if in.Notice != "" {
		m.Items = append(m.Items, Item{Title: in.Notice, Disabled: true})
	}
	m.Items = append(m.Items,
		Item{Title: "Open log", Action: ActionOpenLog},
		Item{Title: "Quit", Action: ActionQuit})

	switch {
	case in.Server == nil:
		m.Tooltip = "Mail bridge: not running"
	case attention > 0:
		m.Icon = IconAttention
		m.Tooltip = fmt.Sprintf("Mail bridge: %d %s need%s attention", attention, plural(int64(attention), "account", "accounts"), plural(int64(attention), "s", ""))
	default:
		m.Tooltip = "Mail bridge: all accounts ok"
	}
	return m
}

func accountItem(email string, st State, why string, as *bridge.AccountStatus, doctor bool) Item {
	mark := map[State]string{StateOK: "✓", StateTemporary: "…", StateNeedsSignIn: "⚠", StateRefused: "⚠", StateWrongPassword: "⚠", StateUnknown: "·"}[st]
	it := Item{Title: fmt.Sprintf("%s %s — %s", mark, email, why), Tooltip: why}
	if as != nil {
		for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
			if d, ok := as.Last[p]; ok {
				it.Children = append(it.Children, Item{Title: fmt.Sprintf("%s: %s", strings.ToUpper(string(p)), d.Title), Tooltip: d.Fix, Disabled: true})
			}
		}
		if as.Token.NeedsLogin != "" {
			it.Children = append(it.Children, Item{Title: as.Token.NeedsLogin, Disabled: true})
		}
		if r := as.Refused; r != nil {
			it.Children = append(it.Children, Item{Title: r.Text(), Tooltip: r.Fix(email), Disabled: true})
		}
		if len(it.Children) > 0 {
			it.Children = append(it.Children, Item{Separator: true})
		}
	}
	signIn := Item{Title: "Sign in again…", Action: ActionSignIn, Account: email}
	if st == StateNeedsSignIn {
		signIn.Title = "Sign in now…"
		signIn.Tooltip = "Opens the browser to sign " + email + " in"
	}
	it.Children = append(it.Children, signIn,
		Item{Title: "Copy password", Tooltip: "Puts the local password on the clipboard", Action: ActionCopyPassword, Account: email})
	if doctor {
		it.Children = append(it.Children, Item{Title: "Run diagnostics", Action: ActionDiagnose, Account: email})
	}
	return it
}

// Find returns the first item, at any depth, with action a for account
// (any account when ""), or nil.
func (m Menu) Find(a Action, account string) *Item {
	var walk func([]Item) *Item
	walk = func(items []Item) *Item {
		for i := range items {
			it := &items[i]
			if it.Action == a && (account == "" || it.Account == account) {
				return it
			}
			if f := walk(it.Children); f != nil {
				return f
			}
		}
		return nil
	}
	return walk(m.Items)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
