package tokens

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewPasswordShape(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){6}$`)
	seen := map[string]bool{}
	for range 200 {
		p, err := NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(p) {
			t.Fatalf("password %q is not 7 dash-separated groups of 4 base32 characters", p)
		}
		// 28 characters of 5 bits each.
		if bits := 5 * len(strings.ReplaceAll(p, "-", "")); bits < 128 {
			t.Fatalf("only %d bits", bits)
		}
		if seen[p] {
			t.Fatal("NewPassword repeated itself")
		}
		seen[p] = true
	}
}

func TestPasswordEqual(t *testing.T) {
	stored, err := NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewPassword()
	cases := []struct {
		given string
		want  bool
	}{
		{stored, true},
		{strings.ToUpper(stored), true},
		{strings.ReplaceAll(stored, "-", ""), true},
		{strings.ReplaceAll(strings.ToUpper(stored), "-", " "), true},
		{other, false},
		{stored[:len(stored)-1], false},
		{stored + "a", false},
		{"", false},
	}
	for _, c := range cases {
		if got := PasswordEqual(stored, c.given); got != c.want {
			t.Errorf("PasswordEqual(stored, %q) = %v, want %v", c.given, got, c.want)
		}
	}
	// No stored password means no login, whatever is sent.
	for _, given := range []string{"", "-", "anything"} {
		if PasswordEqual("", given) || PasswordEqual("-", given) {
			t.Errorf("an empty stored password accepted %q", given)
		}
	}
}
