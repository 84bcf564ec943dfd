//go:build darwin && !cgo

package main

import (
	"context"
	"errors"
)

// trayMain explains why this build has no tray: on macOS systray needs
// cgo and Cocoa.
func trayMain(ctx context.Context, app *trayApp) error {
	return errors.New("tray: this build has no tray icon: on macOS the tray needs cgo, so build bridge with CGO_ENABLED=1 on a Mac; `bridge serve`, `bridge status` and `bridge service` work without it")
}
