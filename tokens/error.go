package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// Error is a failure answered by the identity platform's token endpoint (or
// the network path to it). It never holds a token.
type Error struct {
	// Account is the address the request was for.
	Account string
	// Op is what was attempted: "refresh", "code exchange", "device code".
	Op string
	// Status is the HTTP status; 0 when no answer arrived.
	Status int
	// Code is the OAuth error field, e.g. "invalid_grant".
	Code string
	// AADSTS is the first number of error_codes (or of the description), 0
	// when absent.
	AADSTS int
	// Description is the error_description as sent.
	Description string
	// Err is the transport error when no answer arrived.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tokens: %s for %s", e.Op, e.Account)
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	case e.Description != "":
		fmt.Fprintf(&b, ": %s", firstLine(e.Description))
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", e.Code)
	default:
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if m := Meaning(e.AADSTS); m != "" {
		fmt.Fprintf(&b, " (%s)", m)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure may pass by itself: a network error,
// a 5xx or a throttling answer. A temporary failure never discards a token.
func (e *Error) Temporary() bool {
	return e.Err != nil || e.Status >= 500 || e.Status == 429 || e.Code == "temporarily_unavailable"
}

// NeedsLogin reports whether only an interactive sign-in can fix it.
func (e *Error) NeedsLogin() bool {
	return !e.Temporary() && (e.Code == "invalid_grant" || e.Code == "interaction_required")
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// FromOAuth turns an error from x/oauth2 into an *Error for account and op.
// A *oauth2.RetrieveError keeps its status, code and AADSTS number; anything
// else is a transport failure. The result never contains a token.
func FromOAuth(account, op string, err error) *Error {
	e := &Error{Account: account, Op: op}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		e.Err = err
		return e
	}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
	}
	e.Code, e.Description = re.ErrorCode, re.ErrorDescription
	var body struct {
		Codes []int `json:"error_codes"`
	}
	if json.Unmarshal(re.Body, &body) == nil && len(body.Codes) > 0 {
		e.AADSTS = body.Codes[0]
	} else if m := aadstsRE.FindStringSubmatch(e.Description); m != nil {
		e.AADSTS, _ = strconv.Atoi(m[1])
	}
	return e
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)
