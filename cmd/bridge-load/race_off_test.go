//go:build !race

package main

// raceBuild says the race detector is on (race_on_test.go).
const raceBuild = false
