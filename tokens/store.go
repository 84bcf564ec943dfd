package tokens

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrKeyringUnavailable wraps every failure to reach the OS keyring (no
// D-Bus session, no Secret Service, a locked collection). The fix is either
// to start or unlock a keyring, or to use the file backend.
var ErrKeyringUnavailable = errors.New("tokens: the OS keyring is unreachable")

// OpenStore returns the store named by backend: "keyring" (the default when
// backend is empty) or "file". path only matters for "file"; empty means
// DefaultFilePath. OpenStore does no keyring I/O; call Ping on the keyring
// store to learn early whether it works. The file store creates its
// directory (mode 0700) if missing.
func OpenStore(backend, path string) (Store, error) {
	switch strings.ToLower(strings.TrimSpace(backend)) {
	case "", "keyring":
		return NewKeyringStore(), nil
	case "file":
		return NewFileStore(path)
	}
	return nil, fmt.Errorf("tokens: unknown store backend %q (want \"keyring\" or \"file\")", backend)
}

// DefaultFilePath is where the file store keeps its tokens when no path is
// configured: $XDG_STATE_HOME/bridge/tokens.json (~/.local/state when
// XDG_STATE_HOME is unset) on Linux and the BSDs, and the user config
// directory (os.UserConfigDir) elsewhere.
func DefaultFilePath() (string, error) {
	const rel = "bridge/tokens.json"
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9", "android", "js", "wasip1":
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("tokens: no default token file location: %w", err)
		}
		return filepath.Join(dir, filepath.FromSlash(rel)), nil
	}
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, filepath.FromSlash(rel)), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("tokens: no default token file location (set [store] path): %w", err)
	}
	return filepath.Join(home, ".local", "state", filepath.FromSlash(rel)), nil
}
