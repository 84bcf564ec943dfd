//go:build !linux && !darwin && !windows

package main

import "errors"

// newServiceHost has no per-user autostart to offer on this system.
func newServiceHost(e *env, s serviceSpec) (serviceHost, error) {
	return nil, errors.New("service: autostart is set up on Linux (systemd), macOS (launchd) and Windows only; start `bridge serve` from your session's autostart instead")
}
