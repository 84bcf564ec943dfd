//go:build !darwin || cgo

package main

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"time"

	"fyne.io/systray"

	"github.com/mailbridge/bridge/cmd/bridge/internal/traymodel"
)

// trayMain draws the tray until Quit or ctx ends. systray.Run must own
// the main thread on macOS, so it is called from the command's goroutine,
// which is main's.
func trayMain(ctx context.Context, app *trayApp) (err error) {
	if err := traySessionCheck(runtime.GOOS, app.e.getenv, lookTool); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// systray reaches a nil D-Bus connection when the bus went away
	// between the check and the start; say so instead of crashing.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tray: the system tray failed: %v", r)
		}
	}()
	// Quit also when ctx ends before onReady ran (no tray host yet).
	go func() { <-ctx.Done(); systray.Quit() }()
	systray.Run(func() { go drawLoop(ctx, app) }, cancel)
	return nil
}

// drawLoop rebuilds the menu when the model changes: on server events,
// after actions, and every 15 s.
func drawLoop(ctx context.Context, app *trayApp) {
	systray.SetTitle("")
	go app.watch(ctx)
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	var shown *traymodel.Menu
	stop := context.CancelFunc(func() {})
	for {
		m := traymodel.Build(app.input(ctx))
		if shown == nil || !reflect.DeepEqual(*shown, m) {
			stop()
			var gen context.Context
			gen, stop = context.WithCancel(ctx)
			draw(gen, app, m)
			shown = &m
		}
		select {
		case <-ctx.Done():
			stop()
			systray.Quit()
			return
		case <-tick.C:
		case <-app.poke:
		}
	}
}

// draw replaces the menu with m; gen ends the click watchers of this
// drawing when the next one replaces it.
func draw(gen context.Context, app *trayApp, m traymodel.Menu) {
	systray.ResetMenu()
	systray.SetIcon(trayIcon(m.Icon, runtime.GOOS))
	systray.SetTooltip(m.Tooltip)
	for _, it := range m.Items {
		if it.Separator {
			systray.AddSeparator()
			continue
		}
		mi := systray.AddMenuItem(it.Title, it.Tooltip)
		addItem(gen, app, mi, it)
	}
}

func addItem(gen context.Context, app *trayApp, mi *systray.MenuItem, it traymodel.Item) {
	if it.Disabled {
		mi.Disable()
	}
	for _, c := range it.Children {
		if c.Separator {
			mi.AddSeparator()
			continue
		}
		addItem(gen, app, mi.AddSubMenuItem(c.Title, c.Tooltip), c)
	}
	if it.Action == traymodel.ActionNone {
		return
	}
	go func() {
		for {
			select {
			case <-gen.Done():
				return
			case <-mi.ClickedCh:
				if it.Action == traymodel.ActionQuit {
					systray.Quit()
					return
				}
				go app.do(context.WithoutCancel(gen), it)
			}
		}
	}()
}
