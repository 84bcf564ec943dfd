package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// deviceGrantType is the grant_type of RFC 8628 section 3.4.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceLogin signs in with the device authorization grant (RFC 8628): it
// prints an address and a code for the person to enter in any browser,
// then polls the token endpoint at the interval the provider asks for.
// It ends when the person signs in, declines, or the code expires (or
// after o.Timeout when set). Errors from the identity platform are, or
// wrap, *Error. SignedInAs tells who signed in.
func DeviceLogin(ctx context.Context, o LoginOptions) (*oauth2.Token, error) {
	o = o.withDefaults()
	if o.Provider.DeviceRefused != "" {
		return nil, fmt.Errorf("tokens: device sign-in for %s: %s", o.account(), o.Provider.DeviceRefused)
	}
	if o.Provider.DeviceURL == "" || o.Provider.TokenURL == "" {
		return nil, fmt.Errorf("tokens: provider %q has no device-code flow; use the browser sign-in", o.Provider.Name)
	}
	conf := o.Provider.signInConfig(o.ClientID, o.ClientSecret, "")
	da, err := conf.DeviceAuth(o.httpContext(ctx))
	if err != nil {
		return nil, FromOAuth(o.Email, "device code", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, fmt.Errorf("tokens: device code for %s: the provider's answer lacks the code or the address", o.account())
	}

	// The provider counts in seconds; pollUnit lets tests run faster.
	lifetime := 15 * time.Minute
	if !da.Expiry.IsZero() {
		lifetime = time.Until(da.Expiry).Round(time.Second)
	}
	fmt.Fprintf(o.Out, "To sign in, open this address in a browser on any device:\n\n    %s\n\nand enter the code:\n\n    %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(o.Out, "(or open %s, which fills the code in)\n\n", da.VerificationURIComplete)
	}
	// The platform says when the code expired (expired_token); the bridge's
	// own deadline is a fallback one poll interval later, so that the
	// platform's answer is the one the person reads.
	grace := time.Duration(max(da.Interval, 5))
	deadline := time.Now().Add(time.Duration(lifetime.Seconds())*o.pollUnit + grace*o.pollUnit)
	if o.Timeout > 0 && time.Now().Add(o.Timeout).Before(deadline) {
		deadline = time.Now().Add(o.Timeout)
	}
	stop := o.waiting(fmt.Sprintf("Waiting for the sign-in (the code is good for %s)", inWords(lifetime)))
	tok, err := o.pollDevice(ctx, conf, da, deadline)
	stop()
	if err == nil {
		err = o.Provider.checkGranted(o.account(), tok)
	}
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// maxPolls bounds the loop even if the clock misbehaves; at one poll per
// second it exceeds Microsoft's 15-minute codes several times over.
const maxPolls = 5000

// pollDevice polls until tokens arrive or the flow ends (RFC 8628 section
// 3.5): authorization_pending waits another interval, slow_down adds five
// seconds to it for good, and a passing network or 5xx failure is retried
// a few times before it ends the flow.
func (o LoginOptions) pollDevice(ctx context.Context, conf *oauth2.Config, da *oauth2.DeviceAuthResponse, deadline time.Time) (*oauth2.Token, error) {
	interval := time.Duration(da.Interval)
	if interval <= 0 {
		interval = 5
	}
	transient := 0
	for range maxPolls {
		t := time.NewTimer(interval * o.pollUnit)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("tokens: device sign-in for %s: %w", o.account(), ctx.Err())
		case <-t.C:
		}
		tok, err := o.pollOnce(ctx, conf, da.DeviceCode)
		if err == nil {
			return tok, nil
		}
		e := FromOAuth(o.Email, "device code", err)
		switch e.Code {
		case "authorization_pending":
			transient = 0
		case "slow_down":
			interval += 5
		case "expired_token", "code_expired":
			return nil, fmt.Errorf("%w; the code expired before anyone signed in with it: run the sign-in again", e)
		case "authorization_declined", "access_denied":
			return nil, fmt.Errorf("%w; the sign-in was declined in the browser: run the sign-in again to retry", e)
		default:
			if !e.Temporary() || transient >= 3 || ctx.Err() != nil {
				return nil, e
			}
			transient++
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("tokens: device sign-in for %s: nobody signed in with the code in time; run the sign-in again: %w",
				o.account(), context.DeadlineExceeded)
		}
	}
	return nil, fmt.Errorf("tokens: device sign-in for %s: gave up after %d polls", o.account(), maxPolls)
}

// pollOnce makes one device access token request (RFC 8628 section 3.4).
// x/oauth2's own poller counts in whole seconds and hides slow_down
// handling, so the request is made here; failures come back as
// *oauth2.RetrieveError like x/oauth2's, for FromOAuth.
func (o LoginOptions) pollOnce(ctx context.Context, conf *oauth2.Config, deviceCode string) (*oauth2.Token, error) {
	v := url.Values{"client_id": {conf.ClientID}, "grant_type": {deviceGrantType}, "device_code": {deviceCode}}
	if conf.ClientSecret != "" {
		v.Set("client_secret", conf.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the token answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, retrieveError(resp, body)
	}
	return parseToken(body)
}

// retrieveError reads an RFC 6749 section 5.2 error body.
func retrieveError(resp *http.Response, body []byte) error {
	re := &oauth2.RetrieveError{Response: resp, Body: body}
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
		URI         string `json:"error_uri"`
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" || ct == "text/plain" {
		if vals, err := url.ParseQuery(string(body)); err == nil {
			e.Code, e.Description, e.URI = vals.Get("error"), vals.Get("error_description"), vals.Get("error_uri")
		}
	} else {
		_ = json.Unmarshal(body, &e)
	}
	re.ErrorCode, re.ErrorDescription, re.ErrorURI = e.Code, e.Description, e.URI
	return re
}

// parseToken reads an RFC 6749 section 5.1 answer. expires_in may be a
// number or a string (older Microsoft endpoints send strings).
func parseToken(body []byte) (*oauth2.Token, error) {
	var tj struct {
		AccessToken  string      `json:"access_token"`
		TokenType    string      `json:"token_type"`
		RefreshToken string      `json:"refresh_token"`
		ExpiresIn    json.Number `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tj); err != nil {
		return nil, fmt.Errorf("tokens: device code: the token answer is not JSON: %w", err)
	}
	if tj.AccessToken == "" {
		return nil, errors.New("tokens: device code: the token answer has no access_token")
	}
	var extra map[string]any
	_ = json.Unmarshal(body, &extra)
	tok := &oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType, RefreshToken: tj.RefreshToken}
	if secs, err := tj.ExpiresIn.Int64(); err == nil && secs > 0 {
		tok.ExpiresIn = secs
		tok.Expiry = time.Now().Add(time.Duration(secs) * time.Second)
	}
	return tok.WithExtra(extra), nil
}
