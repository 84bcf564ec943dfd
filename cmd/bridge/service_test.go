package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens"
)

// unitValue returns the value of key in a unit file, or "".
func unitValue(unit, key string) string {
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestSystemdUnitQuoting(t *testing.T) {
	unit, err := systemdUnit(`/opt/my apps/bridge`, `/home/u/100% "mail"/config.toml`, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `"/opt/my apps/bridge" --config "/home/u/100%% \"mail\"/config.toml" serve`
	if got := unitValue(unit, "ExecStart"); got != want {
		t.Errorf("ExecStart=%s\nwant      %s", got, want)
	}
	for key, want := range map[string]string{"Restart": "on-failure", "RestartPreventExitStatus": "2", "WantedBy": "default.target"} {
		if got := unitValue(unit, key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if unitValue(unit, "LoadCredential") != "" || unitValue(unit, "Environment") != "" {
		t.Errorf("a unit without a passphrase file loads a credential:\n%s", unit)
	}
	if _, err := systemdUnit("/bin/bridge", "/a\nExecStartPre=/bin/evil", ""); err == nil {
		t.Error("a path with a line break was accepted")
	}
	if _, err := systemdUnit("/bin/bridge", "/a", "/p\nExecStartPre=/bin/evil"); err == nil {
		t.Error("a passphrase file with a line break was accepted")
	}
	unit, err = systemdUnit("/bin/bridge", "/c.toml", "/home/u/100% sure/store-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unitValue(unit, "LoadCredential"), "bridge-store-passphrase:/home/u/100%% sure/store-passphrase"; got != want {
		t.Errorf("LoadCredential=%s\nwant %s", got, want)
	}
}

// plistDoc is just enough of a property list to check keys and values.
type plistDoc struct {
	XMLName xml.Name `xml:"plist"`
	Dict    struct {
		Items []plistNode `xml:",any"`
	} `xml:"dict"`
}

type plistNode struct {
	XMLName xml.Name
	Text    string      `xml:",chardata"`
	Items   []plistNode `xml:",any"`
}

func TestLaunchdPlist(t *testing.T) {
	text, err := launchdPlist(launchdLabel, "/Applications/Mail Bridge/bridge", "/Users/u/Library/Application Support/bridge/a&b.toml", "/Users/u/Library/Logs/bridge.log")
	if err != nil {
		t.Fatal(err)
	}
	var doc plistDoc
	if err := xml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("the plist is not XML: %v\n%s", err, text)
	}
	vals := map[string]plistNode{}
	items := doc.Dict.Items
	for i := 0; i+1 < len(items); i += 2 {
		if items[i].XMLName.Local != "key" {
			t.Fatalf("item %d is <%s>, want <key>", i, items[i].XMLName.Local)
		}
		vals[items[i].Text] = items[i+1]
	}
	if v := vals["Label"]; v.Text != launchdLabel {
		t.Errorf("Label %q", v.Text)
	}
	if v := vals["RunAtLoad"]; v.XMLName.Local != "true" {
		t.Errorf("RunAtLoad is <%s>, want <true/>", v.XMLName.Local)
	}
	if v := vals["KeepAlive"]; v.XMLName.Local != "dict" || len(v.Items) != 2 || v.Items[0].Text != "SuccessfulExit" || v.Items[1].XMLName.Local != "false" {
		t.Errorf("KeepAlive %+v, want restart on failure", v)
	}
	var args []string
	for _, a := range vals["ProgramArguments"].Items {
		args = append(args, a.Text)
	}
	want := []string{"/Applications/Mail Bridge/bridge", "--config", "/Users/u/Library/Application Support/bridge/a&b.toml", "serve"}
	if strings.Join(args, "|") != strings.Join(want, "|") {
		t.Errorf("ProgramArguments %q, want %q", args, want)
	}
	if vals["StandardErrorPath"].Text == "" {
		t.Error("no StandardErrorPath: the log would go nowhere")
	}
}

func TestWindowsRunKey(t *testing.T) {
	c, err := windowsRunCommand(`C:\Program Files\Bridge\bridge.exe`, `C:\Users\u\AppData\Roaming\bridge\config.toml`)
	if err != nil {
		t.Fatal(err)
	}
	want := `cmd.exe /d /c start "bridge" /min "C:\Program Files\Bridge\bridge.exe" --config "C:\Users\u\AppData\Roaming\bridge\config.toml" serve`
	if c != want {
		t.Errorf("command\n%s\nwant\n%s", c, want)
	}
	reg := windowsRegFile(serviceName, c)
	for _, line := range []string{
		"Windows Registry Editor Version 5.00\r\n",
		`[HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run]` + "\r\n",
		`"bridge"="cmd.exe /d /c start \"bridge\" /min \"C:\\Program Files\\Bridge\\bridge.exe\" --config`,
	} {
		if !strings.Contains(reg, line) {
			t.Errorf(".reg text lacks %q:\n%s", line, reg)
		}
	}
	if _, err := windowsRunCommand(`C:\%TEMP%\bridge.exe`, `C:\c.toml`); err == nil {
		t.Error("a path with % was accepted; cmd.exe would expand it")
	}
}

// serviceEnv runs commands with XDG_CONFIG_HOME and HOME in a temp dir.
func serviceEnv(t *testing.T) (string, func(args ...string) (string, string, int)) {
	return serviceEnvWith(t, nil)
}

// serviceEnvWith is serviceEnv with more environment variables.
func serviceEnvWith(t *testing.T, more map[string]string) (string, func(args ...string) (string, string, int)) {
	home := t.TempDir()
	rt := t.TempDir()
	vars := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config"), "XDG_RUNTIME_DIR": rt}
	for k, v := range more {
		vars[k] = v
	}
	return home, func(args ...string) (string, string, int) {
		var out, errb syncBuffer
		err := run(context.Background(), args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }})
		return out.String(), errb.String(), report(&errb, err)
	}
}

func TestServiceInstallPrintLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("prints a systemd unit only on Linux")
	}
	cfg := writeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n")
	home, run := serviceEnv(t)
	unit, stderr, code := run("--config", cfg, "service", "install", "--print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if got, want := unitValue(unit, "ExecStart"), systemdQuote(exe)+" --config "+systemdQuote(cfg)+" serve"; got != want {
		t.Errorf("ExecStart=%s\nwant %s", got, want)
	}
	if unitValue(unit, "Restart") != "on-failure" {
		t.Errorf("Restart=%q", unitValue(unit, "Restart"))
	}
	path := filepath.Join(home, ".config", "systemd", "user", "bridge.service")
	if !strings.Contains(stderr, path) {
		t.Errorf("--print does not say where it would write (%s): %q", path, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("--print wrote %s", path)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed; the unit was not verified by systemd")
		return
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "bridge.service")
	os.WriteFile(p, []byte(unit), 0o644)
	cmd := exec.Command(sa, "--user", "verify", p)
	// The user manager it imitates needs a runtime dir.
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// It only warns about unknown keys and bad values; treat those as
	// failures too.
	for _, bad := range []string{"ignoring", "Unknown", "Failed"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("systemd-analyze verify complains:\n%s", out)
			break
		}
	}
}

func TestServiceInstallLinuxIdempotent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("installs a systemd unit only on Linux")
	}
	cfg := writeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n")
	home, run := serviceEnv(t)
	var calls []string
	oldLook, oldRun := lookTool, runTool
	defer func() { lookTool, runTool = oldLook, oldRun }()
	lookTool = func(name string) (string, error) {
		if name == "systemctl" {
			return "/usr/bin/systemctl", nil
		}
		return "", errors.New("not found")
	}
	runTool = func(name string, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		return nil, nil
	}
	path := filepath.Join(home, ".config", "systemd", "user", "bridge.service")

	out, stderr, code := run("--config", cfg, "service", "install")
	if code != 0 || !strings.Contains(out, "wrote "+path) {
		t.Fatalf("install: exit %d, out %q, stderr %q", code, out, stderr)
	}
	want := []string{"--user daemon-reload", "--user enable --now bridge.service", "--user try-restart bridge.service"}
	if strings.Join(calls, "; ") != strings.Join(want, "; ") {
		t.Errorf("systemctl calls %q, want %q", calls, want)
	}
	printed, _, _ := run("--config", cfg, "service", "install", "--print")
	if b, err := os.ReadFile(path); err != nil || string(b) != printed {
		t.Errorf("installed unit differs from --print (%v)", err)
	}

	calls = nil
	out, _, code = run("--config", cfg, "service", "install")
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("second install: exit %d, %q", code, out)
	}
	if strings.Join(calls, "; ") != strings.Join(want[:2], "; ") {
		t.Errorf("second install ran %q, want no restart", calls)
	}

	out, _, _ = run("--config", cfg, "service", "status")
	if !strings.Contains(out, path+": installed") || !strings.Contains(out, "server   not running") {
		t.Errorf("status: %q", out)
	}

	calls = nil
	out, _, code = run("--config", cfg, "service", "uninstall")
	if code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("uninstall: exit %d, %q", code, out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("the unit is still there")
	}
	if len(calls) == 0 || calls[0] != "--user disable --now bridge.service" {
		t.Errorf("uninstall ran %q", calls)
	}
	if out, _, code = run("--config", cfg, "service", "uninstall"); code != 0 || !strings.Contains(out, "not installed") {
		t.Errorf("second uninstall: exit %d, %q", code, out)
	}

	// Without systemctl the unit is written and the user told what to run.
	lookTool = func(string) (string, error) { return "", errors.New("not found") }
	out, _, code = run("--config", cfg, "service", "install")
	if code != 0 || !strings.Contains(out, "systemctl --user enable --now bridge.service") {
		t.Errorf("install without systemctl: exit %d, %q", code, out)
	}
}

func TestServiceUsage(t *testing.T) {
	cfg := writeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n")
	_, run := serviceEnv(t)
	for _, args := range [][]string{{"service"}, {"service", "frob"}, {"service", "status", "--print"}} {
		if _, _, code := run(append([]string{"--config", cfg}, args...)...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestServiceInstallEncryptedStore: with an encrypted token file, the
// systemd unit passes the passphrase file on as a credential and points
// BRIDGE_STORE_PASSPHRASE_FILE at it; when that file is not there yet,
// install says how to make it. systemd-analyze, where installed, accepts
// the unit.
func TestServiceInstallEncryptedStore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("writes a systemd unit only on Linux")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "tokens.json")
	t.Setenv(tokens.PassphraseFileEnv, "")
	t.Setenv(tokens.PassphraseEnv, "correct horse")
	st, err := tokens.NewFileStore(store)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("a@b.test", tokens.Entry{RefreshToken: "rt", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n", store))
	_, run := serviceEnv(t)

	// No passphrase file named: the unit uses store-passphrase next to
	// the config, and install says to create it.
	unit, stderr, code := run("--config", cfg, "service", "install", "--print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	def := filepath.Join(filepath.Dir(cfg), "store-passphrase")
	if got, want := unitValue(unit, "LoadCredential"), "bridge-store-passphrase:"+def; got != want {
		t.Errorf("LoadCredential=%s, want %s", got, want)
	}
	if got, want := unitValue(unit, "Environment"), "BRIDGE_STORE_PASSPHRASE_FILE=%d/bridge-store-passphrase"; got != want {
		t.Errorf("Environment=%s, want %s", got, want)
	}
	if !strings.Contains(stderr, def) || !strings.Contains(stderr, "encrypted") || !strings.Contains(stderr, "install -m 600") {
		t.Errorf("install does not say how to make the passphrase file: %q", stderr)
	}
	if strings.Contains(unit, "correct horse") || strings.Contains(stderr, "correct horse") {
		t.Error("the passphrase itself reached the unit or the output")
	}
	verifyUnit(t, unit)

	// A passphrase file named in the environment is the one used.
	passFile := filepath.Join(dir, "my passphrase")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, runWith := serviceEnvWith(t, map[string]string{tokens.PassphraseFileEnv: passFile})
	unit, stderr, code = runWith("--config", cfg, "service", "install", "--print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, want := unitValue(unit, "LoadCredential"), "bridge-store-passphrase:"+passFile; got != want {
		t.Errorf("LoadCredential=%s, want %s", got, want)
	}
	if strings.Contains(stderr, "not there yet") {
		t.Errorf("install asks for a passphrase file that exists: %q", stderr)
	}
	verifyUnit(t, unit)

	// A plain store needs none.
	plain := writeConfig(t, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n", filepath.Join(dir, "plain.json")))
	unit, _, _ = run("--config", plain, "service", "install", "--print")
	if unitValue(unit, "LoadCredential") != "" {
		t.Errorf("a plain store's unit loads a credential:\n%s", unit)
	}
}

// verifyUnit runs systemd-analyze verify on a user unit, where installed,
// and fails on any complaint.
func verifyUnit(t *testing.T, unit string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed; the unit was not verified by systemd")
		return
	}
	p := filepath.Join(t.TempDir(), "bridge.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "--user", "verify", p)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, bad := range []string{"ignoring", "Unknown", "Failed"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("systemd-analyze verify complains:\n%s", out)
			break
		}
	}
}
