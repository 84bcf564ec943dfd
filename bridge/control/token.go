package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
)

// Token is what POST /token answers: a fresh access token of one account,
// from the running bridge's own token source, so that a process beside it
// never refreshes the same refresh token (bridge.Bridge.AccessToken). The
// socket's permissions keep it to the user who runs the bridge. Never log
// it.
type Token struct {
	// Account is the account asked for.
	Account string `json:"account"`
	// TokenAccount is whose sign-in the token is: Account itself, or the
	// delegate whose tokens a shared mailbox borrows.
	TokenAccount string `json:"token_account"`
	// AccessToken is the token.
	AccessToken string `json:"access_token"`
	// Expiry is when it expires.
	Expiry time.Time `json:"expiry"`
}

// tokenRequest is the body of POST /token.
type tokenRequest struct {
	Account string `json:"account"`
}

// tokenRefusal is the body of a failed POST /token: the error's text and
// what it was made of, so the client can classify it as the server would.
type tokenRefusal struct {
	Error      string `json:"error"`
	NoAccount  bool   `json:"no_account,omitempty"`
	NeedsLogin bool   `json:"needs_login,omitempty"`
	// Platform is the identity platform's answer (or the failure to get
	// one) behind the error; nil when there was none.
	Platform *platformError `json:"platform,omitempty"`
}

type platformError struct {
	Account     string `json:"account"`
	Op          string `json:"op"`
	Status      int    `json:"status,omitempty"`
	Code        string `json:"code,omitempty"`
	AADSTS      int    `json:"aadsts,omitempty"`
	Description string `json:"description,omitempty"`
	Transport   string `json:"transport,omitempty"`
}

// tokenWait bounds how long POST /token waits for a refresh.
const tokenWait = time.Minute

func (s *Server) accessToken(srv *bridge.Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var req tokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil || req.Account == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{`want {"account": "EMAIL"}`})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), tokenWait)
		defer cancel()
		a, tok, err := srv.Bridge().AccessToken(ctx, req.Account)
		if err != nil {
			code := http.StatusBadGateway
			body := tokenRefusal{Error: err.Error(), NeedsLogin: errors.Is(err, tokens.ErrNeedsLogin)}
			if errors.Is(err, bridge.ErrNoAccount) {
				code, body.NoAccount = http.StatusNotFound, true
			}
			var te *tokens.Error
			if errors.As(err, &te) {
				body.Platform = &platformError{Account: te.Account, Op: te.Op, Status: te.Status, Code: te.Code,
					AADSTS: te.AADSTS, Description: te.Description}
				if te.Err != nil {
					body.Platform.Transport = te.Err.Error()
				}
			}
			writeJSON(w, code, body)
			return
		}
		writeJSON(w, http.StatusOK, Token{Account: a.Email, TokenAccount: a.TokenAccount(), AccessToken: tok.AccessToken, Expiry: tok.Expiry})
	}
}

// TokenError is a failed POST /token. It wraps bridge.ErrNoAccount,
// tokens.ErrNeedsLogin and the platform's *tokens.Error as the server's
// error did, so diag.Classify reads it as it would the server's own.
type TokenError struct {
	// Msg is the server's error text.
	Msg string
	// NoAccount: the running bridge has no such account.
	NoAccount bool
	// NeedsLogin: only `bridge login` helps.
	NeedsLogin bool
	// Platform is the identity platform's answer; nil when none.
	Platform *tokens.Error
}

func (e *TokenError) Error() string {
	if strings.HasPrefix(e.Msg, "bridge: ") || strings.HasPrefix(e.Msg, "tokens: ") {
		return e.Msg
	}
	return "control: " + e.Msg
}

func (e *TokenError) Unwrap() []error {
	var errs []error
	if e.NoAccount {
		errs = append(errs, bridge.ErrNoAccount)
	}
	if e.NeedsLogin {
		errs = append(errs, tokens.ErrNeedsLogin)
	}
	if e.Platform != nil {
		errs = append(errs, e.Platform)
	}
	return errs
}

// Token asks the running server for a fresh access token of account. A
// refusal is a *TokenError; no server is ErrNotRunning.
func (c *Client) Token(ctx context.Context, account string) (*Token, error) {
	body, _ := json.Marshal(tokenRequest{Account: account})
	resp, err := c.doBody(ctx, http.MethodPost, "/token", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("control: reading the token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var tr tokenRefusal
		if json.Unmarshal(data, &tr) != nil || tr.Error == "" {
			return nil, fmt.Errorf("control: server answered %s", resp.Status)
		}
		te := &TokenError{Msg: tr.Error, NoAccount: tr.NoAccount, NeedsLogin: tr.NeedsLogin}
		if p := tr.Platform; p != nil {
			te.Platform = &tokens.Error{Account: p.Account, Op: p.Op, Status: p.Status, Code: p.Code, AADSTS: p.AADSTS, Description: p.Description}
			if p.Transport != "" {
				te.Platform.Err = errors.New(p.Transport)
			}
		}
		return nil, te
	}
	var t Token
	if err := json.Unmarshal(data, &t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("control: the server's token reply is not one")
	}
	return &t, nil
}
