package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// TestStatusTimes: every time in the status text has one format, the
// needs-login reason's included, and an access token whose expiry has
// passed is said to have expired.
func TestStatusTimes(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.Local)
	refused := now.Add(-time.Hour)
	doc := statusDoc{Config: "/c.toml", Store: "file", Accounts: []accountStatus{
		{Email: "gone@example.com", HasPassword: true, AccessExpiry: now.Add(-5 * time.Minute),
			NeedsLogin: "AADSTS700082 (the sign-in expired after 90 days without use), refused " + refused.UTC().Format(time.RFC3339)},
		{Email: "ok@example.com", HasPassword: true, SignedIn: true, TokenUpdated: now.Add(-2 * time.Hour), AccessExpiry: now.Add(40 * time.Minute)},
	}}
	var b strings.Builder
	printStatus(&b, doc, now)
	text := b.String()
	for _, want := range []string{
		"NEEDS SIGN-IN: AADSTS700082 (the sign-in expired after 90 days without use), refused 2026-11-26 09:00:00\n",
		"access token   expired 2026-11-26 09:55:00 (the next login fetches a new one)\n",
		"refresh token saved 2026-11-26 08:00:00\n",
		"access token   expires 2026-11-26 10:40:00\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "T09:00:00Z") {
		t.Errorf("a second time format:\n%s", text)
	}
}

// TestStatusSendingThroughGraph: an account on smtp_via "auto" that the
// server switched to Graph shows since when, why, and when SMTP is tried
// again; one on "graph" says so.
func TestStatusSendingThroughGraph(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.Local)
	doc := statusDoc{Config: "/c.toml", Store: "file", Accounts: []accountStatus{
		{Email: "auto@example.com", HasPassword: true, SMTPVia: "auto",
			Graph: &bridge.GraphUse{Since: now.Add(-time.Hour), Reason: "smtp-auth-disabled-tenant", RetrySMTP: now.Add(5 * time.Hour)}},
		{Email: "idle@example.com", HasPassword: true, SMTPVia: "auto"},
		{Email: "graph@example.com", HasPassword: true, SMTPVia: "graph"},
	}}
	var b strings.Builder
	printStatus(&b, doc, now)
	text := b.String()
	for _, want := range []string{
		"sending        through Microsoft Graph since 2026-11-26 09:00:00: SMTP AUTH is off [smtp-auth-disabled-tenant]\n" +
			"                 SMTP is tried again at the first login after 2026-11-26 15:00:00\n",
		"sending        through SMTP; through Microsoft Graph while SMTP AUTH is off (smtp_via = \"auto\")\n",
		"sending        through Microsoft Graph (smtp_via = \"graph\")\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
}
