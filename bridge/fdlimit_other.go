//go:build !unix

package bridge

// fileLimit reports no limit on open descriptors: Windows has none that
// sockets count against, so the cap takes a fixed default.
func fileLimit() (uint64, bool) { return 0, false }
