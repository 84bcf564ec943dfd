package bridge

import (
	"crypto/tls"
	"log/slog"
	"strings"

	"github.com/mailbridge/bridge/tlsutil"
)

// watchLocalTLS returns a copy of the local listeners' TLS config that logs,
// at warn, a client refused because every TLS version it offers is below
// the configured minimum: the handshake then fails inside crypto/tls with
// no word to the client or the log, and the person needs to know which
// setting lets the client in. nil stays nil.
func watchLocalTLS(local *tls.Config, log *slog.Logger) *tls.Config {
	if local == nil {
		return nil
	}
	c := local.Clone()
	min := c.MinVersion
	c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		var offered []string
		var best uint16
		for _, v := range h.SupportedVersions {
			// GREASE values (RFC 8701) and unknown versions are left out.
			if v < 0x0300 || v > tls.VersionTLS13 {
				continue
			}
			offered = append(offered, tlsutil.VersionName(v))
			best = max(best, v)
		}
		if best == 0 || best >= min {
			return nil, nil
		}
		fix := `set [tls] local_min_version = "` + tlsutil.VersionName(best) + `" and restart the bridge to let it in`
		if best < tls.VersionTLS10 {
			fix = "no setting lets it in: the bridge speaks TLS 1.0 at the oldest"
		}
		log.Warn("local TLS handshake refused: the client offers only TLS versions older than the minimum",
			"peer", peerString(h.Conn.RemoteAddr()), "offered", strings.Join(offered, ","),
			"minimum", tlsutil.VersionName(min), "fix", fix)
		return nil, nil
	}
	return c
}
