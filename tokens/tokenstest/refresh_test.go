package tokenstest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

func TestRefreshRotation(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	_, rt0, _ := s.Issue("a@example.com")

	st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt0))
	rt1, _ := m["refresh_token"].(string)
	if st != 200 || rt1 == "" || rt1 == rt0 {
		t.Fatalf("first refresh: status %d, rotated=%v", st, rt1 != "" && rt1 != rt0)
	}
	if s.LatestRefresh("A@example.com") != rt1 {
		t.Error("LatestRefresh is not the rotated token")
	}
	// Microsoft keeps the old refresh token valid.
	if st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt0)); st != 200 {
		t.Errorf("old refresh token refused: %v", m["error_description"])
	}
	if err := s.Validate("a@example.com", m["access_token"].(string)); err != nil {
		t.Errorf("refreshed access token: %v", err)
	}
	if n := s.RefreshRequests(); n != 2 {
		t.Errorf("RefreshRequests = %d, want 2", n)
	}

	// Asking for a scope never granted is refused.
	f := refreshForm(clientID, rt1)
	f.Set("scope", "https://outlook.office.com/EWS.AccessAsUser.All")
	st, m = post(t, s.TokenURL("common"), f)
	wantError(t, st, m, 400, "invalid_grant", 70000)

	s.RevokeRefresh(rt1)
	st, m = post(t, s.TokenURL("common"), refreshForm(clientID, rt1))
	wantError(t, st, m, 400, "invalid_grant", 50173)
	st, m = post(t, s.TokenURL("common"), refreshForm(clientID, "0.Agarbage"))
	wantError(t, st, m, 400, "invalid_grant", 9002313)
}

func TestRefreshStrictModes(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, RevokeOnRotate: true, RequireRefreshScope: true})
	defer s.Close()
	_, rt0, _ := s.Issue("a@example.com")
	f := refreshForm(clientID, rt0)
	f.Del("scope")
	st, m := post(t, s.TokenURL("common"), f)
	wantError(t, st, m, 400, "invalid_request", 900144)

	st, m = post(t, s.TokenURL("common"), refreshForm(clientID, rt0))
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, m["error_description"])
	}
	// With RevokeOnRotate the rotated-away token is dead; the new one lives.
	st, m = post(t, s.TokenURL("common"), refreshForm(clientID, rt0))
	wantError(t, st, m, 400, "invalid_grant", 70008)
	if st, m := post(t, s.TokenURL("common"), refreshForm(clientID, s.LatestRefresh("a@example.com"))); st != 200 {
		t.Errorf("newest refresh token refused: %v", m["error_description"])
	}
}

func TestFailNext(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	_, rt, _ := s.Issue("a@example.com")
	s.FailNext(2, tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity."))
	for range 2 {
		st, m := post(t, s.TokenURL("common"), refreshForm("c", rt))
		wantError(t, st, m, 400, "invalid_grant", 700082)
	}
	s.FailNext(1, tokenstest.ServerError())
	if st, _ := post(t, s.TokenURL("common"), refreshForm("c", rt)); st != 500 {
		t.Errorf("ServerError: status %d", st)
	}
	s.FailNext(1, tokenstest.Slow(150*time.Millisecond))
	start := time.Now()
	st, m := post(t, s.TokenURL("common"), refreshForm("c", rt))
	if d := time.Since(start); st != 200 || d < 150*time.Millisecond {
		t.Errorf("Slow: status %d (%v) after %v", st, m["error"], d)
	}
	if n := s.TokenRequests(); n != 4 {
		t.Errorf("TokenRequests = %d, want 4", n)
	}
}

func TestValidate(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	at, _, exp := s.Issue("Bob@Example.com")
	if time.Until(exp) < 59*time.Minute {
		t.Errorf("default lifetime gives expiry in %v", time.Until(exp))
	}
	if err := s.Validate("bob@example.COM", at); err != nil {
		t.Errorf("case-insensitive user: %v", err)
	}
	if err := s.Validate("eve@example.com", at); !errors.Is(err, tokenstest.ErrWrongUser) {
		t.Errorf("wrong user: %v", err)
	}
	if err := s.Validate("bob@example.com", at+"x"); !errors.Is(err, tokenstest.ErrUnknownToken) {
		t.Errorf("unknown token: %v", err)
	}
	s.Expire(at)
	err := s.Validate("bob@example.com", at)
	if !errors.Is(err, tokenstest.ErrExpired) {
		t.Errorf("expired token: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), at[:40]) {
		t.Error("error message contains the token")
	}
	s.SetLifetime(time.Minute)
	if _, _, exp := s.Issue("bob@example.com"); time.Until(exp) > time.Minute {
		t.Errorf("SetLifetime ignored: expiry in %v", time.Until(exp))
	}
}

func TestIntrospect(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	at, _, exp := s.Issue("c@example.com")

	st, m := post(t, s.IntrospectURL(), url.Values{"token": {at}})
	if st != 200 || m["active"] != true || m["username"] != "c@example.com" || m["exp"] != float64(exp.Unix()) {
		t.Errorf("POST introspection: %d %v", st, m)
	}
	if sc, _ := m["scope"].(string); !strings.Contains(sc, "IMAP.AccessAsUser.All") {
		t.Errorf("scope %q", sc)
	}
	req, _ := http.NewRequest("GET", s.IntrospectURL(), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Active bool }
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if !got.Active {
		t.Error("Bearer introspection: not active")
	}
	s.Expire(at)
	if _, m := post(t, s.IntrospectURL(), url.Values{"token": {at}}); m["active"] != false || len(m) != 1 {
		t.Errorf("expired token introspected as %v", m)
	}
}

// TestRefuseMail: the tokens of a refused user, old and new, introspect
// as inactive and fail Validate; the token endpoint still issues them and
// other users are not touched.
func TestRefuseMail(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	old, _, _ := s.Issue("e@example.com")
	other, _, _ := s.Issue("f@example.com")
	s.RefuseMail("E@example.com")
	fresh, _, _ := s.Issue("e@example.com")
	for _, at := range []string{old, fresh} {
		if _, m := post(t, s.IntrospectURL(), url.Values{"token": {at}}); m["active"] != false || len(m) != 1 {
			t.Errorf("refused user's token introspected as %v", m)
		}
		if err := s.Validate("e@example.com", at); !errors.Is(err, tokenstest.ErrRefused) {
			t.Errorf("Validate of a refused user's token: %v", err)
		}
	}
	if _, m := post(t, s.IntrospectURL(), url.Values{"token": {other}}); m["active"] != true {
		t.Errorf("another user's token introspected as %v", m)
	}
	if err := s.Validate("f@example.com", other); err != nil {
		t.Errorf("Validate of another user's token: %v", err)
	}
}

func TestTokenSizes(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID})
	defer s.Close()
	seen := map[string]bool{}
	for range 30 {
		at, rt, _ := s.Issue("size@example.com")
		if seen[at] || seen[rt] {
			t.Fatal("a token was issued twice")
		}
		seen[at], seen[rt] = true, true
		if len(at) < 1500 || len(at) > 2500 {
			t.Errorf("access token is %d bytes, want 1500-2500", len(at))
		}
		if len(rt) < 900 || len(rt) > 1200 || !strings.HasPrefix(rt, "0.A") {
			t.Errorf("refresh token is %d bytes with prefix %q", len(rt), rt[:3])
		}
		parts := strings.Split(at, ".")
		if len(parts) != 3 {
			t.Fatalf("access token has %d parts", len(parts))
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		if c["aud"] != "https://outlook.office.com" || c["upn"] != "size@example.com" || c["tid"] != s.TenantID() ||
			c["scp"] != "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send" || c["appid"] != clientID {
			t.Errorf("claims: aud=%v upn=%v scp=%v appid=%v", c["aud"], c["upn"], c["scp"], c["appid"])
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	_, rt, _ := s.Issue("d@example.com")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				at, _, _ := s.Issue("d@example.com")
				errs <- s.Validate("d@example.com", at)
				return
			}
			resp, err := http.PostForm(s.TokenURL("common"), refreshForm("c", rt))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := s.RefreshRequests(); n != 10 {
		t.Errorf("RefreshRequests = %d, want 10", n)
	}
}

// TestRefreshLifetime: a refresh token older than RefreshLifetime is
// refused as expired.
func TestRefreshLifetime(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, RefreshLifetime: time.Second})
	defer s.Close()
	_, rt, _ := s.Issue("adele@contoso.example")
	if st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt)); st != 200 {
		t.Fatalf("fresh refresh token refused: %v", m["error_description"])
	}
	time.Sleep(time.Second)
	st, m := post(t, s.TokenURL("common"), refreshForm(clientID, rt))
	wantError(t, st, m, 400, "invalid_grant", 700082)
}

// TestPersonalTokensOpaque: the consumers tenant hands out opaque access
// tokens, which still validate.
func TestPersonalTokensOpaque(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, Personal: true})
	defer s.Close()
	at, _, _ := s.Issue("bob@outlook.com")
	if !strings.HasPrefix(at, "EwB") || strings.Count(at, ".") == 2 {
		t.Errorf("access token %.10s... is not opaque", at)
	}
	if err := s.Validate("bob@outlook.com", at); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if s.TenantID() != "9188040d-6c67-4c5b-b112-36a304b66dad" {
		t.Errorf("tenant %s", s.TenantID())
	}
}
