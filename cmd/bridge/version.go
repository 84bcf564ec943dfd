package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func runVersion(ctx context.Context, e *env, args []string) error {
	if pos, err := parseFlags(newFlags("version"), args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge version")
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(e.stdout, "bridge %s\n", v)
	return nil
}
