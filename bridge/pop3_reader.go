package bridge

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
)

// Bounds on the POP3 pre-login dialogue.
const (
	// pop3MaxCommand is the longest command line, CRLF included
	// (RFC 2449 section 4).
	pop3MaxCommand = 255
	// pop3MaxAuthLine is the longest AUTH PLAIN line: an authorization
	// identity, a login name and a password in base64 need more than 255
	// octets at times, and RFC 5034 section 4 sets no limit of its own.
	pop3MaxAuthLine = 1024
	// pop3MaxCommands bounds how many commands one connection may send
	// before logging in, so a client cannot keep a session busy forever
	// within the pre-login deadline.
	pop3MaxCommands = 100
)

// Replies the POP3 reader sends. The reader never echoes what the client
// sent, which the fuzz test checks.
const (
	pop3Greeting     = "+OK bridge POP3 ready"
	pop3Bye          = "+OK bridge POP3 signing off"
	pop3TLSRequired  = "-ERR [AUTH] TLS required"
	pop3BadCreds     = "-ERR [AUTH] " + badPasswordText
	pop3LineTooLong  = "-ERR Line too long"
	pop3TooMany      = "-ERR Too many commands; closing"
	pop3Unknown      = "-ERR Unknown command"
	pop3NotLoggedIn  = "-ERR Not logged in"
	pop3NeedUser     = "-ERR Send USER first"
	pop3NeedArg      = "-ERR Missing argument"
	pop3NoMech       = "-ERR Unrecognized authentication mechanism"
	pop3AuthCanceled = "-ERR AUTH canceled"
	pop3BadPlain     = "-ERR [AUTH] Invalid AUTH PLAIN response"
	pop3NoSTLS       = "-ERR STLS not available"
	pop3STLSPipeline = "-ERR Command sent after STLS; closing"
	pop3BeginTLS     = "+OK Begin TLS negotiation"
	pop3UserOK       = "+OK Send PASS"
	pop3NoopOK       = "+OK"
	pop3Challenge    = "+ "
)

// Errors that end the pre-login dialogue; the client has had its reply.
var (
	errPOP3LineTooLong  = errors.New("bridge: pop3: line too long")
	errPOP3TooMany      = errors.New("bridge: pop3: too many commands before login")
	errPOP3TooManyFails = errors.New("bridge: pop3: too many failed logins")
	errPOP3STLSPipeline = errors.New("bridge: pop3: data pipelined after STLS")
)

// pop3ReqKind is what the reader hands back to the session.
type pop3ReqKind int

const (
	// pop3Login: the client sent a name and a password (USER/PASS or
	// AUTH PLAIN); the session answers.
	pop3Login pop3ReqKind = iota + 1
	// pop3STLS: "+OK" was sent; the session starts TLS and calls reset.
	pop3STLS
	// pop3Quit: the client said QUIT and has its reply.
	pop3Quit
)

// pop3Req is one request the reader cannot answer by itself.
type pop3Req struct {
	kind pop3ReqKind
	// user and pass are the credentials of a pop3Login. pass is secret.
	user, pass string
}

// pop3Reader speaks the AUTHORIZATION state of RFC 1939 section 4 with
// the extensions a password-only client needs: CAPA (RFC 2449), STLS
// (RFC 2595 section 4) and AUTH PLAIN (RFC 5034, RFC 4616). It answers
// what it can itself and returns logins, STLS and QUIT to its caller. It
// does no network I/O of its own beyond reading and writing the client, so
// it is tested and fuzzed over plain byte streams.
type pop3Reader struct {
	br *bufio.Reader
	bw *bufio.Writer

	// secure: the connection is TLS (implicit, or after STLS).
	secure bool
	// offerTLS: STLS is available (a local certificate is configured).
	offerTLS bool
	// requireTLS refuses credentials before TLS.
	requireTLS bool
	// maxFails is how many failed logins end the connection.
	maxFails int

	user     string // USER argument waiting for PASS (RFC 1939 section 7)
	commands int
	fails    int
}

func newPOP3Reader(rw io.ReadWriter, secure bool, o FrontOptions) *pop3Reader {
	return &pop3Reader{
		br:         bufio.NewReader(rw),
		bw:         bufio.NewWriter(rw),
		secure:     secure,
		offerTLS:   o.TLS != nil,
		requireTLS: o.RequireTLS,
		maxFails:   o.maxFailures(),
	}
}

// reset restarts the reader over rw after STLS. RFC 2595 section 4: the
// client discards what it learnt before; so does the server (the pending
// USER name), and nothing read in the clear survives.
func (r *pop3Reader) reset(rw io.ReadWriter) {
	r.br = bufio.NewReader(rw)
	r.bw = bufio.NewWriter(rw)
	r.secure = true
	r.user = ""
}

// reply writes one line and flushes it.
func (r *pop3Reader) reply(line string) error {
	r.bw.WriteString(line)
	r.bw.WriteString("\r\n")
	return r.bw.Flush()
}

// fail counts a failed login and reports whether the connection has had
// its allowance and must close.
func (r *pop3Reader) fail() bool {
	r.fails++
	return r.fails >= r.maxFails
}

// plainAllowed reports whether credentials may be sent now.
func (r *pop3Reader) plainAllowed() bool { return r.secure || !r.requireTLS }

// capa answers CAPA (RFC 2449 section 5). TOP and UIDL are Exchange's
// (the session is relayed to it after login); USER and SASL are left out
// while a login would be refused for want of TLS, as RFC 2595 section 4
// suggests for servers that refuse plaintext passwords.
func (r *pop3Reader) capa() error {
	lines := []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE"}
	if r.plainAllowed() {
		lines = append(lines, "USER", "SASL PLAIN")
	}
	if r.offerTLS && !r.secure {
		lines = append(lines, "STLS")
	}
	lines = append(lines, "IMPLEMENTATION bridge", ".")
	for _, l := range lines {
		r.bw.WriteString(l)
		r.bw.WriteString("\r\n")
	}
	return r.bw.Flush()
}

// readLine reads one line of at most max octets, CRLF included, with the
// bounded readLine, and returns it without its line end. A bare LF ends a
// line too, as many servers allow. A longer line gets a reply and
// errPOP3LineTooLong.
func (r *pop3Reader) readLine(max int) (string, error) {
	line, err := readLine(r.br, nil, max-2)
	if errors.Is(err, errLineTooLong) {
		r.reply(pop3LineTooLong)
		return "", errPOP3LineTooLong
	}
	if err != nil {
		return "", err
	}
	return string(line), nil
}

// next answers commands until one needs the caller. Errors other than the
// client's own read errors come after a reply that says why.
func (r *pop3Reader) next() (pop3Req, error) {
	for {
		if r.commands >= pop3MaxCommands {
			r.reply(pop3TooMany)
			return pop3Req{}, errPOP3TooMany
		}
		r.commands++
		line, err := r.readLine(pop3MaxAuthLine)
		if err != nil {
			return pop3Req{}, err
		}
		// RFC 1939 section 3: a keyword, case-insensitive, then arguments
		// separated by single spaces.
		kw, arg, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw != "AUTH" && len(line)+2 > pop3MaxCommand {
			if err := r.reply(pop3LineTooLong); err != nil {
				return pop3Req{}, err
			}
			continue
		}
		req, done, err := r.command(kw, arg)
		if err != nil || done {
			return req, err
		}
	}
}

// command runs one command; done reports a request for the caller.
func (r *pop3Reader) command(kw, arg string) (req pop3Req, done bool, err error) {
	switch kw {
	case "CAPA":
		return req, false, r.capa()
	case "NOOP":
		return req, false, r.reply(pop3NoopOK)
	case "QUIT":
		return pop3Req{kind: pop3Quit}, true, r.reply(pop3Bye)
	case "STLS":
		return r.stls()
	case "USER":
		if !r.plainAllowed() {
			return req, false, r.reply(pop3TLSRequired)
		}
		if arg == "" {
			return req, false, r.reply(pop3NeedArg)
		}
		r.user = arg
		return req, false, r.reply(pop3UserOK)
	case "PASS":
		if !r.plainAllowed() {
			return req, false, r.reply(pop3TLSRequired)
		}
		if r.user == "" {
			return req, false, r.reply(pop3NeedUser)
		}
		// RFC 1939 section 7: the password is the rest of the line, so
		// spaces in it survive.
		user := r.user
		r.user = ""
		return pop3Req{kind: pop3Login, user: user, pass: arg}, true, nil
	case "AUTH":
		return r.auth(arg)
	case "STAT", "LIST", "RETR", "DELE", "RSET", "TOP", "UIDL", "APOP":
		return req, false, r.reply(pop3NotLoggedIn)
	}
	return req, false, r.reply(pop3Unknown)
}

// stls answers STLS (RFC 2595 section 4). Bytes the client sent after it
// were written in the clear and must not be read as if they came over
// TLS, so they end the connection.
func (r *pop3Reader) stls() (pop3Req, bool, error) {
	if !r.offerTLS || r.secure {
		return pop3Req{}, false, r.reply(pop3NoSTLS)
	}
	if r.br.Buffered() > 0 {
		r.reply(pop3STLSPipeline)
		return pop3Req{}, true, errPOP3STLSPipeline
	}
	return pop3Req{kind: pop3STLS}, true, r.reply(pop3BeginTLS)
}

// auth answers AUTH (RFC 5034 section 4) for PLAIN, with the initial
// response on the command line or after a "+ " continuation. "*" cancels;
// "=" is an empty initial response.
func (r *pop3Reader) auth(arg string) (pop3Req, bool, error) {
	mech, ir, hasIR := strings.Cut(arg, " ")
	switch strings.ToUpper(mech) {
	case "":
		// RFC 1734 clients list mechanisms with a bare AUTH.
		r.bw.WriteString("+OK\r\nPLAIN\r\n.\r\n")
		return pop3Req{}, false, r.bw.Flush()
	case "PLAIN":
	default:
		return pop3Req{}, false, r.reply(pop3NoMech)
	}
	if !r.plainAllowed() {
		return pop3Req{}, false, r.reply(pop3TLSRequired)
	}
	if !hasIR {
		if err := r.reply(pop3Challenge); err != nil {
			return pop3Req{}, false, err
		}
		line, err := r.readLine(pop3MaxAuthLine)
		if err != nil {
			return pop3Req{}, false, err
		}
		if line == "*" {
			return pop3Req{}, false, r.reply(pop3AuthCanceled)
		}
		ir = line
	} else if ir == "=" {
		ir = ""
	}
	user, pass, ok := decodePlain(ir)
	if !ok {
		if err := r.reply(pop3BadPlain); err != nil {
			return pop3Req{}, false, err
		}
		if r.fail() {
			return pop3Req{}, false, errPOP3TooManyFails
		}
		return pop3Req{}, false, nil
	}
	return pop3Req{kind: pop3Login, user: user, pass: pass}, true, nil
}

// decodePlain decodes a SASL PLAIN message (RFC 4616 section 2):
// [authzid] NUL authcid NUL passwd. An authorization identity other than
// the login name is refused: the bridge logs in as no one else.
func decodePlain(s string) (user, pass string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", false
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", false
	}
	if len(parts[0]) > 0 && !strings.EqualFold(string(parts[0]), string(parts[1])) {
		return "", "", false
	}
	return string(parts[1]), string(parts[2]), true
}
