// Package graphtest imitates the part of Microsoft Graph the bridge sends
// mail through, in process on 127.0.0.1: POST /me/sendMail and
// /users/{id}/sendMail with a base64 MIME body (Content-Type text/plain),
// and GET /me. It checks the bearer token against a tokenstest platform
// (audience Graph, the Mail.Send scopes), caps a request at Graph's 4 MB,
// refuses From addresses the token's user may not send as
// (ErrorSendAsDenied), answers with Graph's JSON error bodies, fails on
// demand (throttling with Retry-After, a mailbox without the REST API)
// and records every accepted message. It follows Microsoft's documented
// behaviour (docs/microsoft-facts.md, "Microsoft Graph sendMail").
package graphtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// MaxRequest is Graph's limit on a request body: 4 MB, the base64 of the
// MIME message included.
const MaxRequest = 4 << 20

// Options configure a Server.
type Options struct {
	// Tokens is the identity platform whose tokens the server accepts.
	// Required.
	Tokens *tokenstest.Server
	// MaxRequest is the largest request body accepted; zero means
	// MaxRequest.
	MaxRequest int64
}

// Message is one message Graph accepted (202).
type Message struct {
	// Path is the request path: "/v1.0/me/sendMail" or
	// "/v1.0/users/{id}/sendMail".
	Path string
	// User is the token's user; Mailbox the mailbox that sent (User for
	// /me, {id} otherwise).
	User, Mailbox string
	// MIME is the message as it arrived, decoded from base64.
	MIME []byte
	// Recipients are the addresses of the To, Cc and Bcc headers, in
	// that order, lower-cased: whom Graph delivers to.
	Recipients []string
	// Delivered is the message as its recipients see it: the Bcc header
	// is not part of it.
	Delivered []byte
}

// Failure is one answer given instead of the normal one.
type Failure struct {
	// Status is the HTTP status.
	Status int
	// Code and Message fill Graph's error body.
	Code, Message string
	// RetryAfter, when positive, is sent as Retry-After in seconds.
	RetryAfter int
}

// Throttled is Graph's 429 for a mailbox sending too fast, asking to wait
// seconds.
func Throttled(seconds int) Failure {
	return Failure{Status: http.StatusTooManyRequests, Code: "ApplicationThrottled",
		Message: "Application is over its MailboxConcurrency limit.", RetryAfter: seconds}
}

// Server is a running imitation of Graph. It is safe for concurrent use.
type Server struct {
	o   Options
	srv *httptest.Server

	mu       sync.Mutex
	sent     []Message
	failures []Failure
	sendAs   map[string]bool // delegate \x00 mailbox, lower case
	noREST   map[string]bool // mailboxes answered with MailboxNotEnabledForRESTAPI
	requests int
}

// New starts a Server; Close it when done.
func New(o Options) *Server {
	if o.MaxRequest <= 0 {
		o.MaxRequest = MaxRequest
	}
	s := &Server{o: o, sendAs: map[string]bool{}, noREST: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.0/me/sendMail", s.handleSend)
	mux.HandleFunc("POST /v1.0/users/{id}/sendMail", s.handleSend)
	mux.HandleFunc("GET /v1.0/me", s.handleMe)
	s.srv = httptest.NewServer(mux)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the graph_url to configure: http://127.0.0.1:PORT/v1.0.
func (s *Server) URL() string { return s.srv.URL + "/v1.0" }

// Sent returns the accepted messages, oldest first.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Requests counts the requests that reached the server.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next n sendMail requests fail with f, after the
// token was checked.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// AllowSendAs gives delegate the Send As right on mailbox.
func (s *Server) AllowSendAs(delegate, mailbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendAs[strings.ToLower(delegate)+"\x00"+strings.ToLower(mailbox)] = true
}

// DisableREST makes mailbox answer MailboxNotEnabledForRESTAPI, as a
// mailbox without an Exchange Online licence (or on premises) does.
func (s *Server) DisableREST(mailbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noREST[strings.ToLower(mailbox)] = true
}

// handleMe answers GET /me with the token's user; it needs User.Read.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	info, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if !slices.Contains(info.Scopes, "User.Read") {
		writeError(w, Failure{Status: http.StatusForbidden, Code: "Authorization_RequestDenied",
			Message: "Insufficient privileges to complete the operation."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"id": "00000000-0000-0000-0000-000000000001", "userPrincipalName": info.User, "mail": info.User,
		"displayName": strings.SplitN(info.User, "@", 2)[0],
	})
}

// handleSend is sendMail with a MIME body (the JSON form is not imitated).
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	info, ok := s.authorize(w, r)
	if !ok {
		return
	}
	mailbox, shared := strings.ToLower(info.User), false
	if id := r.PathValue("id"); id != "" && !strings.EqualFold(id, info.User) {
		mailbox, shared = strings.ToLower(id), true
	}
	switch {
	case !slices.Contains(info.Scopes, "Mail.Send"):
		writeError(w, Failure{Status: http.StatusForbidden, Code: "ErrorAccessDenied", Message: "Access is denied. Check credentials and try again."})
		return
	case shared && !slices.Contains(info.Scopes, "Mail.Send.Shared"):
		writeError(w, Failure{Status: http.StatusForbidden, Code: "ErrorAccessDenied", Message: "Access is denied. Check credentials and try again."})
		return
	}
	s.mu.Lock()
	var fail *Failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	noREST := s.noREST[mailbox]
	s.mu.Unlock()
	if fail != nil {
		writeError(w, *fail)
		return
	}
	if noREST {
		writeError(w, Failure{Status: http.StatusNotFound, Code: "MailboxNotEnabledForRESTAPI",
			Message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise."})
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "text/plain" {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: "ErrorInvalidRequest",
			Message: "This imitation takes MIME content only (Content-Type: text/plain)."})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxRequest))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, Failure{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge",
			Message: fmt.Sprintf("The request is larger than the maximum of %d bytes.", s.o.MaxRequest)})
		return
	}
	if err != nil {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
	if err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: "ErrorMimeContentInvalidBase64String", Message: "Invalid base64 string for MIME content."})
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: "ErrorMimeContentInvalid", Message: "The MIME content is not valid."})
		return
	}
	rcpts := recipients(msg.Header)
	if len(rcpts) == 0 {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: "ErrorInvalidRecipients",
			Message: "At least one recipient isn't valid., A message can't be sent because it contains no recipients."})
		return
	}
	if from, err := mail.ParseAddress(msg.Header.Get("From")); err == nil && !strings.EqualFold(from.Address, mailbox) {
		s.mu.Lock()
		allowed := s.sendAs[strings.ToLower(info.User)+"\x00"+strings.ToLower(from.Address)]
		s.mu.Unlock()
		if !allowed {
			writeError(w, Failure{Status: http.StatusForbidden, Code: "ErrorSendAsDenied",
				Message: "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."})
			return
		}
	}
	if shared {
		s.mu.Lock()
		allowed := s.sendAs[strings.ToLower(info.User)+"\x00"+mailbox]
		s.mu.Unlock()
		if !allowed {
			writeError(w, Failure{Status: http.StatusForbidden, Code: "ErrorSendAsDenied",
				Message: "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."})
			return
		}
	}
	s.mu.Lock()
	s.sent = append(s.sent, Message{Path: r.URL.Path, User: info.User, Mailbox: mailbox, MIME: raw,
		Recipients: rcpts, Delivered: withoutBcc(raw)})
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// authorize checks the bearer token: unknown, expired or for another
// audience is Graph's 401 InvalidAuthenticationToken.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (tokenstest.TokenInfo, bool) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Access token is empty."})
		return tokenstest.TokenInfo{}, false
	}
	info, err := s.o.Tokens.Check(tok)
	switch {
	case errors.Is(err, tokenstest.ErrExpired):
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Lifetime validation failed, the token is expired."})
	case err != nil:
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Access token validation failure."})
	case info.Audience != tokenstest.GraphResource:
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Access token validation failure. Invalid audience."})
	default:
		return info, true
	}
	return tokenstest.TokenInfo{}, false
}

// recipients lists the To, Cc and Bcc addresses, lower-cased.
func recipients(h mail.Header) []string {
	var out []string
	for _, k := range []string{"To", "Cc", "Bcc"} {
		list, err := h.AddressList(k)
		if err != nil {
			continue
		}
		for _, a := range list {
			out = append(out, strings.ToLower(a.Address))
		}
	}
	return out
}

// withoutBcc removes the Bcc header field (and its folded lines) from the
// message's header section.
func withoutBcc(raw []byte) []byte {
	var out bytes.Buffer
	inHeader, skipping := true, false
	for line := range bytes.Lines(raw) {
		if inHeader {
			trimmed := bytes.TrimRight(line, "\r\n")
			switch {
			case len(trimmed) == 0:
				inHeader = false
			case skipping && (line[0] == ' ' || line[0] == '\t'):
				continue
			default:
				name, _, _ := bytes.Cut(trimmed, []byte(":"))
				skipping = strings.EqualFold(strings.TrimSpace(string(name)), "Bcc")
				if skipping {
					continue
				}
			}
		}
		out.Write(line)
	}
	return out.Bytes()
}

// writeError sends Graph's error body (code, message, innerError).
func writeError(w http.ResponseWriter, f Failure) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	writeJSON(w, f.Status, map[string]any{"error": map[string]any{
		"code": f.Code, "message": f.Message,
		"innerError": map[string]string{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": "0c5f2b4e-0000-4000-8000-000000000000"},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
