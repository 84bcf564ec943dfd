package integration

import (
	"path/filepath"
	"testing"

	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// testUser is the mailbox every test works with.
const testUser = "user@example.com"

// upstream is the real-server side of a test: the identity platform, a
// Dovecot that checks its tokens, the sink behind Dovecot's submission
// service, and the CA that signed Dovecot's certificate.
type upstream struct {
	idp    *tokenstest.Server
	ca     *tlsutil.TestCA
	caFile string // the CA as PEM, for tls.upstream_ca_file and clients
	dc     *dovecot
	sink   *sink
	seed   []message
}

// startUpstream starts everything a test needs upstream of the bridge. It
// skips when Dovecot is not installed.
func startUpstream(t testing.TB, opts tokenstest.Options) *upstream {
	t.Helper()
	needDovecot(t)
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	idp := tokenstest.New(opts)
	t.Cleanup(idp.Close)
	sk := startSink(t)
	seed := seedMessages(testUser)
	dc := startDovecot(t, dovecotOptions{
		CA:            ca,
		IntrospectURL: idp.IntrospectURL(),
		RelayPort:     sk.port(),
		User:          testUser,
		Seed:          seed,
	})
	sk.deliverLocally(testUser, dc.mail)
	return &upstream{idp: idp, ca: ca, caFile: caFile, dc: dc, sink: sk, seed: seed}
}

// tokensOptions are the identity platform's settings for the tests: it
// knows one app registration, the bridge's.
func tokensOptions() tokenstest.Options {
	return tokenstest.Options{ClientID: testClientID}
}
