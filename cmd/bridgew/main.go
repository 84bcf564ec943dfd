// Command bridgew starts `bridge serve` on Windows without a console
// window. It is built for the GUI subsystem (-ldflags -H=windowsgui), so
// Windows opens no console for it, and it starts its command with
// CREATE_NO_WINDOW, the command's output appended to a log file.
// `bridge service install` puts it in the Run key when bridgew.exe is next
// to bridge.exe:
//
//	bridgew.exe --log FILE -- bridge.exe --config FILE serve
//
// It waits for the command, notes how it ended in the log, and exits with
// its exit code.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// maxLog is the size past which the log is moved to FILE.old when the
// launcher starts, so a log kept across months of logons stays bounded.
const maxLog = 10 << 20

func main() {
	os.Exit(launch(os.Args[1:], os.Stderr))
}

// launch runs the command in args and returns the exit code. Errors before
// the log is open go to stderr, which a GUI-subsystem program does not
// have: there they are lost, and the exit code (2) alone tells.
func launch(args []string, stderr io.Writer) int {
	if len(args) < 4 || args[0] != "--log" || args[2] != "--" {
		fmt.Fprintln(stderr, "usage: bridgew --log FILE -- COMMAND [ARGS]")
		return 2
	}
	logFile, argv := args[1], args[3:]
	log, err := openLog(logFile)
	if err != nil {
		fmt.Fprintf(stderr, "bridgew: %v\n", err)
		return 2
	}
	defer log.Close()
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdout, c.Stderr = log, log
	hide(c)
	err = c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		fmt.Fprintf(log, "%s bridgew: %s ended: %v\n", time.Now().Format(time.RFC3339), filepath.Base(argv[0]), err)
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(log, "%s bridgew: starting %s: %v\n", time.Now().Format(time.RFC3339), argv[0], err)
		return 1
	}
	return 0
}

// openLog opens the log for appending, readable by the user alone, after
// moving one past maxLog aside.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLog {
		if err := os.Rename(path, path+".old"); err != nil {
			return nil, err
		}
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}
