package tokenstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Failure describes how a token-endpoint request fails. A Failure with
// Status 0 does not fail: it only delays the normal answer by Delay.
type Failure struct {
	// Status is the HTTP status, e.g. 400 or 500.
	Status int
	// Error is the OAuth error field, e.g. "invalid_grant".
	Error string
	// AADSTS is the Microsoft error number; 0 leaves error_codes out.
	AADSTS int
	// Description follows "AADSTSnnnnn: " in error_description.
	Description string
	// Delay is how long the server waits before answering.
	Delay time.Duration
}

// InvalidGrant is the answer Microsoft gives when a grant (refresh token,
// code) is no longer good, e.g. InvalidGrant(700082, "The refresh token has
// expired due to inactivity.").
func InvalidGrant(aadsts int, desc string) Failure {
	return Failure{Status: http.StatusBadRequest, Error: "invalid_grant", AADSTS: aadsts, Description: desc}
}

// ExpiredOrRevoked is Google's answer to a refresh token that expired (7
// days after consent for an app in "Testing") or was revoked (by the user,
// or by a password change): the two causes share one text.
func ExpiredOrRevoked() Failure {
	return Failure{Status: http.StatusBadRequest, Error: "invalid_grant", Description: googleRevokedText}
}

// ServerError is an HTTP 500 from the token endpoint.
func ServerError() Failure {
	return Failure{Status: http.StatusInternalServerError, Error: "server_error",
		Description: "The service is temporarily unavailable. Please try again."}
}

// Slow delays the normal answer by d.
func Slow(d time.Duration) Failure { return Failure{Delay: d} }

// FailNext makes the next n token-endpoint requests fail like f.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// FailNextAuthorize makes the next authorize request redirect back with
// error=code and error_description "AADSTSnnnnn: desc" instead of a code,
// the way the platform reports a refused consent or a blocked sign-in.
func (s *Server) FailNextAuthorize(code string, aadsts int, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authFail = &Failure{Error: code, AADSTS: aadsts, Description: desc}
}

func (s *Server) nextFailure() (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return Failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// describe formats error_description the way Microsoft does: the AADSTS
// number first, then trace, correlation and timestamp lines.
func describe(aadsts int, desc, trace, corr string, now time.Time) string {
	head := desc
	if aadsts != 0 {
		head = fmt.Sprintf("AADSTS%d: %s", aadsts, desc)
	}
	return fmt.Sprintf("%s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		head, trace, corr, now.UTC().Format("2006-01-02 15:04:05Z"))
}

// writeError sends a Microsoft-shaped OAuth error body (RFC 6749 section
// 5.2 plus error_codes, timestamp, trace_id and correlation_id).
func writeError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	now := time.Now()
	trace, corr := newUUID(), newUUID()
	body := map[string]any{
		"error":             code,
		"error_description": describe(aadsts, desc, trace, corr, now),
		"timestamp":         now.UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    corr,
	}
	if aadsts != 0 {
		body["error_codes"] = []int{aadsts}
		body["error_uri"] = fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts)
	}
	writeJSON(w, status, body)
}

// writeErr sends an OAuth error body in the shape of the platform
// imitated: Microsoft's (writeError), or Google's bare error and
// error_description, where aadsts has no place.
func (s *Server) writeErr(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	if s.opts.Google {
		writeGoogleError(w, status, code, desc)
		return
	}
	writeError(w, status, code, aadsts, desc)
}

func (s *Server) writeFailure(w http.ResponseWriter, f Failure) {
	code := f.Error
	if code == "" {
		code = "server_error"
	}
	s.writeErr(w, f.Status, code, f.AADSTS, f.Description)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
