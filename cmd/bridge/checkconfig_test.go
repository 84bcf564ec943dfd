package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tlsutil"
)

// TestCheckConfigAgreesWithServe: for every problem `bridge serve` refuses
// to start with, `bridge check-config` exits with the same code and prints
// the same error, and serve refuses before it binds or creates anything.
func TestCheckConfigAgreesWithServe(t *testing.T) {
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// setup writes the files in dir and returns the config's path and
		// text ("" writes no config file).
		setup func(dir string) (path, body string)
		want  []string
	}{
		{"no config file", func(dir string) (string, string) {
			return filepath.Join(dir, "config.toml"), ""
		}, []string{"config.toml: no such file", "bridge login EMAIL"}},
		{"upstream CA file missing", func(dir string) (string, string) {
			return "", tlsSection(dir, "", "", filepath.Join(dir, "ca.pem"))
		}, []string{"tls.upstream_ca_file", "ca.pem", "no such file"}},
		{"upstream CA file without a certificate", func(dir string) (string, string) {
			write(t, filepath.Join(dir, "ca.pem"), "not a certificate\n")
			return "", tlsSection(dir, "", "", filepath.Join(dir, "ca.pem"))
		}, []string{"tls.upstream_ca_file", "holds no PEM certificate"}},
		{"certificate without its key", func(dir string) (string, string) {
			_, certPEM, _, err := ca.Issue("localhost")
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "cert.pem"), string(certPEM))
			return "", tlsSection(dir, "cert.pem", "key.pem", "")
		}, []string{"tls.cert_file", "key.pem", "does not"}},
		{"key without its certificate", func(dir string) (string, string) {
			_, _, keyPEM, err := ca.Issue("localhost")
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "key.pem"), string(keyPEM))
			return "", tlsSection(dir, "cert.pem", "key.pem", "")
		}, []string{"tls.cert_file", "cert.pem", "does not"}},
		{"certificate and key that do not match", func(dir string) (string, string) {
			_, certPEM, _, err := ca.Issue("localhost")
			if err != nil {
				t.Fatal(err)
			}
			_, _, keyPEM, err := ca.Issue("localhost")
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "cert.pem"), string(certPEM))
			write(t, filepath.Join(dir, "key.pem"), string(keyPEM))
			return "", tlsSection(dir, "cert.pem", "key.pem", "")
		}, []string{"tls.cert_file", "loading certificate"}},
		{"certificate file that is not PEM", func(dir string) (string, string) {
			write(t, filepath.Join(dir, "cert.pem"), "garbage\n")
			write(t, filepath.Join(dir, "key.pem"), "garbage\n")
			return "", tlsSection(dir, "cert.pem", "key.pem", "")
		}, []string{"tls.cert_file", "cert.pem"}},
		{"cert_file without key_file", func(dir string) (string, string) {
			return "", tlsSection(dir, "cert.pem", "", "")
		}, []string{"tls.cert_file", "go together"}},
		{"listen address without a port", func(dir string) (string, string) {
			return "", strings.Replace(tlsSection(dir, "", "", ""), `imap = "127.0.0.1:0"`, `imap = "127.0.0.1"`, 1)
		}, []string{"listen.imap", "not host:port"}},
		{"unknown provider", func(dir string) (string, string) {
			return "", tlsSection(dir, "", "", "") + "provider = \"yahoo\"\n"
		}, []string{"account[0].provider", "yahoo"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path, body := c.setup(dir)
			if path == "" {
				path = filepath.Join(dir, "config.toml")
				write(t, path, body)
			}
			before := listDir(t, dir)
			_, check, checkCode := runIn(context.Background(), t.TempDir(), "--config", path, "check-config")
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a serve that wrongly starts stops at once, with exit 0
			_, serve, serveCode := runIn(ctx, t.TempDir(), "--config", path, "serve")
			if checkCode != 2 || serveCode != 2 {
				t.Errorf("exit codes: check-config %d, serve %d; want 2 and 2", checkCode, serveCode)
			}
			if check != serve {
				t.Errorf("check-config and serve disagree:\ncheck-config: %s\nserve:        %s", check, serve)
			}
			for _, want := range c.want {
				if !strings.Contains(check, want) {
					t.Errorf("check-config's error %q does not say %q", check, want)
				}
			}
			for _, l := range strings.Split(strings.TrimSpace(check), "\n") {
				if strings.Count(l, "bridge:")+strings.Count(l, "tlsutil:") != 1 {
					t.Errorf("a line with doubled or missing prefixes: %q", l)
				}
			}
			if after := listDir(t, dir); after != before {
				t.Errorf("files changed: before %s, after %s", before, after)
			}
		})
	}
}

// TestCheckConfigWarnings: an account without a client id, and a
// configured certificate that serve will generate, are warnings: both
// commands go on (exit 0) and both say so.
func TestCheckConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write(t, path, tlsSection(dir, "cert.pem", "key.pem", ""))
	out, stderr, code := runIn(context.Background(), t.TempDir(), "--config", path, "check-config")
	if code != 0 || !strings.Contains(out, "ok (1 account, 2 warnings)") {
		t.Fatalf("check-config: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, want := range []string{
		"warning: config " + path + ":14: account[0].client_id: missing, so a@example.com cannot sign in; `bridge login a@example.com --client-id ID` sets it",
		"warning: config " + path + ":11: tls.cert_file: " + filepath.Join(dir, "cert.pem") + " and " + filepath.Join(dir, "key.pem") + " do not exist yet",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check-config's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cert.pem")); !os.IsNotExist(err) {
		t.Error("check-config generated the certificate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, stderr, code = runIn(ctx, t.TempDir(), "--config", path, "serve")
	if code != 0 || !strings.Contains(stderr, "missing, so a@example.com cannot sign in") {
		t.Fatalf("serve: exit %d, stderr %s", code, stderr)
	}
}

// tlsSection is a config with one account, a file store in dir, and the
// [tls] files named (relative to dir; "" leaves a key out).
func tlsSection(dir, cert, key, ca string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[listen]\nimap = \"127.0.0.1:0\"\nsmtp = \"\"\npop3 = \"\"\n\n[store]\nbackend = \"file\"\npath = %q\n\n[tls]\n", filepath.Join(dir, "tokens.json"))
	if cert != "" {
		fmt.Fprintf(&b, "cert_file = %q\n", filepath.Join(dir, cert))
	}
	if key != "" {
		fmt.Fprintf(&b, "key_file = %q\n", filepath.Join(dir, key))
	}
	if cert == "" && key == "" {
		// The generated certificate's default place is outside the test's
		// directories; name one in dir instead, made beforehand.
		if _, _, err := tlsutil.LoadOrCreate(filepath.Join(dir, "own-cert.pem"), filepath.Join(dir, "own-key.pem")); err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "cert_file = %q\nkey_file = %q\n", filepath.Join(dir, "own-cert.pem"), filepath.Join(dir, "own-key.pem"))
	}
	if ca != "" {
		fmt.Fprintf(&b, "upstream_ca_file = %q\n", ca)
	}
	b.WriteString("\n[[account]]\nemail = \"a@example.com\"\n")
	return b.String()
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// listDir names the files in dir, for a before-and-after comparison.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}
