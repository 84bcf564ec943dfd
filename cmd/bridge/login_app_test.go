package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	appID      = "0a1b2c3d-0000-4000-8000-00000000abcd"
	appSecret  = "Xy8Q~login.app.secret"
	appMailbox = "scanner@b.test"
)

// appWorld is an identity platform with the app registered and a config
// whose account for appMailbox names its token endpoint and nothing else
// yet, with a file store.
type appWorld struct {
	idp   *tokenstest.Server
	cfg   string
	store string
}

func newAppWorld(t *testing.T, app tokenstest.App) *appWorld {
	t.Helper()
	w := &appWorld{idp: tokenstest.New(tokenstest.Options{})}
	t.Cleanup(w.idp.Close)
	app.ClientID = appID
	w.idp.RegisterApp(app)
	dir := t.TempDir()
	w.store = filepath.Join(dir, "tokens.json")
	w.cfg = filepath.Join(dir, "config.toml")
	write(t, w.cfg, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n# the scanner\n[[account]]\nemail = %q\ntoken_url = %q\n",
		w.store, appMailbox, w.idp.TokenURL(w.idp.TenantID())))
	return w
}

// login runs `bridge login appMailbox --app ...` with stdin.
func (w *appWorld) login(t *testing.T, stdin string, extra ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	args := append([]string{"--config", w.cfg, "login", appMailbox, "--app", "--tenant", w.idp.TenantID(), "--client-id", appID}, extra...)
	err := run(ctx, args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	code := report(&errb, err)
	return out.String(), errb.String(), code
}

func (w *appWorld) entry(t *testing.T) (tokens.Entry, error) {
	t.Helper()
	st, err := tokens.NewFileStore(w.store)
	if err != nil {
		t.Fatal(err)
	}
	return st.Get(appMailbox)
}

// TestLoginAppSecret: `bridge login EMAIL --app` reads the secret from
// stdin, proves it with a first token, keeps it in the store (not the
// config, which gets auth = "app"), says which mail permissions the app
// has, and prints the local password and settings. A wrong secret is
// refused with its diagnosis and changes nothing.
func TestLoginAppSecret(t *testing.T) {
	w := newAppWorld(t, tokenstest.App{Secret: appSecret, Roles: []string{"IMAP.AccessAsApp", "SMTP.SendAsApp"}})

	out, stderr, code := w.login(t, "wrong-secret\n")
	if code != 1 || !strings.Contains(stderr, "[bad-secret]") || !strings.Contains(stderr, "bridge login "+appMailbox+" --app") {
		t.Fatalf("wrong secret: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, err := w.entry(t); err == nil {
		t.Error("a refused secret was stored")
	}
	if data, _ := os.ReadFile(w.cfg); strings.Contains(string(data), "auth = ") {
		t.Errorf("a refused secret changed the config:\n%s", data)
	}

	out, stderr, code = w.login(t, appSecret+"\n")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"App " + appID + " got a token for " + appMailbox + " with its client secret",
		"roles): IMAP.AccessAsApp, SMTP.SendAsApp",
		"Not granted: POP.AccessAsApp",
		"user name  " + appMailbox,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr, appSecret) {
		t.Error("the secret was printed")
	}
	e, err := w.entry(t)
	if err != nil || e.AppCredential != appSecret || e.Password == "" || e.RefreshToken != "" || !strings.Contains(out, e.Password) {
		t.Errorf("stored %v: credential %v, password %v", err, e.AppCredential == appSecret, e.Password != "")
	}
	cfg, err := config.Load(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := cfg.Account(appMailbox); a == nil || !a.IsApp() || a.Tenant != w.idp.TenantID() || a.ClientID != appID || a.ClientSecret != "" {
		t.Errorf("config account %+v", a)
	}
	if data, _ := os.ReadFile(w.cfg); !strings.Contains(string(data), "# the scanner\n") || strings.Contains(string(data), appSecret) {
		t.Errorf("config:\n%s", data)
	}

	// A second login keeps the local password.
	out2, _, code := w.login(t, appSecret+"\n")
	if code != 0 || !strings.Contains(out2, e.Password) {
		t.Errorf("again: exit %d, the password changed", code)
	}

	// status shows the kind of credential.
	out, _, _ = runCmd(t, context.Background(), "--config", w.cfg, "status")
	if !strings.Contains(out, "app-only, client secret saved") {
		t.Errorf("status:\n%s", out)
	}
}

// TestLoginAppCertificate: with --certificate the certificate and key
// come from a PEM file; the assertion the bridge signs with it gets a
// token, and the store keeps the pair.
func TestLoginAppCertificate(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "scanner"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	w := newAppWorld(t, tokenstest.App{Certificate: cert, Roles: []string{"IMAP.AccessAsApp"}})
	pemFile := filepath.Join(t.TempDir(), "app.pem")
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	write(t, pemFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))+
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})))

	out, stderr, code := w.login(t, "", "--certificate", pemFile)
	if code != 0 || !strings.Contains(out, "with its certificate (thumbprint ") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, "PRIVATE KEY") {
		t.Error("the key was printed")
	}
	e, err := w.entry(t)
	if err != nil || !strings.HasPrefix(e.AppCredential, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("stored: %v", err)
	}
	out, _, _ = runCmd(t, context.Background(), "--config", w.cfg, "status")
	if !strings.Contains(out, "app-only, certificate saved") {
		t.Errorf("status:\n%s", out)
	}
}

// TestLoginAppUsage: without a client id the registration steps are
// printed; a secret on the command line and the flags of a person's
// sign-in are refused.
func TestLoginAppUsage(t *testing.T) {
	w := newAppWorld(t, tokenstest.App{Secret: appSecret})
	ctx := context.Background()
	_, stderr, code := runCmd(t, ctx, "--config", w.cfg, "login", appMailbox, "--app")
	if code != 2 || !strings.Contains(stderr, "New-ServicePrincipal -AppId") || !strings.Contains(stderr, "IMAP.AccessAsApp") {
		t.Errorf("no client id: exit %d\n%s", code, stderr)
	}
	for _, extra := range [][]string{{"--client-secret", appSecret}, {"--device"}} {
		args := append([]string{"--config", w.cfg, "login", appMailbox, "--app", "--tenant", w.idp.TenantID(), "--client-id", appID}, extra...)
		if _, stderr, code := runCmd(t, ctx, args...); code != 2 {
			t.Errorf("%v: exit %d: %s", extra, code, stderr)
		}
	}
	_, stderr, code = runCmd(t, ctx, "--config", w.cfg, "login", appMailbox, "--app", "--tenant", "common", "--client-id", appID)
	if code != 2 || !strings.Contains(stderr, "tenant") {
		t.Errorf("common tenant: exit %d: %s", code, stderr)
	}
}

// TestPasswordAppOnly: `bridge password` counts an app-only account with
// a stored credential as signed in, and names `--app` when it has none.
func TestPasswordAppOnly(t *testing.T) {
	w := newAppWorld(t, tokenstest.App{Secret: appSecret})
	if _, stderr, code := w.login(t, appSecret+"\n"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	ctx := context.Background()
	out, stderr, code := runCmd(t, ctx, "--config", w.cfg, "password", appMailbox)
	e, _ := w.entry(t)
	if code != 0 || strings.TrimSpace(out) != e.Password || strings.Contains(stderr, "not signed in") || strings.Contains(stderr, "made") {
		t.Errorf("password: exit %d, stderr %q", code, stderr)
	}
	st, err := tokens.NewFileStore(w.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(appMailbox, tokens.Entry{}); err != nil {
		t.Fatal(err)
	}
	_, stderr, _ = runCmd(t, ctx, "--config", w.cfg, "password", appMailbox, "--reset")
	if !strings.Contains(stderr, "bridge login "+appMailbox+" --app") {
		t.Errorf("without a credential: %q", stderr)
	}
}
