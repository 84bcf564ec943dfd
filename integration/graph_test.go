package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/graphtest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// graphWorld is an in-process bridge whose account is on smtp_via =
// "auto", in front of bridgetest's SMTP with SMTP AUTH switched off for
// the tenant and of graphtest's Microsoft Graph. It needs no Dovecot.
type graphWorld struct {
	*env
	graph *graphtest.Server
	smtp  *bridgetest.SMTP
}

func newGraphWorld(t *testing.T) *graphWorld {
	t.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	idp := tokenstest.New(tokensOptions())
	t.Cleanup(idp.Close)
	g := graphtest.New(graphtest.Options{Tokens: idp})
	t.Cleanup(g.Close)
	upCert, _, _, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	fake, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: idp.Validate, Refusal: bridgetest.TenantDisabled,
		TLS: &tls.Config{Certificates: []tls.Certificate{upCert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })

	_, certPEM, keyPEM, err := ca.Issue("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "local.crt"), filepath.Join(dir, "local.key")
	writeFile(t, certFile, certPEM, 0o644)
	writeFile(t, keyFile, keyPEM, 0o600)
	storePath := filepath.Join(dir, "tokens.json")
	st, err := tokens.OpenStore("file", storePath)
	if err != nil {
		t.Fatal(err)
	}
	_, refresh, _ := idp.Issue(testUser)
	idp.GrantConsent(testUser, tokenstest.GraphResource+"/Mail.Send", tokenstest.GraphResource+"/User.Read")
	pw, err := tokens.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(testUser, tokens.Entry{RefreshToken: refresh, Password: pw, Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[listen]
imap  = ""
pop3  = ""
smtp  = "127.0.0.1:0"
smtps = "127.0.0.1:0"

[store]
backend = "file"
path = %q

[tls]
cert_file = %q
key_file = %q
upstream_ca_file = %q

[[account]]
email = %q
client_id = %q
smtp = %q
token_url = %q
smtp_via = "auto"
graph_url = %q
`, storePath, certFile, keyFile, caFile, testUser, testClientID, fake.Addr(), idp.TokenURL("common"), g.URL())
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, []byte(conf), 0o600)
	up := &upstream{idp: idp, ca: ca, caFile: caFile}
	e := startBridgeFiles(t, up, &bridgeFiles{dir: dir, config: cfgPath, password: pw})
	return &graphWorld{env: e, graph: g, smtp: fake}
}

// swaks runs swaks over STARTTLS with AUTH PLAIN, the message on stdin.
func (w *graphWorld) swaks(t *testing.T, to string, msg []byte) result {
	t.Helper()
	return runTool(t, clientDir(t), nil, bytes.TrimSuffix(msg, []byte("\r\n")), needSwaks(t),
		"--server", w.ep.smtp, "--tls", "--tls-verify", "--tls-ca-path", w.caFile,
		"--auth", "PLAIN", "--auth-user", w.user, "--auth-password", w.password, "--auth-hide-password",
		"--from", w.user, "--to", to, "--data", "-", "--timeout", "60")
}

func needSwaks(t *testing.T) string {
	t.Helper()
	swaks := needTool(t, "swaks", "swaks")
	if r := runTool(t, t.TempDir(), nil, nil, "perl", "-MNet::SSLeay", "-e", "1"); r.err != nil {
		t.Skip("swaks cannot do TLS: Perl's Net::SSLeay is missing (Debian package libnet-ssleay-perl)")
	}
	return swaks
}

// refusedWith reports whether swaks's transcript shows a refusal starting
// with reply ("<~*" over TLS, "<**" without).
func refusedWith(out []byte, reply string) bool {
	return containsLine(out, "<~* "+reply) || containsLine(out, "<** "+reply)
}

// TestSwaksThroughGraph: with SMTP AUTH off for the tenant, swaks's
// message with a Bcc recipient arrives once at Graph for every envelope
// recipient, the Bcc hidden; a 10 MB message is refused with 552 5.3.4
// and nothing is sent; a throttled submission is a 451 that a second try
// gets through, once.
func TestSwaksThroughGraph(t *testing.T) {
	t.Parallel()
	w := newGraphWorld(t)
	const to, hidden = "ann@example.net", "boss@example.net"
	msg := newMessage(w.user, to, "swaks through graph", "Sent by swaks, through Microsoft Graph.\n")
	r := w.swaks(t, to+","+hidden, msg.raw)
	if r.err != nil {
		t.Fatalf("swaks: %v; the server said:\n%s", r.err, serverLines(r.stdout))
	}
	if !containsLine(r.stdout, "<~  250 2.0.0 Accepted by Microsoft Graph") {
		t.Errorf("the final reply does not say Graph took it:\n%s", serverLines(r.stdout))
	}
	sent := w.graph.Sent()
	if len(sent) != 1 {
		t.Fatalf("Graph got %d messages, want 1", len(sent))
	}
	if want := []string{to, hidden}; !slices.Equal(sent[0].Recipients, want) {
		t.Errorf("Graph delivers to %v, want %v", sent[0].Recipients, want)
	}
	if strings.Contains(string(sent[0].Delivered), hidden) {
		t.Errorf("the recipients see the Bcc:\n%s", sent[0].Delivered)
	}
	sameBody(t, "swaks through graph", bodyOf(sent[0].MIME), msg.body())
	if n := len(w.smtp.Messages()); n != 0 {
		t.Errorf("the SMTP upstream got %d messages", n)
	}

	big := newMessage(w.user, to, "swaks too big", bigBody(10<<20))
	r = w.swaks(t, to, big.raw)
	if r.err == nil || !refusedWith(r.stdout, "552 5.3.4") {
		t.Errorf("10 MB message: err %v; the server said:\n%s", r.err, serverLines(r.stdout))
	}

	w.graph.FailNext(1, graphtest.Throttled(3))
	again := newMessage(w.user, to, "swaks throttled", "Sent twice, arrives once.\n")
	r = w.swaks(t, to, again.raw)
	if r.err == nil || !refusedWith(r.stdout, "451 4.7.0") {
		t.Errorf("throttled: err %v; the server said:\n%s", r.err, serverLines(r.stdout))
	}
	if r = w.swaks(t, to, again.raw); r.err != nil {
		t.Fatalf("the second try: %v; the server said:\n%s", r.err, serverLines(r.stdout))
	}
	var subjects []string
	for _, m := range w.graph.Sent() {
		subjects = append(subjects, subjectOf(m.MIME))
	}
	if want := []string{"swaks through graph", "swaks throttled"}; !slices.Equal(subjects, want) {
		t.Errorf("Graph got %q, want %q", subjects, want)
	}
}

// TestPythonSMTPThroughGraph sends with smtplib over STARTTLS and implicit
// TLS; each message arrives at Graph once, its body unchanged.
func TestPythonSMTPThroughGraph(t *testing.T) {
	t.Parallel()
	w := newGraphWorld(t)
	const rcpt = "python@example.net"
	for i, mode := range []string{"smtp", "smtps"} {
		addr := w.ep.smtp
		if mode == "smtps" {
			addr = w.ep.smtps
		}
		msg := newMessage(w.user, rcpt, "smtplib through graph "+mode, "Sent by Python's smtplib ("+mode+").\n.leading dot\n")
		if out := runPython(t, w.env, mode, addr, rcpt, msg.raw); len(out.Refused) != 0 {
			t.Fatalf("%s: refused %v", mode, out.Refused)
		}
		sent := w.graph.Sent()
		if len(sent) != i+1 {
			t.Fatalf("%s: Graph has %d messages, want %d", mode, len(sent), i+1)
		}
		m := sent[i]
		if subjectOf(m.MIME) != msg.subject || !slices.Equal(m.Recipients, []string{rcpt}) {
			t.Errorf("%s: got %q to %v", mode, subjectOf(m.MIME), m.Recipients)
		}
		sameBody(t, mode, bodyOf(m.MIME), msg.body())
	}
}
