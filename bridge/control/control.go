// Package control is the local control socket of a running `bridge serve`:
// `bridge status` and `bridge tray` ask it for the live state, a reload, and
// a stream of account events; `bridge doctor` for an account's access
// token, so that it never refreshes beside the server. It speaks HTTP with JSON bodies over a Unix
// socket that only the user can reach (mode 0600 in a 0700 directory), or,
// on Windows, over a loopback TCP port guarded by a random token kept in a
// file only the user can read. A lock file next to the socket holds the pid
// of the server, so a second server for the same config refuses to start.
package control

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// ErrNotRunning means no server answers on the endpoint.
var ErrNotRunning = errors.New("control: no bridge server is running for this config")

// RunningError says that another server already holds the endpoint.
type RunningError struct {
	// PID is the process that holds the lock; 0 when it could not be read.
	PID int
	// Config is the config file both servers were started with.
	Config string
}

func (e *RunningError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("control: a bridge server for %s is already running (%s); stop it first, or use `bridge status` to talk to it", e.Config, who)
}

// Status is what GET /status answers: the bridge's snapshot plus what only
// the running process knows.
type Status struct {
	bridge.Status
	// PID is the server's process id.
	PID int `json:"pid"`
	// Config is the config file the server runs with.
	Config string `json:"config,omitempty"`
	// Listeners are the bound addresses by config key ("listen.imap"),
	// the first of each.
	Listeners map[string]string `json:"listeners"`
	// Bound lists every bound address by config key, the loopback twins
	// included.
	Bound map[string][]string `json:"bound"`
	// Started is when the server started.
	Started time.Time `json:"started"`
}

// Endpoint names where the control socket of one config lives. The name is
// derived from the config file's absolute path, so servers for two configs
// never collide.
type Endpoint struct {
	// Dir is the private directory holding the socket and lock file.
	Dir string
	// Name is the base name shared by the socket, lock and port files.
	Name string
	// Config is the absolute config path the name was derived from.
	Config string

	// tcp selects the loopback TCP transport (always on Windows; tests use
	// it elsewhere).
	tcp bool
}

// DefaultDir returns the directory for control sockets:
// $XDG_RUNTIME_DIR/bridge when set (it is private and cleared at logout),
// else <user cache dir>/bridge/run. getenv nil means os.Getenv. No I/O
// besides looking up the cache dir.
func DefaultDir(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) && runtime.GOOS != "windows" {
		return filepath.Join(d, "bridge"), nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("control: no directory for the control socket: %w", err)
	}
	return filepath.Join(c, "bridge", "run"), nil
}

// NewEndpoint returns the endpoint in dir for the config file at
// configPath. It does no I/O besides making configPath absolute.
func NewEndpoint(dir, configPath string) (Endpoint, error) {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return Endpoint{}, fmt.Errorf("control: %w", err)
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return Endpoint{Dir: dir, Name: hex.EncodeToString(sum[:6]), Config: abs, tcp: runtime.GOOS == "windows"}, nil
}

// Socket is the Unix socket's path.
func (e Endpoint) Socket() string { return filepath.Join(e.Dir, e.Name+".sock") }

// LockFile is the lock file; it holds the server's pid.
func (e Endpoint) LockFile() string { return filepath.Join(e.Dir, e.Name+".pid") }

// PortFile is where the TCP transport keeps its address and token.
func (e Endpoint) PortFile() string { return filepath.Join(e.Dir, e.Name+".port") }

// ensureDir makes the private directory, or tightens one that exists.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control: %s is not a directory", dir)
	}
	if err := checkOwner(fi); err != nil {
		return err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	return nil
}
