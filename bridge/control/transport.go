package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mailbridge/bridge/internal/atomicfile"
)

// portInfo is the TCP transport's port file: where the server listens and
// the token a client must present.
type portInfo struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// maxSocketPath is the shortest sun_path limit among the systems we build
// for (macOS: 104 bytes including the NUL).
const maxSocketPath = 103

// listenEndpoint binds the endpoint. The caller holds the lock. It returns
// the token clients must send ("" for a Unix socket, whose file mode is
// the guard).
func listenEndpoint(ep Endpoint) (net.Listener, string, error) {
	if ep.tcp {
		return listenTCP(ep)
	}
	path := ep.Socket()
	if len(path) > maxSocketPath {
		return nil, "", fmt.Errorf("control: socket path %s is longer than %d bytes; set XDG_RUNTIME_DIR to a shorter directory", path, maxSocketPath)
	}
	if _, err := os.Lstat(path); err == nil {
		// A socket nobody answers on is what a crashed server leaves.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, "", &RunningError{PID: readPID(ep.LockFile()), Config: ep.Config}
		}
		if err := os.Remove(path); err != nil {
			return nil, "", fmt.Errorf("control: removing the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("control: %w", err)
	}
	return ln, "", nil
}

// listenTCP binds a loopback port and publishes it with a fresh token in a
// file only the user can read.
func listenTCP(ep Endpoint) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("control: %w", err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	info := portInfo{Addr: ln.Addr().String(), Token: hex.EncodeToString(raw[:]), PID: os.Getpid()}
	b, _ := json.Marshal(info)
	err = atomicfile.Write(ep.PortFile(), b, 0o600)
	if err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("control: writing the port file: %w", err)
	}
	return ln, info.Token, nil
}

// cleanupEndpoint removes what listenEndpoint left on disk (the Unix
// listener unlinks its own socket).
func cleanupEndpoint(ep Endpoint) {
	if ep.tcp {
		os.Remove(ep.PortFile())
	}
}

// readPortFile reads the TCP transport's address and token.
func readPortFile(ep Endpoint) (portInfo, error) {
	var info portInfo
	b, err := os.ReadFile(ep.PortFile())
	if err != nil {
		return info, notRunning(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("control: %s: %w", filepath.Base(ep.PortFile()), err)
	}
	if h, _, err := net.SplitHostPort(info.Addr); err != nil || !net.ParseIP(h).IsLoopback() {
		return info, fmt.Errorf("control: %s names a non-loopback address", ep.PortFile())
	}
	return info, nil
}

// endpointToken returns the token a client must send ("" for a Unix
// socket).
func endpointToken(ep Endpoint) (string, error) {
	if !ep.tcp {
		return "", nil
	}
	info, err := readPortFile(ep)
	return info.Token, err
}

// dialEndpoint connects to a running server; the error wraps
// ErrNotRunning when nobody answers.
func dialEndpoint(ctx context.Context, ep Endpoint) (net.Conn, error) {
	var d net.Dialer
	network, addr := "unix", ep.Socket()
	if ep.tcp {
		info, err := readPortFile(ep)
		if err != nil {
			return nil, err
		}
		network, addr = "tcp", info.Addr
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, notRunning(err)
	}
	return c, nil
}

func notRunning(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("control: %w", err)
	}
	return fmt.Errorf("%w (%v)", ErrNotRunning, err)
}
