package bridge

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

const outlookUser = "bob@outlook.com"

// outlookPath is where an Outlook.com user switches IMAP and POP on.
const outlookPath = "Outlook.com > Settings > Mail > Forwarding and IMAP"

// TestPersonalIMAPAndPOPOff: an Outlook.com account (tenant consumers,
// opaque tokens) whose IMAP and POP are switched off is told the
// Outlook.com settings path, in the client's error, the log and the
// status, and never an administrator's PowerShell line.
func TestPersonalIMAPAndPOPOff(t *testing.T) {
	t.Cleanup(leakCheck(t))
	h := newHarnessWith(t, harnessOptions{Personal: true}, outlookUser)
	if !h.account(outlookUser).Personal() {
		t.Fatal("the consumers account is not personal")
	}
	h.IMAP.SetMode(bridgetest.Disabled)
	pop, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Mode: bridgetest.Disabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pop.Close() })
	h.setServer(POP3, pop.Addr())

	addr, _ := h.startIMAP(FrontOptions{}, false)
	c := h.dialIMAP(addr, "plain", nil)
	err = c.Login(outlookUser, h.password(outlookUser)).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) {
		t.Fatalf("login: %v, want a NO", err)
	}
	if ie.Code != imap.ResponseCodeAuthenticationFailed {
		t.Errorf("code [%s], want [AUTHENTICATIONFAILED]: an Outlook.com account has no administrator", ie.Code)
	}
	if !strings.Contains(ie.Text, outlookPath) || strings.Contains(ie.Text, "Set-CASMailbox") {
		t.Errorf("IMAP reply %q lacks the Outlook.com path", ie.Text)
	}

	srv := NewPOP3Server(h.B, FrontOptions{})
	ln := h.listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln, false)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	pc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(pc)
	br.ReadString('\n')
	pc.Write([]byte("USER " + outlookUser + "\r\nPASS " + h.password(outlookUser) + "\r\n"))
	br.ReadString('\n')
	r, _ := br.ReadString('\n')
	if !strings.HasPrefix(r, "-ERR [AUTH] ") || !strings.Contains(r, outlookPath) {
		t.Errorf("POP3 reply %q lacks the Outlook.com path", r)
	}

	st := h.B.Status().Accounts[0]
	for p, want := range map[Proto]string{IMAP: "Let devices and apps use IMAP", POP3: "Let devices and apps use POP"} {
		d := st.Last[p]
		if !strings.Contains(d.Fix, want) || strings.Contains(d.Fix, "Set-CASMailbox") || !strings.Contains(d.Title, outlookPath) {
			t.Errorf("%s status: %q / %q", p, d.Title, d.Fix)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "Let devices and apps use IMAP") || !strings.Contains(logs, "Let devices and apps use POP") || strings.Contains(logs, "Set-CASMailbox") {
		t.Errorf("the log does not give the Outlook.com settings, or gives an Exchange command:\n%s", logs)
	}
	h.checkLogs()
}
