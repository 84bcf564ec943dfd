package bridge

import (
	"bytes"
	"testing"
)

// FuzzSMTPLoginServer drives the server side of AUTH LOGIN with arbitrary
// client responses (split at NUL; a leading 0xff byte means "no initial
// response"). It must ask only for the user name and the password, check
// the credentials at most once and with exactly what was sent, and refuse
// anything after the exchange is over.
func FuzzSMTPLoginServer(f *testing.F) {
	f.Add([]byte("\xffalice@example.com\x00secret"))
	f.Add([]byte("alice@example.com\x00secret"))
	f.Add([]byte("\xff\x00\x00\x00\x00"))
	f.Add([]byte("a\x00b\x00c\x00d"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		noIR := len(data) > 0 && data[0] == 0xff
		if noIR {
			data = data[1:]
		}
		steps := bytes.Split(data, []byte{0})
		var checks [][2]string
		l := &loginServer{check: func(user, pass string) error {
			checks = append(checks, [2]string{user, pass})
			return nil
		}}
		var sent [][]byte
		first := true
		done := false
		for i := 0; i < len(steps)+1 && i < 16; i++ {
			var resp []byte
			switch {
			case first && noIR:
				resp = nil
			case len(steps) > 0:
				resp, steps = steps[0], steps[1:]
			default:
				resp = []byte{}
			}
			first = false
			if resp != nil {
				sent = append(sent, resp)
			}
			ch, d, err := l.Next(resp)
			if done {
				if err == nil {
					t.Fatal("a response after the end of the exchange was accepted")
				}
				break
			}
			if d {
				done = true
				continue
			}
			if err != nil {
				t.Fatalf("error before the end: %v", err)
			}
			if c := string(ch); c != "Username:" && c != "Password:" {
				t.Fatalf("unexpected challenge %q", c)
			}
		}
		if len(checks) > 1 {
			t.Fatalf("credentials checked %d times", len(checks))
		}
		if len(checks) == 1 {
			if len(sent) < 2 || checks[0][0] != string(sent[0]) || checks[0][1] != string(sent[1]) {
				t.Fatalf("checked %q, sent %q", checks[0], sent)
			}
		}
	})
}
