package main

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// hide starts c without a console window: bridge.exe is a console
// program, and Windows would open a console for it, since bridgew has
// none to share.
func hide(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW}
}
