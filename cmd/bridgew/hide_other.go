//go:build !windows

package main

import "os/exec"

// hide does nothing outside Windows, where no console window opens; the
// launcher runs there only in its tests.
func hide(c *exec.Cmd) {}
