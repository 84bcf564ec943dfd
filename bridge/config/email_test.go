package config

import (
	"strings"
	"testing"
)

// TestAccountEmailControlCharacters: an account name with a control
// character is refused, since it would reach protocol replies and logs.
func TestAccountEmailControlCharacters(t *testing.T) {
	for _, email := range []string{`a\u0001b@example.com`, `a@exam\u0000ple.com`, `a@example.com\u007f`, `a\u001b[31m@example.com`} {
		_, err := parse("c.toml", []byte("[[account]]\nemail = \""+email+"\"\nclient_id = \"x\"\n"))
		if err == nil || !strings.Contains(err.Error(), "account[0].email") {
			t.Errorf("email %s: %v, want a refusal", email, err)
		}
	}
	if _, err := parse("c.toml", []byte("[[account]]\nemail = \"jörg@exämple.com\"\nclient_id = \"x\"\n")); err != nil {
		t.Errorf("a UTF-8 address was refused: %v", err)
	}
}
