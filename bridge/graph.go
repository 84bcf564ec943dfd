package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// DefaultGraphURL is Microsoft Graph's endpoint (config graph_url).
const DefaultGraphURL = "https://graph.microsoft.com/v1.0"

// The ways the SMTP front end submits an account's mail (config smtp_via).
const (
	viaSMTP  = "smtp"
	viaGraph = "graph"
	viaAuto  = "auto"
)

// graphResource is Microsoft Graph's resource, the prefix of its scopes.
// One token request cannot mix them with Outlook's (AADSTS70011), so the
// account's refresh token mints Graph tokens in requests of their own.
const graphResource = "https://graph.microsoft.com"

// Limits of a sendMail request. Graph takes at most 4 MB in one request
// and the message goes in it base64-encoded (4 bytes for every 3), so
// graphMaxMessage, the largest message the bridge submits, is three
// quarters of graphMaxRequest. 4,000,000 bytes stays inside either
// reading of "4 MB".
const (
	graphMaxRequest = 4_000_000
	graphMaxMessage = graphMaxRequest / 4 * 3
	// graphTimeout bounds one request to Graph, the upload included.
	graphTimeout = 2 * time.Minute
	// graphMaxRecipients is Exchange Online's default limit of
	// recipients per message, which applies to Graph's sendMail as well.
	graphMaxRecipients = 500
)

// GraphScopes are the scopes of the account's Microsoft Graph token:
// Mail.Send to send, User.Read for `bridge doctor`'s GET /me, and
// Mail.Send.Shared when a delegate's sign-in sends from a shared mailbox
// (token_from).
func (a *Account) GraphScopes() []string {
	s := []string{graphResource + "/Mail.Send", graphResource + "/User.Read"}
	if a.sharedSender() {
		s = append(s, graphResource+"/Mail.Send.Shared")
	}
	return append(s, "offline_access")
}

// sharedSender reports whether the account sends from a mailbox other
// than its sign-in's: a shared mailbox with a delegate's tokens.
func (a *Account) sharedSender() bool {
	return a.TokenFrom != "" && !strings.EqualFold(a.Mailbox, a.TokenFrom)
}

// UsesGraph reports whether the account may send through Microsoft Graph
// (smtp_via "graph" or "auto"), so its sign-in needs Graph's consent.
func (a *Account) UsesGraph() bool { return a.SMTPVia == viaGraph || a.SMTPVia == viaAuto }

// GraphSendURL is where the account's messages go: /me/sendMail, or
// /users/{mailbox}/sendMail when a delegate sends from a shared mailbox,
// which Graph saves in the shared mailbox's Sent Items.
func (a *Account) GraphSendURL() string {
	if a.sharedSender() {
		return a.GraphURL + "/users/" + url.PathEscape(a.Mailbox) + "/sendMail"
	}
	return a.GraphURL + "/me/sendMail"
}

// GraphToken returns the token source of account a's Microsoft Graph
// tokens, or nil when the account has no token source.
func (b *Bridge) GraphToken(a *Account) *tokens.Resource {
	src := b.Source(a)
	if src == nil {
		return nil
	}
	return src.Resource(string(diag.StageGraphToken), a.GraphScopes())
}

// graphClient is the bridge's HTTP client for a's Graph requests: the
// token endpoints' transport, through a's proxy when it has one, with
// graphTimeout for a whole request.
func (b *Bridge) graphClient(a *Account) *http.Client {
	c := *b.tokenClient(a)
	c.Timeout = graphTimeout
	return &c
}

// graphSend submits mime for account a with a Graph token: POST sendMail
// with the message base64-encoded as text/plain, which Graph answers 202
// once it took the message. A refusal is a *diag.Failure (ProtoGraph,
// the HTTP status as Code); with a 429 or 503 it also returns the wait
// Graph asked for (Retry-After). A transport failure is returned as it is.
func (b *Bridge) graphSend(ctx context.Context, a *Account, token string, mime []byte) (time.Duration, error) {
	body := make([]byte, base64.StdEncoding.EncodedLen(len(mime)))
	base64.StdEncoding.Encode(body, mime)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.GraphSendURL(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bridge: graph_url %q: %w", a.GraphURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := b.graphClient(a).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, nil
	}
	return retryAfter(resp.Header.Get("Retry-After"), time.Now()), graphFailure(diag.StageData, resp)
}

// GraphMe asks Microsoft Graph who token belongs to (GET /me, which needs
// User.Read) and returns the user principal name. `bridge doctor` checks
// the Graph path with it, sending nothing. A refusal is a *diag.Failure
// (ProtoGraph, StageAuth).
func GraphMe(ctx context.Context, c *http.Client, a *Account, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.GraphURL+"/me", nil)
	if err != nil {
		return "", fmt.Errorf("bridge: graph_url %q: %w", a.GraphURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", graphFailure(diag.StageAuth, resp)
	}
	var me struct {
		UPN  string `json:"userPrincipalName"`
		Mail string `json:"mail"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&me); err != nil {
		return "", fmt.Errorf("bridge: reading Graph's /me: %w", err)
	}
	return me.UPN, nil
}

// graphFailure reads Graph's error body ({"error":{"code","message"}})
// into a Failure whose Text is "Code: message".
func graphFailure(stage diag.Stage, resp *http.Response) *diag.Failure {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	text := resp.Status
	if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
		text = e.Error.Code + ": " + e.Error.Message
	}
	return &diag.Failure{Proto: diag.ProtoGraph, Stage: stage, Code: resp.StatusCode, Text: diag.ReplyText(text, 500)}
}

// retryAfter reads a Retry-After header (RFC 9110 section 10.2.3):
// seconds, or a date; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
