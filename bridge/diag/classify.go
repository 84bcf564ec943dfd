package diag

import (
	"slices"
	"strings"
	"time"
)

// Classify explains err for account a. err may be (or wrap) a *Failure, a
// *tokens.Error, tokens.ErrNeedsLogin, or a bare network error. Failures no
// entry recognises get a per-protocol or generic diagnosis that still
// carries the upstream's raw words. at is when the failure was seen
// (Diagnosis.At), from the caller's clock. A nil err gives the zero
// Diagnosis.
func Classify(err error, a Account, at time.Time) Diagnosis {
	if err == nil {
		return Diagnosis{}
	}
	ev := gather(err)
	ev.provider = strings.ToLower(a.Provider)
	if a.Email == "" {
		a.Email = ev.account
	}
	if a.App {
		ev.appCond(a)
	}
	e := best(&ev)
	d := e.render(a, &ev)
	d.Raw = ev.raw
	d.At = at
	return d
}

// appCond sets the conditions of an app-only account's failures: a mail
// server's refusal is the app's setup (CondApp), at the login with a
// token lacking the protocol's role most likely that role (CondAppRole);
// a needs-login is a missing or refused credential (CondAppNeedsLogin).
func (ev *evidence) appCond(a Account) {
	switch ev.cond {
	case CondNeedsLogin:
		ev.cond = CondAppNeedsLogin
	case "":
		role := AppRole(ev.proto)
		if role == "" {
			return
		}
		ev.cond = CondApp
		if ev.stage == StageAuth && a.AppGrant != nil && !a.AppGrant.HasRole(role) {
			ev.cond = CondAppRole
		}
	}
}

// best returns the entry whose matcher scores highest; ties go to the
// earlier entry, and nothing at all to the unknown entry.
func best(ev *evidence) Entry {
	top, topScore := -1, 0
	for i, e := range table {
		for _, m := range e.Match {
			if s := m.score(ev); s > topScore {
				top, topScore = i, s
			}
		}
	}
	if top < 0 {
		e, _ := Lookup(unknownID)
		return e
	}
	return table[top]
}

// Weights of the fields in score: the more a field narrows the failure
// down, the more it counts. Words and numbers of Microsoft's own beat the
// protocol and stage they were seen in. An entry written for the account's
// provider beats any written for all: Exchange's words and fixes do not
// explain a Gmail account.
const (
	weightProvider = 8
	weightProto    = 1
	weightStage    = 1
	weightCode     = 2
	weightCond     = 2
	weightOAuth    = 2
	weightEnhanced = 3
	weightRespCode = 3
	weightAADSTS   = 4
	weightText     = 4
)

// score is how specifically m describes ev; 0 means no match.
func (m Match) score(ev *evidence) int {
	s := 0
	if m.Provider != "" {
		if m.Provider != ev.provider {
			return 0
		}
		s += weightProvider
	}
	if m.Proto != "" {
		if m.Proto != ev.proto {
			return 0
		}
		s += weightProto
	}
	if m.Stage != "" {
		if m.Stage != ev.stage {
			return 0
		}
		s += weightStage
	}
	if m.Code != 0 {
		if m.Code != ev.code {
			return 0
		}
		s += weightCode
	}
	if len(m.Enhanced) > 0 {
		if !slices.Contains(m.Enhanced, ev.enhanced) {
			return 0
		}
		s += weightEnhanced
	}
	if m.RespCode != "" {
		if !strings.EqualFold(m.RespCode, ev.respCode) {
			return 0
		}
		s += weightRespCode
	}
	if len(m.AADSTS) > 0 {
		if !slices.Contains(m.AADSTS, ev.aadsts) {
			return 0
		}
		s += weightAADSTS
	}
	if m.OAuth != "" {
		if m.OAuth != ev.oauth {
			return 0
		}
		s += weightOAuth
	}
	if m.Cond != "" {
		if m.Cond != ev.cond {
			return 0
		}
		s += weightCond
	}
	if len(m.Text) > 0 {
		lower := strings.ToLower(ev.text)
		for _, t := range m.Text {
			if !strings.Contains(lower, strings.ToLower(t)) {
				return 0
			}
			s += weightText
		}
	}
	return s
}
