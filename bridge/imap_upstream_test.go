package bridge

import (
	"bufio"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// scriptedUpstream answers the bridge's login with fixed lines: for each
// line the bridge sends, the next entry of replies is written back.
func scriptedUpstream(t *testing.T, greeting string, replies ...string) (got chan []string, run func() ([]string, error)) {
	t.Helper()
	bridgeSide, upSide := tcpPair(t)
	got = make(chan []string, 1)
	go func() {
		var lines []string
		br := bufio.NewReader(upSide)
		upSide.SetDeadline(time.Now().Add(5 * time.Second))
		upSide.Write([]byte(greeting))
		for _, r := range replies {
			l, err := br.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, l)
			upSide.Write([]byte(r))
		}
		got <- lines
	}()
	return got, func() ([]string, error) {
		bridgeSide.SetDeadline(time.Now().Add(5 * time.Second))
		return IMAPUpstreamLogin(bridgeSide, bufio.NewReader(bridgeSide), "shared@example.com", "TOKEN123")
	}
}

func TestIMAPUpstreamLoginChallengeThenNO(t *testing.T) {
	got, run := scriptedUpstream(t, "* OK The Microsoft Exchange IMAP4 service is ready.\r\n",
		"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
		"B1 NO AUTHENTICATE failed.\r\n")
	_, err := run()
	var f *diag.Failure
	if !errors.As(err, &f) || f.Stage != "auth" || f.Text != "AUTHENTICATE failed." {
		t.Fatalf("err = %v, want an auth failure with the upstream's text", err)
	}
	if strings.Contains(err.Error(), "TOKEN123") {
		t.Error("the error holds the token")
	}
	lines := <-got
	if len(lines) != 2 || lines[1] != "\r\n" {
		t.Fatalf("the bridge sent %q; want the AUTHENTICATE line then an empty line", lines)
	}
	ir, ok := strings.CutPrefix(strings.TrimSuffix(lines[0], "\r\n"), "B1 AUTHENTICATE XOAUTH2 ")
	raw, err := base64.StdEncoding.DecodeString(ir)
	if !ok || err != nil || string(raw) != "user=shared@example.com\x01auth=Bearer TOKEN123\x01\x01" {
		t.Errorf("AUTHENTICATE line %q is not SASL-IR XOAUTH2 for the mailbox", lines[0])
	}
}

func TestIMAPUpstreamLoginAsksForCapabilities(t *testing.T) {
	got, run := scriptedUpstream(t, "* OK ready\r\n",
		"B1 OK AUTHENTICATE completed.\r\n",
		"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN SASL-IR IDLE MOVE\r\nB2 OK CAPABILITY completed.\r\n")
	caps, err := run()
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if strings.Join(postLoginCaps(caps), " ") != "IMAP4 IMAP4rev1 IDLE MOVE" {
		t.Errorf("caps %q", caps)
	}
	if lines := <-got; len(lines) != 2 || lines[1] != "B2 CAPABILITY\r\n" {
		t.Errorf("the bridge sent %q", lines)
	}
}

// TestIMAPUpstreamLoginNotConnectedBye: a BYE right after the login, or
// instead of its tagged reply, is the upstream's refusal with its words
// kept, diagnosed as the BAD to the first mailbox command is.
func TestIMAPUpstreamLoginNotConnectedBye(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []string
		stage   diag.Stage
	}{
		{"after the OK", []string{"B1 OK AUTHENTICATE completed.\r\n", "* BYE User is authenticated but not connected.\r\n"}, diag.StageMailbox},
		{"instead of the OK", []string{"* BYE User is authenticated but not connected.\r\n"}, diag.StageAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, run := scriptedUpstream(t, "* OK The Microsoft Exchange IMAP4 service is ready.\r\n", tc.replies...)
			_, err := run()
			var f *diag.Failure
			if !errors.As(err, &f) || f.Proto != IMAP || f.Stage != tc.stage || f.Text != "User is authenticated but not connected." {
				t.Fatalf("err = %#v", err)
			}
			if d := diag.Classify(err, diag.Account{Email: alice}, time.Now()); d.ID != "imap-not-connected" || d.Raw != f.Text {
				t.Errorf("diagnosis %s, raw %q", d.ID, d.Raw)
			}
		})
	}
}

func TestIMAPUpstreamLoginGreetingBye(t *testing.T) {
	_, run := scriptedUpstream(t, "* BYE [UNAVAILABLE] Server busy\r\n")
	_, err := run()
	var f *diag.Failure
	if !errors.As(err, &f) || f.Stage != "greeting" || f.RespCode != "UNAVAILABLE" || f.Text != "Server busy" {
		t.Fatalf("err = %#v", err)
	}
	if OutcomeOf(err) != OutcomeUnavailable {
		t.Errorf("kind %v, want unavailable", OutcomeOf(err))
	}
}

func TestSplitRespCode(t *testing.T) {
	for in, want := range map[string][2]string{
		"[AUTHENTICATIONFAILED] AUTHENTICATE failed.": {"AUTHENTICATIONFAILED", "AUTHENTICATE failed."},
		"[capability IMAP4rev1 IDLE] Logged in":       {"CAPABILITY", "Logged in"},
		"AUTHENTICATE failed.":                        {"", "AUTHENTICATE failed."},
		"[broken":                                     {"", "[broken"},
	} {
		code, text := splitRespCode(in)
		if code != want[0] || text != want[1] {
			t.Errorf("splitRespCode(%q) = %q, %q", in, code, text)
		}
	}
}
