package integration

import (
	"bytes"
	"strings"
	"testing"
)

// TestSwaks sends with swaks over STARTTLS with AUTH PLAIN and with AUTH
// LOGIN, and checks each message's body in the sink. A wrong password is
// refused with a 535 and nothing reaches the sink.
func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks := needTool(t, "swaks", "swaks")
	// swaks does STARTTLS through Net::SSLeay, which Debian ships in a
	// package swaks only recommends.
	if r := runTool(t, t.TempDir(), nil, nil, "perl", "-MNet::SSLeay", "-e", "1"); r.err != nil {
		t.Skip("swaks cannot do TLS: Perl's Net::SSLeay is missing (Debian package libnet-ssleay-perl)")
	}
	e := newEnv(t)
	home := clientDir(t)
	const rcpt = "swaks@example.net"
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		msg := newMessage(e.user, rcpt, "swaks AUTH "+mech, "Sent by swaks with AUTH "+mech+".\n")
		// swaks ends DATA with CRLF "." CRLF after whatever it is given,
		// so the message goes in without its last line end. Its
		// transcript shows the server's replies (lines marked "<~").
		// --auth-hide-password keeps the password out of it; only the
		// server's lines are shown on failure all the same.
		r := runTool(t, home, nil, bytes.TrimSuffix(msg.raw, []byte("\r\n")), swaks,
			"--server", e.ep.smtp, "--tls", "--tls-verify", "--tls-ca-path", e.caFile,
			"--auth", mech, "--auth-user", e.user, "--auth-password", e.password, "--auth-hide-password",
			"--from", e.user, "--to", rcpt, "--data", "-", "--timeout", "30")
		if r.err != nil {
			t.Fatalf("swaks AUTH %s: %v; the server said:\n%s\nstderr:\n%s", mech, r.err, serverLines(r.stdout), tail(r.stderr, 2000))
		}
		got := e.sink.checkDelivered(t, msg, rcpt)
		// The reply to the final dot is the upstream's, with the queue id
		// the sink gave the message, not the bridge's own words.
		if want := "<~  250 2.0.0 Ok: queued as " + got.queueID; !containsLine(r.stdout, want) {
			t.Errorf("AUTH %s: swaks did not see %q; the server said:\n%s", mech, want, serverLines(r.stdout))
		}
	}

	before := len(e.sink.messages())
	bad := newMessage(e.user, rcpt, "swaks wrong password", "must not arrive\n")
	r := runTool(t, home, nil, bad.raw, swaks,
		"--server", e.ep.smtp, "--tls", "--tls-verify", "--tls-ca-path", e.caFile,
		"--auth", "PLAIN", "--auth-user", e.user, "--auth-password", "not-the-password",
		"--from", e.user, "--to", rcpt, "--data", "-", "--timeout", "30")
	if r.err == nil {
		t.Fatalf("swaks with a wrong password succeeded")
	}
	if !containsLine(r.stdout, "<~* 535") && !containsLine(r.stdout, "<** 535") {
		t.Errorf("wrong password: no 535 reply among the server's lines:\n%s", serverLines(r.stdout))
	}
	if n := len(e.sink.messages()); n != before {
		t.Errorf("the sink got %d messages after a refused login", n-before)
	}
}

// serverLines keeps the server's side of a swaks transcript (lines marked
// "<"), leaving out the client's, which include the AUTH exchange.
func serverLines(out []byte) string {
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "<") {
			b.WriteString(t + "\n")
		}
	}
	return b.String()
}
