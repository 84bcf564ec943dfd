package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/mailbridge/bridge/bridge"
)

// Client talks to the server of one endpoint. Each call dials afresh, so a
// Client outlives server restarts.
type Client struct{ ep Endpoint }

// NewClient returns a client for ep. It does no I/O.
func NewClient(ep Endpoint) *Client { return &Client{ep: ep} }

// do sends one request; the error wraps ErrNotRunning when no server
// answers.
func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.doBody(ctx, method, path, nil)
}

// doBody is do with a JSON request body (nil for none).
func (c *Client) doBody(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	token, err := endpointToken(c.ep)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialEndpoint(ctx, c.ep)
		},
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://bridge"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		if errors.Is(err, ErrNotRunning) {
			return nil, err
		}
		return nil, fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// replyError turns a non-2xx reply into an error with the server's words.
func replyError(resp *http.Response) error {
	var eb errorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return fmt.Errorf("control: %s", eb.Error)
	}
	return fmt.Errorf("control: server answered %s", resp.Status)
}

// Status asks the server for its state.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.do(ctx, http.MethodGet, "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, replyError(resp)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("control: reading the status: %w", err)
	}
	return &st, nil
}

// Reload makes the server re-read its config. An invalid config comes back
// as an error and the server keeps the old one.
func (c *Client) Reload(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/reload")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	return nil
}

// Events calls fn for each event the server announces, until ctx is done
// (nil error) or the stream ends (io.EOF when the server closed it).
func (c *Client) Events(ctx context.Context, fn func(bridge.Event)) error {
	resp, err := c.do(ctx, http.MethodGet, "/events")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var ev bridge.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("control: event stream: %w", err)
		}
		fn(ev)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control: event stream: %w", err)
	}
	return io.EOF
}
