// Package integration proves the bridge with real servers and real clients:
// Debian's Dovecot started by the tests as the upstream (IMAP and POP3 over
// implicit TLS, submission with STARTTLS, XOAUTH2 checked against the
// in-process identity platform's introspection endpoint), a small SMTP sink
// behind Dovecot's submission service, Debian's tinyproxy and microsocks as
// the proxies in front of it, and curl, Python, mutt, mbsync, fetchmail,
// msmtp and swaks talking to the bridge.
//
// Everything lives in the tests; this file only names the package. The
// tests skip, naming the missing program, when Dovecot or a client is not
// installed. Run them with
//
//	go test -run . -v ./integration/
package integration
