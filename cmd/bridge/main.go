// Command bridge lets mail clients that only know passwords use Microsoft 365
// and Outlook.com mailboxes: it logs in upstream with OAuth (SASL XOAUTH2)
// on their behalf. Run `bridge help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(report(os.Stderr, err))
}
