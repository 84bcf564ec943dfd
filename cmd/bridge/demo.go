package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// demoUser is the demo account; the .test domain never resolves.
const demoUser = "demo@bridge.test"

// demoMessages seed the imitation mailbox.
var demoMessages = []string{
	"From: Microsoft 365 imitation <noreply@bridge.test>\r\nTo: " + demoUser + "\r\nSubject: Welcome to the bridge demo\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <demo-1@bridge.test>\r\n\r\nThis message came through the bridge: your client logged in with a password,\r\nthe bridge logged in upstream with an OAuth token.\r\n",
	"From: A Colleague <colleague@bridge.test>\r\nTo: " + demoUser + "\r\nSubject: Scanner settings\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <demo-2@bridge.test>\r\n\r\nPoint the scanner at the bridge's SMTP port with the local password.\r\n",
	"From: IT <it@bridge.test>\r\nTo: " + demoUser + "\r\nSubject: Basic authentication is off\r\nDate: Thu, 26 Nov 2026 11:00:00 +0000\r\nMessage-ID: <demo-3@bridge.test>\r\n\r\nPasswords no longer work against Microsoft 365; the bridge keeps them working locally.\r\n",
}

// runDemo runs the bridge against in-process imitations of Exchange Online
// and the Microsoft identity platform, with a signed-in demo account.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo")
	imapAddr := fs.String("imap", "127.0.0.1:2143", "IMAP listen address")
	smtpAddr := fs.String("smtp", "127.0.0.1:2587", "SMTP listen address")
	pop3Addr := fs.String("pop3", "127.0.0.1:2110", "POP3 listen address")
	verbose := fs.Bool("v", false, "log each connection")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge demo [--imap ADDR] [--smtp ADDR] [--pop3 ADDR] [-v]")
	}
	dir, err := os.MkdirTemp("", "bridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The far side: identity platform and mail servers, over TLS with a
	// CA of the demo's own that only the demo trusts.
	idp := tokenstest.New(tokenstest.Options{User: demoUser})
	defer idp.Close()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		return err
	}
	leaf, _, _, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	upTLS := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	imapUp, err := bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: idp.Validate, TLS: upTLS, Users: []string{demoUser}})
	if err != nil {
		return err
	}
	defer imapUp.Close()
	popUp, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: idp.Validate, TLS: upTLS})
	if err != nil {
		return err
	}
	defer popUp.Close()
	smtpUp, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: idp.Validate, TLS: upTLS})
	if err != nil {
		return err
	}
	defer smtpUp.Close()
	for _, m := range demoMessages {
		if err := imapUp.Append(demoUser, "INBOX", []byte(m)); err != nil {
			return err
		}
		popUp.Add(demoUser, []byte(m))
	}

	// The near side: a config, a file store and a signed-in account.
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := ca.WriteCA(caFile); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "config.toml")
	cfg.Listen.IMAP, cfg.Listen.SMTP, cfg.Listen.POP3 = freeOr(*imapAddr), freeOr(*smtpAddr), freeOr(*pop3Addr)
	cfg.Store = config.Store{Backend: "file", Path: filepath.Join(dir, "tokens.json")}
	cfg.TLS = config.TLS{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), UpstreamCAFile: caFile}
	cfg.Accounts = []config.Account{{
		Email: demoUser, Provider: "custom", ClientID: "bridge-demo",
		AuthURL: idp.AuthURL("common"), TokenURL: idp.TokenURL("common"),
		IMAP: imapUp.Addr(), POP3: popUp.Addr(), SMTP: smtpUp.Addr(),
		Scopes: tokens.Microsoft("").Scopes,
	}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	st, err := tokens.NewFileStore(cfg.Store.Path)
	if err != nil {
		return err
	}
	_, refresh, _ := idp.Issue(demoUser)
	password, err := tokens.NewPassword()
	if err != nil {
		return err
	}
	if err := st.Put(demoUser, tokens.Entry{RefreshToken: refresh, Password: password, Updated: time.Now().UTC()}); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	srv, err := newServer(cfg, st, log, nil)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	addrs := srv.Addrs()
	for k, a := range addrs {
		// The name in the demo's local certificate, for clients that
		// use TLS (tlsutil.ClientName).
		host, port, _ := net.SplitHostPort(a)
		addrs[k] = net.JoinHostPort(tlsutil.ClientName(cfg.TLS.CertFile, host), port)
	}
	printDemo(e, addrs, password)

	stop := make(chan struct{})
	defer close(stop)
	go watchSent(e, smtpUp, stop)
	return srv.Run(ctx, 2*time.Second)
}

// freeOr returns addr when it can be bound, else a free port on the same
// host, so the demo starts next to a running bridge.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, "0")
}

func printDemo(e *env, addrs map[string]string, password string) {
	w := e.stdout
	imap, smtp, pop3 := addrs["listen.imap"], addrs["listen.smtp"], addrs["listen.pop3"]
	fmt.Fprintf(w, "bridge demo: the bridge is running against an imitation of Microsoft 365.\n\n")
	fmt.Fprintf(w, "Connect any mail client:\n")
	fmt.Fprintf(w, "  IMAP  %s  (plain or STARTTLS)\n  SMTP  %s  (plain or STARTTLS, password authentication)\n  POP3  %s  (plain or STARTTLS)\n", imap, smtp, pop3)
	fmt.Fprintf(w, "  user      %s\n  password  %s\n\n", demoUser, password)
	fmt.Fprintf(w, "List the inbox:\n  curl -s --user '%s:%s' 'imap://%s/INBOX' -X 'FETCH 1:* ENVELOPE'\n\n", demoUser, password, imap)
	fmt.Fprintf(w, "Send a message:\n  printf 'Subject: hello from curl\\r\\n\\r\\nIt works.\\r\\n' | curl -s --user '%s:%s' --mail-from %s --mail-rcpt friend@bridge.test -T - 'smtp://%s'\n\n", demoUser, password, demoUser, smtp)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// watchSent reports messages the imitation received, so a person sees the
// send arrive.
func watchSent(e *env, up *bridgetest.SMTP, stop <-chan struct{}) {
	seen := 0
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			msgs := up.Messages()
			for ; seen < len(msgs); seen++ {
				m := msgs[seen]
				fmt.Fprintf(e.stdout, "delivered upstream: from %s to %v, %d bytes\n", m.From, m.To, len(m.Data))
			}
		}
	}
}
