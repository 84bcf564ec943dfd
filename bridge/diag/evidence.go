package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// evidence is a failure flattened into the fields matchers look at.
type evidence struct {
	proto    Proto
	stage    Stage
	code     int
	enhanced string
	respCode string
	text     string // the upstream's words, for matching
	aadsts   int
	oauth    string
	cond     string
	account  string // the address the error itself names
	host     string // host:port dialled, if known
	proxy    string // host:port of the proxy it went through, if one failed
	raw      string // what the upstream said, for people
	provider string // the account's provider, lower case
}

var (
	aadstsRE   = regexp.MustCompile(`AADSTS(\d+)`)
	replyRE    = regexp.MustCompile(`^([2-5]\d\d)[ -]`)
	enhancedRE = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})\s`)
)

// gather reads err. A failed proxy comes first, wherever it is wrapped: the
// server behind it never saw the request. Token errors come next: a front
// end that could not get a token wraps the *tokens.Error in its own
// failure, and the token's story is the one to tell.
func gather(err error) evidence {
	var te *tokens.Error
	var f *Failure
	var pe *proxy.Error
	switch {
	case errors.As(err, &pe):
		return fromProxy(pe, err)
	case errors.As(err, &te):
		return fromToken(te, err)
	case errors.Is(err, tokens.ErrNeedsLogin):
		ev := evidence{proto: ProtoToken, cond: CondNeedsLogin, text: err.Error(), raw: err.Error()}
		// The stored reason often carries the AADSTS number that caused it.
		if m := aadstsRE.FindStringSubmatch(ev.text); m != nil {
			ev.aadsts, _ = strconv.Atoi(m[1])
		}
		return ev
	case errors.As(err, &f):
		return fromFailure(f)
	case errors.Is(err, tokens.ErrScopeNotGranted):
		return evidence{proto: ProtoToken, cond: CondScopeNotGranted, text: err.Error(), raw: err.Error()}
	}
	ev := evidence{text: err.Error(), raw: err.Error()}
	if c := netCond(err); c != CondNet || isNetError(err) {
		ev.cond, ev.host = c, errHost(err)
	}
	return ev
}

func fromToken(te *tokens.Error, err error) evidence {
	ev := evidence{
		proto:   ProtoToken,
		stage:   Stage(te.Op),
		aadsts:  te.AADSTS,
		oauth:   te.Code,
		account: te.Account,
		text:    te.Description + " " + te.Code,
	}
	switch {
	case te.Temporary():
		ev.cond = CondTemporary
	case te.NeedsLogin() || errors.Is(err, tokens.ErrNeedsLogin):
		ev.cond = CondNeedsLogin
	}
	if ev.aadsts == 0 {
		if m := aadstsRE.FindStringSubmatch(te.Description); m != nil {
			ev.aadsts, _ = strconv.Atoi(m[1])
		}
	}
	// A request that got no answer names the token endpoint it went to.
	var ue *url.Error
	if errors.As(te.Err, &ue) {
		ev.host = hostOf(ue.URL)
	} else if te.Err != nil {
		ev.host = errHost(te.Err)
	}
	switch {
	case te.Err != nil:
		ev.raw = te.Err.Error()
		ev.text += " " + ev.raw
	case te.Description != "":
		ev.raw = strings.TrimSpace(fmt.Sprintf("%s %s", te.Code, te.Description))
	case te.Code != "":
		ev.raw = te.Code
	default:
		ev.raw = fmt.Sprintf("HTTP %d", te.Status)
	}
	if te.Status != 0 && te.Err == nil {
		ev.raw = fmt.Sprintf("HTTP %d %s", te.Status, ev.raw)
	}
	return ev
}

func fromFailure(f *Failure) evidence {
	ev := evidence{
		proto:    normProto(f.Proto),
		stage:    Stage(strings.ToLower(string(f.Stage))),
		code:     f.Code,
		enhanced: f.Enhanced,
		respCode: strings.ToUpper(f.RespCode),
	}
	text := strings.TrimSpace(f.Text)
	if f.Err != nil {
		// Dial and TLS failures carry the address in Text and the reason
		// in Err.
		ev.cond = netCond(f.Err)
		ev.host = text
		if h := errHost(f.Err); ev.host == "" {
			ev.host = h
		}
		ev.text = f.Err.Error()
		ev.raw = ev.text
		return ev
	}
	// Front ends may hand over the whole reply line: take the numbers
	// out so matchers see the same shape either way.
	if ev.proto == ProtoSMTP {
		if m := replyRE.FindStringSubmatch(text); m != nil {
			if ev.code == 0 {
				ev.code, _ = strconv.Atoi(m[1])
			}
			text = strings.TrimSpace(text[len(m[0]):])
		}
		if m := enhancedRE.FindStringSubmatch(text + " "); m != nil {
			if ev.enhanced == "" {
				ev.enhanced = m[1]
			}
			text = strings.TrimSpace(strings.TrimPrefix(text, m[1]))
		}
	}
	ev.text = text
	var raw []string
	if ev.code != 0 {
		raw = append(raw, strconv.Itoa(ev.code))
	}
	if ev.enhanced != "" {
		raw = append(raw, ev.enhanced)
	}
	if ev.respCode != "" {
		raw = append(raw, "["+ev.respCode+"]")
	}
	ev.raw = strings.Join(append(raw, text), " ")
	return ev
}

// netCond sorts a transport error into one of the dial/TLS conditions.
func netCond(err error) string {
	var (
		dnsErr   *net.DNSError
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		invErr   x509.CertificateInvalidError
		verErr   *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &verErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &invErr):
		return CondCert
	case errors.As(err, &recErr), errors.As(err, &alertErr):
		return CondTLS
	case errors.As(err, &dnsErr):
		return CondDNS
	case errors.Is(err, syscall.ECONNREFUSED),
		strings.Contains(err.Error(), "connection refused"),
		strings.Contains(err.Error(), "actively refused"):
		return CondRefused
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return CondTimeout
	case strings.Contains(err.Error(), "tls: "):
		return CondTLS
	}
	return CondNet
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// errHost finds the address a transport error names.
func errHost(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Name
	}
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		return hostErr.Host
	}
	return ""
}

// normProto accepts the short names front ends might use.
func normProto(p Proto) Proto {
	p = Proto(strings.ToLower(string(p)))
	if p == "pop" {
		return ProtoPOP3
	}
	return p
}
