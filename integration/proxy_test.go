package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/doctor"
	"github.com/mailbridge/bridge/tokens"
)

// setProxy writes proxy as the bridge's [network] proxy into its config.
func setProxy(t *testing.T, files *bridgeFiles, proxy string) {
	t.Helper()
	data, err := os.ReadFile(files.config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if i := strings.Index(text, "\n[network]\n"); i >= 0 {
		text = text[:i]
	}
	writeFile(t, files.config, []byte(text+fmt.Sprintf("\n[network]\nproxy = %q\n", proxy)), 0o600)
}

// reloadConfig makes the running in-process bridge read its config again,
// as SIGHUP does.
func reloadConfig(t *testing.T, e *env) {
	t.Helper()
	cfg, err := config.Load(e.files.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

// storeFor opens the bridge's file token store.
func storeFor(t *testing.T, files *bridgeFiles) tokens.Store {
	t.Helper()
	st, err := tokens.OpenStore("file", filepath.Join(files.dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// imapLineLogin logs in at the bridge's plain IMAP listener with LOGIN and
// returns the tagged reply.
func imapLineLogin(t *testing.T, e *env) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.ep.imap, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a1 LOGIN %s %s\r\n", e.user, e.password)
	for {
		line, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(line, "a1 ") {
			fmt.Fprintf(c, "a2 LOGOUT\r\n")
			return strings.TrimRight(line, "\r\n")
		}
	}
}

// lastDiagnosis is the account's last recorded diagnosis for p.
func lastDiagnosis(e *env, p bridge.Proto) (id, raw string) {
	for _, a := range e.srv.Bridge().Status().Accounts {
		if a.Email == e.user {
			return a.Last[p].ID, a.Last[p].Raw
		}
	}
	return "", ""
}

// mailThroughBridge reads with IMAP and POP3 and sends with SMTP through
// the bridge with curl, as TestBinaryServe does: a fetch compared with the
// seed, a POP3 retrieval, a send found in the sink.
func mailThroughBridge(t *testing.T, e *env, curl, how string) {
	t.Helper()
	home := clientDir(t)
	got := mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "imap://"+e.ep.imap+"/INBOX;MAILINDEX=1")...)
	if !bytes.Equal(got.stdout, e.seed[0].raw) {
		t.Errorf("IMAP fetch through %s: %d bytes, want the %d seeded", how, len(got.stdout), len(e.seed[0].raw))
	}
	pop := mustRun(t, home, nil, nil, curl, append(curlBase(e), "pop3s://"+e.ep.pop3s+"/2")...)
	if s := subjectOf(pop.stdout); s != e.seed[1].subject {
		t.Errorf("POP3 RETR through %s: subject %q, want %q", how, s, e.seed[1].subject)
	}
	const rcpt = "proxied@example.net"
	msg := newMessage(e.user, rcpt, "Through "+how, "Sent by curl through the bridge and "+how+".\n")
	file := filepath.Join(home, "msg.eml")
	writeFile(t, file, msg.raw, 0o600)
	mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "--mail-from", e.user, "--mail-rcpt", rcpt,
		"--upload-file", file, "smtp://"+e.ep.smtp)...)
	e.sink.checkDelivered(t, msg, rcpt)
}

// upstreamAddrs are the addresses the bridge reaches: Dovecot's IMAP,
// POP3 and submission, and the identity platform.
func upstreamAddrs(up *upstream) []string {
	return []string{up.dc.imaps, up.dc.pop3s, up.dc.subm, strings.TrimPrefix(up.idp.URL(), "http://")}
}

// TestHTTPProxy: the bridge reaches Dovecot's IMAP, POP3 and submission
// and the identity platform through tinyproxy with CONNECT: curl reads and
// sends mail through the bridge, and tinyproxy's log shows one tunnel to
// each. `bridge doctor` shows the hop: the proxy reachable, then each
// server's tunnel with tinyproxy's answer, then the logins.
func TestHTTPProxy(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	up := startUpstream(t, tokensOptions())
	tp := startTinyproxy(t, tinyproxyOptions{connectTo: upstreamAddrs(up)})
	files := writeBridgeFiles(t, up)
	setProxy(t, files, "http://"+tp.addr)
	e := startBridgeFiles(t, up, files)

	mailThroughBridge(t, e, curl, "tinyproxy")
	log := tp.log()
	for _, a := range upstreamAddrs(up) {
		if !strings.Contains(log, "CONNECT "+a+" HTTP/1.1") {
			t.Errorf("tinyproxy's log shows no tunnel to %s:\n%s", a, log)
		}
	}
	if n := strings.Count(log, "Established connection to host"); n < 4 {
		t.Errorf("tinyproxy established %d tunnels, want at least 4 (token, IMAP, POP3, SMTP)", n)
	}

	rep, code := runDoctor(t, buildBridge(t), files)
	if code != 0 {
		t.Errorf("bridge doctor through tinyproxy exited %d", code)
	}
	if s := doctorStep(t, rep, "proxy"); s.Status != doctor.Pass || !strings.Contains(s.Detail, "the HTTP proxy "+tp.addr+" (no user name)") {
		t.Errorf("proxy step: %s %q", s.Status, s.Detail)
	}
	for _, p := range []struct{ step, addr string }{{"imap-reach", up.dc.imaps}, {"pop3-reach", up.dc.pop3s}, {"smtp-reach", up.dc.subm}} {
		s := doctorStep(t, rep, p.step)
		if s.Status != doctor.Pass || !strings.Contains(s.Detail, "opened a tunnel to "+p.addr) || !strings.Contains(s.Detail, `"HTTP/1.0 200 Connection established"`) {
			t.Errorf("%s: %s %q", p.step, s.Status, s.Detail)
		}
	}
	for _, name := range []string{"refresh", "imap-tls", "imap-mailbox", "pop3-login", "smtp-login"} {
		if s := doctorStep(t, rep, name); s.Status != doctor.Pass {
			t.Errorf("step %s through tinyproxy: %s %q", name, s.Status, s.Detail)
		}
	}
}

// TestHTTPProxyRefusesConnect: tinyproxy allows CONNECT to the identity
// platform's port only and answers "403 Access violation" for the mail
// ports. Every mail client hears the proxy's refusal as a temporary
// failure naming the proxy, not Microsoft; the status keeps the
// diagnosis with tinyproxy's words, and `bridge doctor` fails the reach
// step with the fix for the proxy.
func TestHTTPProxyRefusesConnect(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, tokensOptions())
	tp := startTinyproxy(t, tinyproxyOptions{connectTo: []string{strings.TrimPrefix(up.idp.URL(), "http://")}})
	files := writeBridgeFiles(t, up)
	setProxy(t, files, "http://"+tp.addr)
	e := startBridgeFiles(t, up, files)

	const title = "The proxy refused the connection to the mail server; run `bridge doctor " + testUser + "` for the fix"
	if got := imapLineLogin(t, e); got != "a1 NO [UNAVAILABLE] "+title {
		t.Errorf("IMAP login: %q", got)
	}
	if got := lineLogin(t, e.ep.pop3, bridge.POP3, e.user, e.password); got != "-ERR [SYS/TEMP] "+title {
		t.Errorf("POP3 login: %q", got)
	}
	if got := lineLogin(t, e.ep.smtp, bridge.SMTP, e.user, e.password); !strings.HasPrefix(got, "454 4.7.0 ") || !strings.HasSuffix(got, "-- "+title) {
		t.Errorf("SMTP login: %q", got)
	}
	for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
		if id, raw := lastDiagnosis(e, p); id != "proxy-refused" || !strings.Contains(raw, "403 Access violation") {
			t.Errorf("%s diagnosis %q %q, want proxy-refused with tinyproxy's answer", p, id, raw)
		}
	}
	if log := tp.log(); !strings.Contains(log, "CONNECT "+up.dc.imaps+" HTTP/1.1") {
		t.Errorf("tinyproxy's log shows no CONNECT to IMAP:\n%s", log)
	}

	rep, code := runDoctor(t, buildBridge(t), files)
	if code != 1 {
		t.Errorf("bridge doctor exited %d, want 1", code)
	}
	if s := doctorStep(t, rep, "refresh"); s.Status != doctor.Pass {
		t.Errorf("refresh through the proxy: %s %q", s.Status, s.Detail)
	}
	_, port, _ := net.SplitHostPort(up.dc.imaps)
	s := doctorStep(t, rep, "imap-reach")
	if s.Status != doctor.Fail || s.Diagnosis == nil || s.Diagnosis.ID != "proxy-refused" ||
		!strings.Contains(s.Detail, "403 Access violation") || !strings.Contains(s.Diagnosis.Fix, "ConnectPort "+port) {
		t.Errorf("imap-reach: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if s := doctorStep(t, rep, "imap-tls"); s.Status != doctor.Skipped {
		t.Errorf("imap-tls after the refused tunnel: %s", s.Status)
	}
}

// TestHTTPProxyAuth: tinyproxy wants Basic credentials. Without a user
// the bridge gets its 407; with a user but no stored password it does not
// ask at all and says how to store one; with a wrong one tinyproxy
// refuses (with 401); each is the proxy's diagnosis. `bridge
// proxy-password` stores the password, and the next login passes.
func TestHTTPProxyAuth(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	up := startUpstream(t, tokensOptions())
	tp := startTinyproxy(t, tinyproxyOptions{connectTo: upstreamAddrs(up), user: "ann", pass: "pr0xy-s3cret"})
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)
	setProxy(t, files, "http://"+tp.addr)
	e := startBridgeFiles(t, up, files)
	st := storeFor(t, files)
	const title = "The proxy wants a user name and password; run `bridge doctor " + testUser + "` for the fix"

	refused := func(what, answer string) {
		t.Helper()
		if got := imapLineLogin(t, e); got != "a1 NO [UNAVAILABLE] "+title {
			t.Errorf("%s: IMAP login %q", what, got)
		}
		if id, raw := lastDiagnosis(e, bridge.IMAP); id != "proxy-auth-required" || !strings.Contains(raw, answer) {
			t.Errorf("%s: diagnosis %q %q, want proxy-auth-required with %q", what, id, raw, answer)
		}
	}
	refused("no user", "407 Proxy Authentication Required")

	setProxy(t, files, "http://ann@"+tp.addr)
	reloadConfig(t, e)
	before := strings.Count(tp.log(), "CONNECT ")
	refused("no stored password", "run `bridge proxy-password "+testUser+"`")
	if after := strings.Count(tp.log(), "CONNECT "); after != before {
		t.Errorf("the bridge asked tinyproxy without a password (%d requests)", after-before)
	}

	if err := st.Put("proxy:ann@"+tp.addr, tokens.Entry{Password: "wrong-s3cret"}); err != nil {
		t.Fatal(err)
	}
	refused("wrong password", "401 Unauthorized")

	out := runTool(t, files.dir, nil, []byte("pr0xy-s3cret\n"), bin, "--config", files.config, "proxy-password")
	if out.err != nil || !strings.Contains(string(out.stdout), "Stored the password of proxy user ann at "+tp.addr) {
		t.Fatalf("bridge proxy-password: %v\n%s\n%s", out.err, out.stdout, out.stderr)
	}
	if strings.Contains(string(out.stdout)+string(out.stderr), "pr0xy-s3cret") {
		t.Error("bridge proxy-password printed the password")
	}
	e.srv.Bridge().Reload() // what the command's reload request does for `bridge serve`
	mailThroughBridge(t, e, curl, "tinyproxy with a password")
	if strings.Contains(string(e.logs.Bytes()), "pr0xy-s3cret") {
		t.Error("the proxy password reached the bridge's log")
	}
}

// TestSOCKS5Proxy: the same mail and token traffic through microsocks, a
// SOCKS5 proxy that wants a user name and password (RFC 1929), with the
// password from the store; microsocks' log shows a connection to each
// server. A wrong password and a server the proxy cannot reach are the
// SOCKS proxy's diagnoses, the latter with RFC 1928's meaning of its
// reply.
func TestSOCKS5Proxy(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	up := startUpstream(t, tokensOptions())
	ms := startMicrosocks(t, "ann", "s0cks-s3cret")
	files := writeBridgeFiles(t, up)
	setProxy(t, files, "socks5://ann@"+ms.addr)
	st := storeFor(t, files)
	key := "proxy:ann@" + ms.addr
	if err := st.Put(key, tokens.Entry{Password: "s0cks-s3cret"}); err != nil {
		t.Fatal(err)
	}
	e := startBridgeFiles(t, up, files)

	mailThroughBridge(t, e, curl, "microsocks")
	log := ms.log()
	for _, a := range upstreamAddrs(up) {
		if !strings.Contains(log, "connected to "+a) {
			t.Errorf("microsocks' log shows no connection to %s:\n%s", a, log)
		}
	}

	if err := st.Put(key, tokens.Entry{Password: "wrong-s3cret"}); err != nil {
		t.Fatal(err)
	}
	e.srv.Bridge().Reload()
	if got := lineLogin(t, e.ep.pop3, bridge.POP3, e.user, e.password); !strings.HasPrefix(got, "-ERR [SYS/TEMP] The proxy wants a user name and password") {
		t.Errorf("POP3 login with a wrong SOCKS password: %q", got)
	}
	if id, raw := lastDiagnosis(e, bridge.POP3); id != "proxy-auth-required" || !strings.Contains(raw, "RFC 1929 status") || strings.Contains(raw, "wrong-s3cret") {
		t.Errorf("diagnosis %q %q, want proxy-auth-required with the RFC 1929 status", id, raw)
	}

	if err := st.Put(key, tokens.Entry{Password: "s0cks-s3cret"}); err != nil {
		t.Fatal(err)
	}
	e.srv.Bridge().Reload()
	closed := freePorts(t, 1)[0]
	data, err := os.ReadFile(files.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.config, bytes.Replace(data, []byte(fmt.Sprintf("pop3 = %q", up.dc.pop3s)), []byte(fmt.Sprintf("pop3 = \"127.0.0.1:%d\"", closed)), 1), 0o600)
	reloadConfig(t, e)
	if got := lineLogin(t, e.ep.pop3, bridge.POP3, e.user, e.password); !strings.HasPrefix(got, "-ERR [SYS/TEMP] The SOCKS proxy refused the connection to the mail server") {
		t.Errorf("POP3 login to a closed port through SOCKS: %q", got)
	}
	if id, raw := lastDiagnosis(e, bridge.POP3); id != "socks-refused" || !strings.Contains(raw, "reply 5 (connection refused by the destination host)") {
		t.Errorf("diagnosis %q %q, want socks-refused with reply 5's meaning", id, raw)
	}
}
