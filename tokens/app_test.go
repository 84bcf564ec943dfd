package tokens_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	testApp     = "0a1b2c3d-0000-4000-8000-00000000abcd"
	testSecret  = "Xy8Q~app.secret-value"
	testMailbox = "scanner@contoso.example"
)

// appPEM makes an RSA key and a self-signed certificate for it, and
// returns both, and the PEM file that holds them (key first, then the
// certificate, as `cat key.pem cert.pem` makes it).
func appPEM(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "scanner app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	data = append([]byte("# the scanner's app certificate\n"), data...)
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	return cert, data
}

func TestCertificateCredential(t *testing.T) {
	cert, data := appPEM(t)
	c, stored, err := tokens.CertificateCredential(data)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cert.Equal(cert) || c.Kind() != "certificate" || len(c.Thumbprint()) != 40 {
		t.Errorf("credential %s %q", c.Kind(), c.Thumbprint())
	}
	if strings.Contains(stored, "#") || strings.Count(stored, "-----BEGIN") != 2 {
		t.Errorf("stored text keeps more than the key and the certificate:\n%s", stored)
	}
	again, err := tokens.ParseAppCredential(stored)
	if err != nil || !again.Cert.Equal(cert) || !again.Key.Equal(c.Key) {
		t.Fatalf("the stored text does not read back: %v", err)
	}
	if s, err := tokens.ParseAppCredential(testSecret); err != nil || s.Secret != testSecret || s.Kind() != "client secret" {
		t.Errorf("secret: %+v %v", s, err)
	}

	// A certificate of another key, an encrypted key, an EC key, and
	// halves of the pair are refused, without quoting the key.
	_, other := appPEM(t)
	keyOnly, certOnly := splitPEM(t, data)
	_, otherCert := splitPEM(t, other)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	ec := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	enc := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("opaque")})
	for name, in := range map[string][]byte{
		"mismatch":  append(append([]byte{}, keyOnly...), otherCert...),
		"key only":  keyOnly,
		"cert only": certOnly,
		"ec":        append(append([]byte{}, ec...), certOnly...),
		"encrypted": append(append([]byte{}, enc...), certOnly...),
		"empty":     []byte("not pem"),
	} {
		_, _, err := tokens.CertificateCredential(in)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: the error quotes PEM data: %v", name, err)
		}
	}
	// The chain's other certificate beside the pair does not matter.
	if c, _, err := tokens.CertificateCredential(append(append(append([]byte{}, otherCert...), keyOnly...), certOnly...)); err != nil || !c.Cert.Equal(cert) {
		t.Errorf("with a chain: %v", err)
	}
}

// splitPEM returns the key block and the certificate block of data.
func splitPEM(t *testing.T, data []byte) (key, cert []byte) {
	t.Helper()
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return key, cert
		}
		if b.Type == "CERTIFICATE" {
			cert = pem.EncodeToMemory(b)
		} else {
			key = pem.EncodeToMemory(b)
		}
	}
}

// appEnv is an identity platform with one registered app and a store
// holding its credential for testMailbox.
type appEnv struct {
	srv   *tokenstest.Server
	ids   tokenstest.AppIDs
	clock *clock
	store *memStore
}

func newAppEnv(t *testing.T, app tokenstest.App, cred string) *appEnv {
	t.Helper()
	srv := tokenstest.New(tokenstest.Options{Lifetime: time.Hour})
	t.Cleanup(srv.Close)
	app.ClientID = testApp
	e := &appEnv{srv: srv, ids: srv.RegisterApp(app), clock: &clock{now: time.Now()}, store: newMemStore()}
	if err := e.store.Put(testMailbox, tokens.Entry{AppCredential: cred, Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *appEnv) provider() tokens.Provider {
	p := tokens.Microsoft(e.srv.TenantID()).ForApp()
	p.TokenURL = e.srv.TokenURL(e.srv.TenantID())
	return p
}

func (e *appEnv) source(logs *syncBuffer) *tokens.Source {
	o := tokens.SourceOptions{Account: testMailbox, Provider: e.provider(), ClientID: testApp, App: true, Store: e.store, Now: e.clock.Now}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return tokens.NewSource(o)
}

// TestAppSourceSecretAndCertificate: in app mode a Source gets its tokens
// with the client credentials grant, with a secret or a certificate; the
// token says what the app was granted (ReadAppGrant); nothing is written
// to the store, and no secret reaches the log.
func TestAppSourceSecretAndCertificate(t *testing.T) {
	cert, data := appPEM(t)
	_, stored, err := tokens.CertificateCredential(data)
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{"IMAP.AccessAsApp", "POP.AccessAsApp"}
	for name, tc := range map[string]struct {
		app  tokenstest.App
		cred string
	}{
		"secret":      {tokenstest.App{Secret: testSecret, Roles: roles}, testSecret},
		"certificate": {tokenstest.App{Certificate: cert, Roles: roles}, stored},
	} {
		t.Run(name, func(t *testing.T) {
			e := newAppEnv(t, tc.app, tc.cred)
			logs := &syncBuffer{}
			src := e.source(logs)
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			g, ok := tokens.ReadAppGrant(tok.AccessToken)
			if !ok || g.ServicePrincipal != e.ids.ServicePrincipal || g.AppID != testApp || !g.HasRole("imap.accessasapp") || g.HasRole("SMTP.SendAsApp") {
				t.Errorf("grant %+v ok=%v", g, ok)
			}
			if err := e.srv.Validate(testMailbox, tok.AccessToken); err != nil {
				t.Error(err)
			}
			if st := src.State(); !st.HasRefreshToken || st.NeedsLogin != "" {
				t.Errorf("state %+v", st)
			}
			if e.store.puts.Load() != 1 { // the test's own Put
				t.Errorf("the source wrote the store %d times", e.store.puts.Load()-1)
			}
			// Near expiry the next call asks for a new token.
			e.clock.Advance(55 * time.Minute)
			tok2, err := src.Token(context.Background())
			if err != nil || tok2.AccessToken == tok.AccessToken {
				t.Fatalf("after 55 minutes: same token or %v", err)
			}
			if e.srv.AppRequests() != 2 {
				t.Errorf("AppRequests %d, want 2", e.srv.AppRequests())
			}
			for _, sec := range []string{testSecret, tok.AccessToken, tok2.AccessToken, "PRIVATE KEY"} {
				if strings.Contains(logs.String(), sec) {
					t.Errorf("the log holds a secret (%.12s...)", sec)
				}
			}
		})
	}
	if _, ok := tokens.ReadAppGrant("opaque-token"); ok {
		t.Error("ReadAppGrant read an opaque token")
	}
}

// TestAppSourceOneRequestAtExpiry: 50 logins arriving as the token nears
// its expiry share one client credentials request.
func TestAppSourceOneRequestAtExpiry(t *testing.T) {
	e := newAppEnv(t, tokenstest.App{Secret: testSecret}, testSecret)
	src := e.source(nil)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Minute)
	e.srv.FailNext(1, tokenstest.Slow(200*time.Millisecond))
	before := e.srv.AppRequests()
	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([]string, 50)
	for i := range got {
		wg.Go(func() {
			<-start
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = tok.AccessToken
		})
	}
	close(start)
	wg.Wait()
	if n := e.srv.AppRequests() - before; n != 1 {
		t.Errorf("%d token requests for 50 logins at expiry, want 1", n)
	}
	for _, g := range got {
		if g != got[0] {
			t.Fatal("the logins got different tokens")
		}
	}
}

// TestAppSourceExpiredSecret: an expired secret is refused with
// AADSTS7000222; the account is marked in the store and later logins fail
// fast without asking the platform, with an error naming `bridge login
// --app`. A new secret stored by another process is taken up.
func TestAppSourceExpiredSecret(t *testing.T) {
	e := newAppEnv(t, tokenstest.App{Secret: testSecret, SecretExpired: true}, testSecret)
	src := e.source(nil)
	_, err := src.Token(context.Background())
	var te *tokens.Error
	if !errors.Is(err, tokens.ErrNeedsLogin) || !errors.As(err, &te) || te.AADSTS != 7000222 || te.Op != "app token" {
		t.Fatalf("err %v, want a needs-login wrapping AADSTS7000222", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "bridge login "+testMailbox+" --app") || strings.Contains(msg, testSecret) {
		t.Errorf("error %q", msg)
	}
	if ent, _ := e.store.Get(testMailbox); !strings.Contains(ent.NeedsLogin, "AADSTS7000222") {
		t.Errorf("stored needs-login %q", ent.NeedsLogin)
	}
	n := e.srv.AppRequests()
	if _, err := src.Token(context.Background()); !errors.Is(err, tokens.ErrNeedsLogin) || e.srv.AppRequests() != n {
		t.Errorf("second call: %v after %d requests, want a fast needs-login", err, e.srv.AppRequests()-n)
	}

	// `bridge login --app` elsewhere stores a new secret and clears the mark.
	e.srv.RegisterApp(tokenstest.App{ClientID: testApp, Secret: "new~secret"})
	if err := e.store.Put(testMailbox, tokens.Entry{AppCredential: "new~secret", Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Second)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("after a new secret was stored: %v", err)
	}
}

// TestAppSourceNoCredential: an app-only account without a stored
// credential needs `bridge login --app`, and asks nothing.
func TestAppSourceNoCredential(t *testing.T) {
	e := newAppEnv(t, tokenstest.App{Secret: testSecret}, "")
	_, err := e.source(nil).Token(context.Background())
	if !errors.Is(err, tokens.ErrNeedsLogin) || !strings.Contains(err.Error(), "no app secret or certificate is stored") || e.srv.AppRequests() != 0 {
		t.Errorf("err %v after %d requests", err, e.srv.AppRequests())
	}
}

// TestAppToken: the one-off request `bridge login --app` makes.
func TestAppToken(t *testing.T) {
	e := newAppEnv(t, tokenstest.App{Secret: testSecret, Roles: []string{"SMTP.SendAsApp"}}, testSecret)
	tok, err := tokens.AppToken(context.Background(), tokens.AppTokenOptions{Account: testMailbox, Provider: e.provider(), ClientID: testApp,
		Credential: &tokens.AppCredential{Secret: testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := tokens.ReadAppGrant(tok.AccessToken); !g.HasRole("SMTP.SendAsApp") || tok.RefreshToken != "" {
		t.Errorf("grant %+v, refresh token %v", g, tok.RefreshToken != "")
	}
	p := e.provider()
	p.TokenURL = e.srv.TokenURL("common")
	_, err = tokens.AppToken(context.Background(), tokens.AppTokenOptions{Account: testMailbox, Provider: p, ClientID: testApp,
		Credential: &tokens.AppCredential{Secret: testSecret}})
	var te *tokens.Error
	if !errors.As(err, &te) || te.AADSTS != 9001023 || !strings.Contains(err.Error(), "common or consumers") {
		t.Errorf("at common: %v", err)
	}
}
