package integration

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestMsmtp sends one message with msmtp over STARTTLS and one over
// implicit TLS through the bridge, and finds each in the sink with a
// byte-identical body.
func TestMsmtp(t *testing.T) {
	t.Parallel()
	msmtp := needTool(t, "msmtp", "msmtp")
	e := newEnv(t)
	home := clientDir(t)
	for _, c := range []struct {
		name     string
		port     int
		starttls string
	}{
		{"starttls", portOf(e.ep.smtp), "on"},
		{"implicit", portOf(e.ep.smtps), "off"},
	} {
		rc := fmt.Sprintf(`defaults
tls on
tls_starttls %s
tls_trust_file %s
timeout 30

account bridge
host 127.0.0.1
port %d
auth plain
user %s
password %s
from %s

account default : bridge
`, c.starttls, e.caFile, c.port, e.user, e.password, e.user)
		rcFile := filepath.Join(home, "msmtprc-"+c.name)
		writeFile(t, rcFile, []byte(rc), 0o600)
		const rcpt = "msmtp@example.net"
		msg := newMessage(e.user, rcpt, "msmtp over "+c.name, "Sent by msmtp.\r\n.\r\nTrailing text after a lone dot.\r\n")
		mustRun(t, home, nil, msg.raw, msmtp, "-C", rcFile, "--", rcpt)
		e.sink.checkDelivered(t, msg, rcpt)
	}
}
