package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bodyTransport answers every request with one status and body, without
// any network.
type bodyTransport struct {
	status int
	body   []byte
	header http.Header
}

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := b.header
	if h == nil {
		h = http.Header{"Content-Type": {"application/json"}}
	}
	return &http.Response{StatusCode: b.status, Header: h, Body: io.NopCloser(bytes.NewReader(b.body)), Request: r}, nil
}

// fuzzRefreshToken is the refresh token sent in every fuzzed request; no
// error may repeat it.
const fuzzRefreshToken = "0.AFuzzRefreshTokenThatMustNeverAppear"

// FuzzTokenResponse feeds arbitrary token-endpoint answers (status and
// body) to the refresh request and FromOAuth. Neither may panic; a success
// must carry a token with a future expiry; the classification must be
// consistent; and no error text may carry the refresh token sent or an
// access token from the body (outside the description, which is shown on
// purpose).
func FuzzTokenResponse(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"token_type":"Bearer","scope":"x","expires_in":3599,"access_token":"eyJ0eXAi.abc.def","refresh_token":"0.AR2"}`},
		{200, `{"access_token":"at","expires_in":"3600"}`},
		{200, `{"access_token":"at","expires_in":-5}`},
		{200, `{"access_token":"","expires_in":3600}`},
		{200, `not json`},
		{400, `{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired.\r\nTrace ID: x","error_codes":[70008]}`},
		{400, `{"error":"invalid_grant","error_codes":"nope"}`},
		{401, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`},
		{429, `{"error":"temporarily_unavailable"}`},
		{500, `<html>Service Unavailable</html>`},
		{503, ``},
		{200, `{"error":"interaction_required","access_token":"leaky-access-token"}`},
		{302, `{}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		s := NewSource(SourceOptions{
			Account:    "fuzz@example.com",
			Provider:   Provider{TokenURL: "http://127.0.0.1:1/token", Scopes: []string{"a", "b"}},
			ClientID:   "client",
			Store:      nil,
			HTTPClient: &http.Client{Transport: bodyTransport{status: status, body: body}},
			Now:        func() time.Time { return now },
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tok, err := s.exchange(ctx, fuzzRefreshToken)
		if err == nil {
			if tok.AccessToken == "" || !tok.Expiry.After(now) {
				t.Fatalf("success without a usable token: %+v", tok)
			}
			if status < 200 || status > 299 {
				t.Fatalf("HTTP %d taken as a success", status)
			}
			return
		}
		te := FromOAuth("fuzz@example.com", "refresh", err)
		msg := te.Error()
		if te.NeedsLogin() && te.Temporary() {
			t.Fatalf("both temporary and needs-login: %v", msg)
		}
		if (status >= 500 || status == 429) && !te.Temporary() {
			t.Fatalf("HTTP %d not temporary: %v", status, msg)
		}
		if strings.Contains(msg, fuzzRefreshToken) {
			t.Fatalf("error repeats the refresh token: %q", msg)
		}
		var r struct {
			AccessToken string `json:"access_token"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &r) == nil && len(r.AccessToken) >= 8 &&
			!strings.Contains(r.Description, r.AccessToken) && !strings.Contains(err.Error(), r.AccessToken) {
			if strings.Contains(msg, r.AccessToken) {
				t.Fatalf("error carries the access token from the body: %q", msg)
			}
		}
		if strings.Contains(err.Error(), fuzzRefreshToken) {
			t.Fatalf("exchange error repeats the refresh token")
		}
	})
}
