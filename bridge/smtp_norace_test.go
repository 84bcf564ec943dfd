//go:build !race

package bridge

// smtpLargeSize is the size of the long-lines message test (see
// smtp_race_test.go).
const smtpLargeSize = 30 << 20
