package tokens

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/browser"
	"golang.org/x/oauth2"
)

// LoginOptions configure BrowserLogin and DeviceLogin.
type LoginOptions struct {
	// Provider gives the endpoints and scopes.
	Provider Provider
	// ClientID is the application id; ClientSecret is empty for a public
	// client.
	ClientID, ClientSecret string
	// Email is sent as login_hint and names the account in errors. Empty
	// lets the person pick any account.
	Email string
	// Port is the loopback port the browser is sent back to, fixed so that
	// it can be forwarded with ssh -L. Zero picks a free port.
	Port int
	// NoBrowser prints the sign-in address instead of opening a browser.
	NoBrowser bool
	// OpenBrowser opens an address in a browser. Nil uses the system's
	// browser; when it fails the address is printed instead.
	OpenBrowser func(url string) error
	// Out receives progress lines and the addresses to open; nil discards
	// them. Tokens are never written to it.
	Out io.Writer
	// Interactive means Out is a terminal: show a spinner and the elapsed
	// time while waiting. False writes plain lines only.
	Interactive bool
	// Timeout bounds the wait for the browser (zero means 5 minutes). For
	// the device flow zero means until the code expires.
	Timeout time.Duration
	// HTTPClient makes the requests to the identity platform; nil uses a
	// client with a 30-second timeout.
	HTTPClient *http.Client

	// pollUnit is how long one second of the device flow's interval and
	// expiry lasts; zero means time.Second. Tests shrink it.
	pollUnit time.Duration
}

const defaultLoginTimeout = 5 * time.Minute

func (o LoginOptions) withDefaults() LoginOptions {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.OpenBrowser == nil {
		o.OpenBrowser = openSystemBrowser
	}
	if o.pollUnit <= 0 {
		o.pollUnit = time.Second
	}
	return o
}

// httpContext carries o.HTTPClient to x/oauth2.
func (o LoginOptions) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
}

var quietBrowser sync.Once

// openSystemBrowser opens u with the desktop's handler. pkg/browser would
// copy the helper program's chatter onto our terminal, so it is silenced.
func openSystemBrowser(u string) error {
	quietBrowser.Do(func() { browser.Stdout, browser.Stderr = io.Discard, io.Discard })
	return browser.OpenURL(u)
}

// BrowserLogin signs in with the authorization code flow (RFC 6749 section
// 4.1) and PKCE (RFC 7636, S256): it listens on 127.0.0.1, sends the browser
// to the provider, and redeems the code that comes back to
// http://localhost:PORT/ (RFC 8252 section 7.3; Microsoft ignores the
// port when matching a loopback redirect). Errors from the token endpoint
// are *Error. SignedInAs tells who signed in.
func BrowserLogin(ctx context.Context, o LoginOptions) (*oauth2.Token, error) {
	o = o.withDefaults()
	if o.Provider.AuthURL == "" || o.Provider.TokenURL == "" {
		return nil, fmt.Errorf("tokens: provider %q has no authorize or token URL", o.Provider.Name)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultLoginTimeout
	}
	lns, err := listenLoopback(o.Port)
	if err != nil {
		return nil, fmt.Errorf("tokens: browser sign-in: cannot listen on 127.0.0.1:%d for the browser's return: %w", o.Port, err)
	}
	port := lns[0].Addr().(*net.TCPAddr).Port
	conf := o.Provider.signInConfig(o.ClientID, o.ClientSecret, fmt.Sprintf("http://localhost:%d/", port))

	ctx, cancel := context.WithCancel(ctx)
	verifier := oauth2.GenerateVerifier()
	cb := &callback{
		ctx: o.httpContext(ctx), conf: conf, verifier: verifier, state: newState(),
		account: o.Email, who: o.account(), result: make(chan loginResult, 1),
		check: func(t *oauth2.Token) error { return o.Provider.checkGranted(o.account(), t) },
	}
	srv := &http.Server{Handler: cb, ReadHeaderTimeout: 10 * time.Second}
	var served sync.WaitGroup
	for _, l := range lns {
		served.Add(1)
		go func() {
			defer served.Done()
			_ = srv.Serve(l)
		}()
	}
	defer func() {
		cancel() // ends an exchange still running in the handler
		_ = srv.Close()
		served.Wait()
	}()

	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if _, ok := o.Provider.AuthParams["prompt"]; !ok {
		params = append(params, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	for k, v := range o.Provider.AuthParams {
		params = append(params, oauth2.SetAuthURLParam(k, v))
	}
	if o.Email != "" {
		params = append(params, oauth2.SetAuthURLParam("login_hint", o.Email))
	}
	o.showAuthURL(conf.AuthCodeURL(cb.state, params...), port)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	stop := o.waiting("Waiting for the sign-in to finish in the browser")
	select {
	case r := <-cb.result:
		stop()
		if r.err != nil {
			return nil, r.err
		}
		return r.tok, nil
	case <-timer.C:
		stop()
		if o.Provider.DeviceURL == "" || o.Provider.DeviceRefused != "" {
			return nil, fmt.Errorf("tokens: browser sign-in for %s: no answer came back within %s; run the sign-in again, and if the browser showed an error page, its words say why: %w",
				o.account(), inWords(timeout), context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("tokens: browser sign-in for %s: no answer came back within %s; run the sign-in again, or use the device-code flow where no browser can reach this machine: %w",
			o.account(), inWords(timeout), context.DeadlineExceeded)
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("tokens: browser sign-in for %s: %w", o.account(), ctx.Err())
	}
}

// listenLoopback listens for the browser's return on 127.0.0.1 and, on the
// same port, on ::1: the redirect names localhost, which a browser may
// resolve to ::1 first, and must not land on another program that holds
// [::1]:port. With port 0 it tries a few ports until both are free; a
// machine without IPv6 gets the IPv4 listener alone.
func listenLoopback(port int) ([]net.Listener, error) {
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(p)))
		switch {
		case err == nil:
			return []net.Listener{ln, ln6}, nil
		case !errors.Is(err, syscall.EADDRINUSE) || port != 0 || try == 10:
			return []net.Listener{ln}, nil
		}
		ln.Close()
	}
}

func (o LoginOptions) account() string {
	if o.Email == "" {
		return "the account"
	}
	return o.Email
}

// showAuthURL opens the sign-in address, and prints it alone on a line
// either way so that it can be copied to a browser elsewhere.
func (o LoginOptions) showAuthURL(u string, port int) {
	if o.NoBrowser {
		fmt.Fprintf(o.Out, "Open this address in a browser to sign in:\n\n%s\n\n", u)
		if o.Port != 0 {
			fmt.Fprintf(o.Out, "If the browser runs on another machine, first forward the port from there:\n  ssh -L %d:127.0.0.1:%d THIS-HOST\n\n", port, port)
		}
		return
	}
	if err := o.OpenBrowser(u); err != nil {
		fmt.Fprintf(o.Out, "Could not open a browser (%v).\nOpen this address in a browser to sign in:\n\n%s\n\n", err, u)
		return
	}
	fmt.Fprintf(o.Out, "Opened the sign-in page in your browser. If it did not appear, open:\n\n%s\n\n", u)
}

// newState returns the random state parameter (RFC 6749 section 10.12).
func newState() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type loginResult struct {
	tok *oauth2.Token
	err error
}

// callback receives the browser at the redirect URI and redeems the code.
// Only the first answer counts.
type callback struct {
	ctx             context.Context
	conf            *oauth2.Config
	verifier, state string
	account, who    string
	check           func(*oauth2.Token) error // refuses a grant the mail servers cannot use
	result          chan loginResult
	mu              sync.Mutex
	done            bool
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("code") == "" && q.Get("error") == "" {
		landing(w, http.StatusBadRequest, errors.New("this address only receives the answer of a sign-in"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(c.state)) != 1 {
		// RFC 6749 section 10.12: an answer to someone else's request
		// (an old tab, or a link forged by any local user who found the
		// port) must not sign this account in, nor end the sign-in under
		// way: it is refused on its own page and the wait goes on.
		refused(w)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		landing(w, http.StatusConflict, errors.New("this sign-in has already finished; close this tab"))
		return
	}
	var tok *oauth2.Token
	var err error
	switch {
	case q.Get("error") != "":
		desc := q.Get("error_description")
		err = &Error{Account: c.account, Op: "sign-in", Code: q.Get("error"), Description: desc, AADSTS: aadstsOf(desc)}
	default:
		tok, err = c.conf.Exchange(c.ctx, q.Get("code"), oauth2.VerifierOption(c.verifier))
		if err != nil {
			err = FromOAuth(c.account, "code exchange", err)
		} else if err = c.check(tok); err != nil {
			tok = nil
		}
	}
	c.done = true
	// Answer the browser before BrowserLogin learns the result: it closes
	// this server as soon as it does, which would cut the page off.
	if err != nil {
		landing(w, http.StatusBadRequest, err)
	} else {
		landing(w, http.StatusOK, nil)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	c.result <- loginResult{tok, err}
}

func aadstsOf(desc string) int {
	if m := aadstsRE.FindStringSubmatch(desc); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{if .Err}}Sign-in failed{{else}}Signed in{{end}}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
{{if .Err}}<h1>Sign-in failed</h1>
<p>{{.Err}}</p>
<p>Return to the terminal for what to do next. You can close this tab.</p>
{{else}}<h1>Sign-in finished</h1>
<p>The bridge has its tokens. You can close this tab and return to the terminal.</p>
{{end}}</body></html>
`))

var refusedPage = []byte(`<!doctype html>
<html><head><meta charset="utf-8"><title>Not this sign-in</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>Not this sign-in</h1>
<p>This answer does not belong to the sign-in the bridge is waiting for (its state parameter differs), so it was ignored.
If you started a sign-in, finish it in the browser tab it opened; the bridge is still waiting for it.</p>
</body></html>
`)

// refused answers a sign-in answer that belongs to another sign-in.
func refused(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(refusedPage)
}

func landing(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	msg := ""
	if err != nil {
		msg = firstLine(err.Error())
	}
	_ = landingPage.Execute(w, struct{ Err string }{msg})
}

// waiting shows that the flow waits: a spinner with the elapsed time on a
// terminal, one plain line otherwise. The returned func stops it; nothing
// else may write to Out until then.
func (o LoginOptions) waiting(msg string) (stop func()) {
	if !o.Interactive {
		fmt.Fprintln(o.Out, msg+"...")
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(125 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		const frames = `|/-\`
		for i := 0; ; i++ {
			fmt.Fprintf(o.Out, "\r%c %s (%s)", frames[i%len(frames)], msg, time.Since(start).Truncate(time.Second))
			select {
			case <-quit:
				fmt.Fprintf(o.Out, "\r%s\r", strings.Repeat(" ", len(msg)+16))
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// inWords says a duration the way a person would: "15 minutes",
// "1 hour 30 minutes", "45 seconds". Under a second (only tests wait so
// little) it is Go's own "300ms".
func inWords(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	unit := func(n int, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return strconv.Itoa(n) + " " + name + "s"
	}
	if d < time.Minute {
		return unit(int(d.Round(time.Second)/time.Second), "second")
	}
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m < 60:
		return unit(m, "minute")
	case m%60 == 0:
		return unit(m/60, "hour")
	}
	return unit(m/60, "hour") + " " + unit(m%60, "minute")
}
