//go:build race

package main

// raceBuild says the race detector is on: its instrumentation deepens
// every stack.
const raceBuild = true
