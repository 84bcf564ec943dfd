package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/mailbridge/bridge/tokens"
)

// The autostart definitions are plain text built here, on every OS, so
// each one is tested everywhere; only writing them is per-OS
// (service_linux.go, service_darwin.go, service_windows.go).

// serviceName names the systemd unit and the Windows Run value.
const serviceName = "bridge"

// launchdLabel is the macOS LaunchAgent label (and plist file name).
const launchdLabel = "com.github.mailbridge.bridge"

// systemdQuote quotes one ExecStart word (systemd.service(5), "Command
// lines"): double quotes with C-style escapes, and % and $ doubled because
// systemd expands specifiers and variables even inside quotes.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$")
	return `"` + r.Replace(s) + `"`
}

// passphraseCredential names the systemd credential that carries the
// token file's passphrase into the service.
const passphraseCredential = "bridge-store-passphrase"

// systemdUnit is the per-user unit for ~/.config/systemd/user/bridge.service.
// Exit status 2 is a config error, which restarting cannot fix. With
// passFile, systemd copies that file into the service's credentials
// directory (LoadCredential=, readable by the service alone, not in the
// unit or its environment) and the bridge reads the passphrase from there
// (%d is that directory). With config "", the unit runs the default
// config: that is the unit the packages install in /usr/lib/systemd/user
// (packaging/bridge.service).
func systemdUnit(exe, config, passFile string) (string, error) {
	if err := oneLine(exe, config, passFile); err != nil {
		return "", err
	}
	args := systemdQuote(exe)
	if config != "" {
		args += " --config " + systemdQuote(config)
	}
	cred := ""
	if passFile != "" {
		cred = fmt.Sprintf("LoadCredential=%s:%s\nEnvironment=%s=%%d/%s\n",
			passphraseCredential, strings.ReplaceAll(passFile, "%", "%%"), tokens.PassphraseFileEnv, passphraseCredential)
	}
	return fmt.Sprintf(`[Unit]
Description=OAuth mail bridge for password-only mail clients

[Service]
Type=simple
ExecStart=%s serve
ExecReload=kill -HUP $MAINPID
%sRestart=on-failure
RestartSec=5
RestartPreventExitStatus=2

[Install]
WantedBy=default.target
`, args, cred), nil
}

// launchdPlist is the LaunchAgent for ~/Library/LaunchAgents/<label>.plist.
// KeepAlive restarts the bridge only when it fails, like Restart=on-failure.
func launchdPlist(label, exe, config, logFile string) (string, error) {
	if err := oneLine(exe, config, logFile); err != nil {
		return "", err
	}
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>%s</string>
	<key>ProgramArguments</key>
	<array>
		<string>%s</string>
		<string>--config</string>
		<string>%s</string>
		<string>serve</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ProcessType</key>
	<string>Interactive</string>
	<key>StandardOutPath</key>
	<string>%s</string>
	<key>StandardErrorPath</key>
	<string>%s</string>
</dict>
</plist>
`, esc(label), esc(exe), esc(config), esc(logFile), esc(logFile)), nil
}

// windowsRunCommand is the command line for the user's Run key. `start
// /min` keeps the console window of `bridge serve` out of the way; closing
// that window would stop the bridge.
func windowsRunCommand(exe, config string) (string, error) {
	if err := oneLine(exe, config); err != nil {
		return "", err
	}
	for _, p := range []string{exe, config} {
		// cmd.exe expands %VAR% and treats " as the end of the word even in
		// quotes; such paths cannot be written safely.
		if strings.ContainsAny(p, `%"`) {
			return "", fmt.Errorf("%w: the path %q holds %% or \", which the Run key's command line cannot carry", errConfig, p)
		}
	}
	return fmt.Sprintf(`cmd.exe /d /c start "bridge" /min "%s" --config "%s" serve`, exe, config), nil
}

// windowsRunKey is the registry key, under HKEY_CURRENT_USER, of programs
// started at the user's logon.
const windowsRunKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// windowsRegFile shows the Run value as a .reg file, for --print and for
// anyone who would rather import it by hand.
func windowsRegFile(name, command string) string {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return "Windows Registry Editor Version 5.00\r\n\r\n" +
		`[HKEY_CURRENT_USER\` + windowsRunKey + "]\r\n" +
		`"` + q.Replace(name) + `"="` + q.Replace(command) + "\"\r\n"
}

// oneLine refuses values no definition format can carry on one line.
func oneLine(vals ...string) error {
	for _, v := range vals {
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%w: %q holds a line break", errConfig, v)
		}
	}
	return nil
}
