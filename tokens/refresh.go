package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// exchangeWithRetry gets a new access token with grant (a refresh token,
// or in app mode the stored credential), trying again after temporary
// failures. The result's error is an *Error.
func (s *Source) exchangeWithRetry(ctx context.Context, grant string) (*oauth2.Token, error) {
	return s.exchangeScopesWithRetry(ctx, grant, s.o.Provider.Scopes, s.op())
}

// exchangeScopesWithRetry is exchangeWithRetry for scopes (another
// resource's, with a refresh token), naming the attempt op in its *Error.
func (s *Source) exchangeScopesWithRetry(ctx context.Context, grant string, scopes []string, op string) (*oauth2.Token, error) {
	wait := retryWait
	for attempt := 1; ; attempt++ {
		tok, err := s.exchangeScopes(ctx, grant, scopes)
		if err == nil {
			return tok, nil
		}
		te := FromOAuth(s.o.Account, op, err)
		if !te.Temporary() || attempt >= maxAttempts || ctx.Err() != nil {
			return nil, te
		}
		d := wait
		if ra, ok := retryAfter(err); ok {
			if ra > maxRetryAfter {
				return nil, te // the platform asked for a longer pause than a login can wait
			}
			d = max(d, ra)
		}
		s.log.Warn("token request failed; retrying", "attempt", attempt, "wait", d, "err", te)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, te
		}
		wait *= 2
	}
}

// op names the source's token requests in errors.
func (s *Source) op() string {
	if s.o.App {
		return opAppToken
	}
	return "refresh"
}

// exchange makes one token request: a refresh (RFC 6749 section 6), or in
// app mode a client credentials request (section 4.4). It posts the form
// itself rather than through oauth2.TokenSource because Microsoft wants
// the scopes on every refresh and x/oauth2's refresher sends none.
// Errors are *oauth2.RetrieveError for answers and transport errors
// otherwise, as x/oauth2 returns them, so FromOAuth classifies both.
func (s *Source) exchange(ctx context.Context, grant string) (*oauth2.Token, error) {
	return s.exchangeScopes(ctx, grant, s.o.Provider.Scopes)
}

// exchangeScopes is exchange asking for scopes; an app-only source asks
// for its app scope whatever scopes says.
func (s *Source) exchangeScopes(ctx context.Context, grant string, scopes []string) (*oauth2.Token, error) {
	// The bound covers reading the answer too.
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	var form url.Values
	if s.o.App {
		cred, err := ParseAppCredential(grant)
		if err != nil {
			return nil, err
		}
		// The assertion's times are judged by the platform's clock, so
		// they come from the wall clock, not the source's.
		if form, err = appForm(s.o.Provider, s.o.ClientID, cred, time.Now()); err != nil {
			return nil, err
		}
	} else {
		form = url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {grant},
			"client_id":     {s.o.ClientID},
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		if s.o.ClientSecret != "" {
			form.Set("client_secret", s.o.ClientSecret)
		}
	}
	return postToken(ctx, s.o.HTTPClient, s.o.Provider.TokenURL, form, s.o.Now)
}

// postToken posts a token request and reads the answer (RFC 6749 sections
// 5.1 and 5.2). Errors are *oauth2.RetrieveError for answers and
// transport errors otherwise; none quotes the request or a token.
func postToken(ctx context.Context, client *http.Client, tokenURL string, form url.Values, now func() time.Time) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("bad token URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the token response: %w", err)
	}
	var r struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		Error        string          `json:"error"`
		Description  string          `json:"error_description"`
		URI          string          `json:"error_uri"`
	}
	jerr := json.Unmarshal(body, &r)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || r.Error != "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: r.Error, ErrorDescription: r.Description, ErrorURI: r.URI}
	}
	if jerr != nil || r.AccessToken == "" {
		// Not quoting the body: it may hold a token.
		return nil, fmt.Errorf("token endpoint answered HTTP %d without a usable token response", resp.StatusCode)
	}
	secs, _ := strconv.Atoi(strings.Trim(string(r.ExpiresIn), `"`))
	if secs <= 0 {
		secs = 3600 // no expires_in: assume the common hour rather than forever
	}
	return &oauth2.Token{
		AccessToken:  r.AccessToken,
		TokenType:    r.TokenType,
		RefreshToken: r.RefreshToken,
		Expiry:       now().Add(time.Duration(secs) * time.Second),
		ExpiresIn:    int64(secs),
	}, nil
}

// retryAfter reads a Retry-After in seconds from an error answer.
func retryAfter(err error) (time.Duration, bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return 0, false
	}
	n, perr := strconv.Atoi(strings.TrimSpace(re.Response.Header.Get("Retry-After")))
	if perr != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
