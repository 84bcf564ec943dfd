package main

import (
	"fmt"
	"os"
	"strings"
)

// windowsLogFile is where the launcher appends the output of the
// background `bridge serve`, under %LocalAppData%; the tray's "Open log"
// opens it.
func windowsLogFile(localAppData string) string {
	return strings.TrimRight(localAppData, `\`) + `\bridge\bridge.log`
}

// localAppData is %LocalAppData% (Windows' answer to os.UserCacheDir).
func localAppData(e *env) (string, error) {
	if d := e.getenv("LocalAppData"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	return d, nil
}

// windowsLauncherCommand is the Run key's command line that starts `bridge
// serve` through the launcher, without a console window, its output in
// logFile. The Run key's commands are not run by cmd.exe: only the
// quoting of the arguments matters (CommandLineToArgvW's rules).
func windowsLauncherCommand(launcher, logFile, exe, config string) (string, error) {
	if err := oneLine(launcher, logFile, exe, config); err != nil {
		return "", err
	}
	var words []string
	for _, p := range []string{launcher, "--log", logFile, "--", exe, "--config", config, "serve"} {
		if strings.Contains(p, `"`) {
			return "", fmt.Errorf("%w: the path %q holds \", which the Run key's command line cannot carry", errConfig, p)
		}
		if strings.HasPrefix(p, "-") || p == "serve" {
			words = append(words, p)
			continue
		}
		// A backslash before the closing quote would escape it: double the
		// trailing ones.
		trail := len(p) - len(strings.TrimRight(p, `\`))
		words = append(words, `"`+p+strings.Repeat(`\`, trail)+`"`)
	}
	return strings.Join(words, " "), nil
}
