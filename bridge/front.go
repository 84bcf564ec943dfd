package bridge

import (
	"crypto/tls"
	"sync/atomic"
	"time"
)

// FrontOptions configure a protocol front end (IMAP, POP3, SMTP). The zero
// value serves plain connections with no STARTTLS and default limits.
type FrontOptions struct {
	// TLS is the local certificate's server config. With it, STARTTLS/STLS
	// is offered and implicit-TLS listeners work; nil offers neither.
	TLS *tls.Config
	// RequireTLS refuses logins before TLS (set when allow_remote is on:
	// a password must not cross a network in the clear).
	RequireTLS bool
	// PreLoginTimeout bounds the whole pre-login phase; 0 is 60 s.
	PreLoginTimeout time.Duration
	// IdleTimeout closes a relayed session with no traffic either way for
	// this long; 0 is 35 minutes (longer than IMAP IDLE's 29-minute
	// restart, RFC 2177 §3).
	IdleTimeout time.Duration
	// MaxFailures is how many failed logins one connection may make before
	// it is closed; 0 is 3.
	MaxFailures int
	// Trace logs the pre-login lines of every connection, and the bridge's
	// own login upstream, at debug level with credentials redacted
	// ([log] trace); false logs no wire lines.
	Trace bool

	// traceOn, when set, replaces Trace: the front ends a Server made
	// share it, so that Server.Reload switches tracing for new
	// connections.
	traceOn *atomic.Bool
	// limit caps the connections of the front ends of one Server
	// together (listen.max_connections); nil caps nothing.
	limit *connLimit
}

// tracing reports whether a new connection's pre-login lines are logged.
func (o FrontOptions) tracing() bool {
	if o.traceOn != nil {
		return o.traceOn.Load()
	}
	return o.Trace
}

func (o FrontOptions) preLogin() time.Duration {
	if o.PreLoginTimeout > 0 {
		return o.PreLoginTimeout
	}
	return 60 * time.Second
}

func (o FrontOptions) idle() time.Duration {
	if o.IdleTimeout > 0 {
		return o.IdleTimeout
	}
	return 35 * time.Minute
}

func (o FrontOptions) maxFailures() int {
	if o.MaxFailures > 0 {
		return o.MaxFailures
	}
	return 3
}
