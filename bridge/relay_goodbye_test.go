package bridge

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

func TestReplyLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		imap    bool
		chunks  []string
		between bool
	}{
		{"nothing yet", true, nil, true},
		{"a whole line", true, []string{"* 3 EXISTS\r\n"}, true},
		{"half a line", true, []string{"* 3 EXI"}, false},
		{"a line in pieces", true, []string{"* 3 EXI", "STS\r", "\n"}, true},
		{"a literal announced", true, []string{"* 1 FETCH (BODY[] {12}\r\n"}, false},
		{"inside a literal, at a CRLF", true, []string{"* 1 FETCH (BODY[] {12}\r\n", "Subject: x\r\n"}, false},
		{"after the literal, line not ended", true, []string{"* 1 FETCH (BODY[] {12}\r\nSubject: x\r\n"}, false},
		{"after the literal and its line", true, []string{"* 1 FETCH (BODY[] {12}\r\nSubject: x\r\n)\r\n"}, true},
		{"a literal split everywhere", true, []string{"* 1 FETCH (BODY[] {1", "2}", "\r", "\nSubject", ": x\r\n", ")", "\r\n"}, true},
		{"an empty literal", true, []string{"* 1 FETCH (BODY[] {0}\r\n"}, false},
		{"an empty literal, line ended", true, []string{"* 1 FETCH (BODY[] {0}\r\n)\r\n"}, true},
		{"a long line before the literal", true, []string{"* 1 FETCH (" + strings.Repeat("X", 100) + " {5}\r\nab"}, false},
		{"literal8", true, []string{"* 1 FETCH (BINARY[] ~{3}\r\n\r\n\n)\r\n"}, true},
		{"braces in a quoted string", true, []string{"* OK \"{5}\" done\r\n"}, true},
		{"POP3: {n} means nothing", false, []string{"+OK {5}\r\n"}, true},
		{"POP3: half a line", false, []string{"+OK 2 me"}, false},
		{"tagged reply", true, []string{"a1 OK [READ-WRITE] SELECT completed\r\n"}, true},
	} {
		l := &replyLines{imap: tc.imap}
		for _, c := range tc.chunks {
			l.feed([]byte(c))
		}
		if got := l.between(); got != tc.between {
			t.Errorf("%s: between = %v, want %v (literal %d, midLine %v)", tc.name, got, tc.between, l.literal, l.midLine)
		}
	}
}

// TestRelayGoodbye: a relayed IMAP session gets its goodbye only between
// the upstream's replies (never inside a literal) and once it has been
// quiet; the last call at the end of the grace period does not wait for
// quiet. Then the upstream is closed and the client sees the goodbye and
// the end of the connection.
func TestRelayGoodbye(t *testing.T) {
	client, clientSide := tcpPair(t)
	upSide, upstream := tcpPair(t)
	r := newRelay(clientSide, upSide, time.Minute, &replyLines{imap: true})
	done := make(chan relayStats, 1)
	go func() { done <- r.run(nil, nil, nil) }()
	br := bufio.NewReader(client)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))

	upstream.Write([]byte("* 1 FETCH (BODY[] {10}\r\nabc"))
	want := "* 1 FETCH (BODY[] {10}\r\nabc"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("client read %q, %v", got, err)
	}
	time.Sleep(relayQuiet + 50*time.Millisecond)
	if r.goodbye(imapShutdownBye, false) || r.goodbye(imapShutdownBye, true) {
		t.Fatal("goodbye written inside a literal")
	}
	upstream.Write([]byte("defghij)\r\n"))
	if l, _ := br.ReadString('\n'); l != "defghij)\r\n" {
		t.Fatalf("client read %q", l)
	}
	if r.goodbye(imapShutdownBye, false) {
		t.Fatal("goodbye written before the session was quiet")
	}
	// The relay may still hold the client's side for the write the client
	// has just read; shutdown asks again every goodbyeEvery, and so does
	// this.
	if !eventually(2*time.Second, func() bool { return r.goodbye(imapShutdownBye, true) }) {
		t.Fatal("the last goodbye was not written between replies")
	}
	if l, _ := br.ReadString('\n'); l != imapShutdownBye {
		t.Errorf("client read %q, want the goodbye", l)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the goodbye: %v, want EOF", err)
	}
	upstream.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := upstream.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("upstream after the goodbye: %v, want EOF", err)
	}
	client.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after the goodbye")
	}
}

// TestRelayGoodbyeLingers: a client that keeps its connection open after
// the goodbye is closed after lingerTime; what it sends meanwhile is read
// and dropped, so the close does not reset the connection under the
// goodbye.
func TestRelayGoodbyeLingers(t *testing.T) {
	client, clientSide := tcpPair(t)
	upSide, upstream := tcpPair(t)
	r := newRelay(clientSide, upSide, time.Minute, &replyLines{imap: true})
	// The goodbye comes before the relay starts: its deadline holds.
	time.Sleep(relayQuiet)
	if !r.goodbye(imapShutdownBye, false) {
		t.Fatal("no goodbye to a quiet session")
	}
	done := make(chan relayStats, 1)
	go func() { done <- r.run(nil, nil, nil) }()
	client.Write([]byte("a1 NOOP\r\n"))
	start := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running long after the goodbye")
	}
	if d := time.Since(start); d > lingerTime+time.Second {
		t.Errorf("relay ended %v after the goodbye", d)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(client).ReadString('\n'); l != imapShutdownBye {
		t.Errorf("client read %q, %v", l, err)
	}
	upstream.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := upstream.Read(make([]byte, 64)); n != 0 {
		t.Error("bytes sent after the goodbye reached the upstream")
	}
}
