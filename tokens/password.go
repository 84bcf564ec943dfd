package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"strings"
)

// Local passwords are 28 base32 characters (140 random bits) shown in 7
// groups of 4, e.g. "k3vq-7xma-...": lowercase letters and the digits 2-7
// only, so there is no 0/O or 1/l to mistype.
const (
	passwordGroups   = 7
	passwordGroupLen = 4
)

var passwordEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewPassword returns a fresh local password for mail clients, with at
// least 128 bits from crypto/rand, in dash-separated groups.
func NewPassword() (string, error) {
	n := passwordGroups * passwordGroupLen
	raw := make([]byte, (n*5+7)/8)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := passwordEncoding.EncodeToString(raw)[:n]
	var b strings.Builder
	for i := 0; i < n; i += passwordGroupLen {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i : i+passwordGroupLen])
	}
	return b.String(), nil
}

// PasswordEqual reports whether given matches the stored local password,
// ignoring case, dashes and spaces. It compares SHA-256 digests in constant
// time, so neither the content nor the length of stored leaks through
// timing. An empty stored password matches nothing.
func PasswordEqual(stored, given string) bool {
	ns := normalizePassword(stored)
	a := sha256.Sum256([]byte(ns))
	b := sha256.Sum256([]byte(normalizePassword(given)))
	eq := subtle.ConstantTimeCompare(a[:], b[:]) == 1
	return eq && ns != ""
}

func normalizePassword(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(s))
}
