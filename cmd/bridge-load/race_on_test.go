//go:build race

package main

// raceBuild says the race detector is on: its instrumentation deepens
// every stack, so the stack bounds hold only without it.
const raceBuild = true
