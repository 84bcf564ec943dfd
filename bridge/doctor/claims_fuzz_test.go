package doctor

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseClaims feeds arbitrary access tokens to the JWT claim reader
// (the token comes from the identity platform, so it is untrusted input):
// it must never panic, must call only a three-part token a JWT, and must
// read back the user of a token made from the fuzzed claims.
func FuzzParseClaims(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJ1cG4iOiJhQGIudGVzdCIsInNjcCI6IklNQVAuQWNjZXNzQXNVc2VyLkFsbCIsImV4cCI6MTgwMDAwMDAwMH0.c2ln", "a@b.test")
	f.Add("EwB0A8l6BAAU.opaque", "")
	f.Add("a.b.c", "x")
	f.Add("..", "\x00")
	f.Add("x.eyJhdWQiOlsiYSIsImIiXSwiZXhwIjoiMSJ9.y", "user@example.com")
	f.Fuzz(func(t *testing.T, token, user string) {
		if _, ok := ParseClaims(token); ok && strings.Count(token, ".") != 2 {
			t.Fatalf("%q read as a JWT", token)
		}
		if !utf8.ValidString(user) {
			return
		}
		body, err := json.Marshal(map[string]any{"upn": user, "scp": "SMTP.Send", "exp": 1800000000})
		if err != nil {
			return
		}
		tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(body) + ".sig"
		c, ok := ParseClaims(tok)
		if !ok || c.User != user || len(c.Scopes) != 1 || c.Expiry.Unix() != 1800000000 {
			t.Fatalf("made from user %q: got %+v ok=%v", user, c, ok)
		}
	})
}
