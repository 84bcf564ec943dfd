package bridge

import (
	"strings"
	"testing"
)

// feed gives w the stream in chunks of size n.
func feed(w *imapWatch, stream string, n int) {
	for len(stream) > 0 {
		k := min(n, len(stream))
		w.Upstream([]byte(stream[:k]))
		stream = stream[k:]
	}
}

func TestIMAPWatchFindsByeAcrossChunks(t *testing.T) {
	h := newHarness(t)
	acct := h.account(alice)
	prefix := strings.Repeat("* 1 FETCH (FLAGS (\\Seen))\r\n", 100)
	for _, n := range []int{1, 7, 64, 511, 512, 513, 4096} {
		for _, tc := range []struct {
			stream string
			want   string
		}{
			{prefix + "* BYE Session invalidated - AccessTokenExpired\r\n", "imap-token-expired"},
			{prefix + "* BYE Microsoft Exchange Server IMAP4 server signing off.\r\na9 OK LOGOUT completed.\r\n", ""},
			{prefix + "a2 BAD User is authenticated but not connected.\r\n", ""}, // too late to be the first command's
			{"a1 BAD User is authenticated but not connected.\r\n* BYE Connection closed. 14\r\n", "imap-not-connected"},
			// The shape some mailboxes send instead, right after the login.
			{"* BYE User is authenticated but not connected.\r\n", "imap-not-connected"},
			{"* bye [UNAVAILABLE] User is authenticated but not connected.\r\n", "imap-not-connected"},
			{"* OK User is authenticated but not connected.\r\n", ""},
		} {
			h.B.Record(acct, IMAP, nil) // clear
			w := &imapWatch{b: h.B, acct: acct}
			feed(w, tc.stream, n)
			w.Ended()
			if got := h.lastIMAP(alice); got != tc.want {
				t.Errorf("chunks of %d, stream ending %q: diagnosis %q, want %q", n, tc.stream[max(0, len(tc.stream)-60):], got, tc.want)
			}
		}
	}
}
