//go:build race

package bridge

// smtpLargeSize is the size of the long-lines message test. The race
// detector makes go-smtp's byte-at-a-time DATA reader some fifty times
// slower, so under it the test sends less; without it, the full 30 MB.
const smtpLargeSize = 6 << 20
