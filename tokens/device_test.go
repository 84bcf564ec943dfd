package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// unit shrinks the device flow's seconds so the tests run in milliseconds.
const unit = 10 * time.Millisecond

func deviceServer(o tokenstest.Options) *tokenstest.Server {
	o.ClientID, o.TimeUnit = testClient, unit
	if o.DeviceInterval == 0 {
		o.DeviceInterval = 1
	}
	return tokenstest.New(o)
}

func deviceOptions(s *tokenstest.Server, out *lockedBuffer) LoginOptions {
	return LoginOptions{Provider: testProvider(s), ClientID: testClient, Email: "dev@contoso.example", Out: out, pollUnit: unit}
}

func TestDeviceLogin(t *testing.T) {
	s := deviceServer(tokenstest.Options{DeviceInterval: 2})
	defer s.Close()
	out := &lockedBuffer{}
	type result struct {
		access, refresh string
		err             error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := DeviceLogin(context.Background(), deviceOptions(s, out))
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{tok.AccessToken, tok.RefreshToken, nil}
	}()

	// Play the person: read the code off Out, wait a few polls, approve.
	var code string
	for i := 0; i < 300 && (code == "" || s.DevicePolls() < 2); i++ {
		time.Sleep(5 * time.Millisecond)
		if codes := s.PendingUserCodes(); len(codes) == 1 && strings.Contains(out.String(), "\n    "+codes[0]+"\n") {
			code = codes[0]
		}
	}
	if code == "" {
		t.Fatalf("the code was not printed on its own line:\n%s", out.String())
	}
	if err := s.ApproveDevice(code, "dev@contoso.example"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := s.Validate("dev@contoso.example", r.access); err != nil {
		t.Error(err)
	}
	if r.refresh == "" {
		t.Error("no refresh token")
	}
	text := out.String()
	if !strings.Contains(text, "\n    "+s.URL()+"/devicelogin\n") {
		t.Errorf("verification address not printed on its own line:\n%s", text)
	}
	if strings.Contains(text, r.access[:32]) || strings.Contains(text, r.refresh[:32]) {
		t.Error("a token was written to Out")
	}
	// The lifetime in words; the caller says "Signed in as ...", once.
	if !strings.Contains(text, "(the code is good for 15 minutes)") || strings.Contains(text, "Signed in") {
		t.Errorf("Out:\n%s", text)
	}
	if n := s.DeviceRequests(); n != 1 {
		t.Errorf("DeviceRequests = %d", n)
	}
}

func TestDeviceLoginSlowDownAndHiccups(t *testing.T) {
	s := deviceServer(tokenstest.Options{DevicePolls: 2})
	defer s.Close()
	s.FailNext(1, tokenstest.Failure{Status: 400, Error: "slow_down", Description: "Polling too fast."})
	s.FailNext(2, tokenstest.ServerError())
	start := time.Now()
	tok, err := DeviceLogin(context.Background(), deviceOptions(s, &lockedBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate("user@example.com", tok.AccessToken); err != nil {
		t.Error(err)
	}
	// slow_down, two 500s, one pending, then tokens; after slow_down the
	// interval is 1+5 units, so four more polls take at least 24 units.
	if n := s.DevicePolls(); n != 5 {
		t.Errorf("DevicePolls = %d, want 5", n)
	}
	if d := time.Since(start); d < 25*unit {
		t.Errorf("slow_down was not honoured: done in %v", d)
	}
}

func TestDeviceLoginDeclined(t *testing.T) {
	s := deviceServer(tokenstest.Options{DevicePolls: 1, DeviceDecline: true})
	defer s.Close()
	_, err := DeviceLogin(context.Background(), deviceOptions(s, &lockedBuffer{}))
	var e *Error
	if !errors.As(err, &e) || e.Code != "authorization_declined" || e.AADSTS != 65004 || !strings.Contains(err.Error(), "declined") ||
		strings.Contains(err.Error(), "expired") || strings.Count(err.Error(), "tokens:") != 1 {
		t.Fatalf("err = %v, want a declined *Error that says so once", err)
	}
}

func TestDeviceLoginExpired(t *testing.T) {
	s := deviceServer(tokenstest.Options{DeviceExpiresIn: 4})
	defer s.Close()
	start := time.Now()
	_, err := DeviceLogin(context.Background(), deviceOptions(s, &lockedBuffer{}))
	var e *Error
	if !errors.As(err, &e) || e.Code != "expired_token" || e.AADSTS != 70019 || !strings.Contains(err.Error(), "expired") || strings.Count(err.Error(), "tokens:") != 1 {
		t.Fatalf("err = %v, want an expired *Error with one prefix", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestDeviceLoginRefusals(t *testing.T) {
	s := deviceServer(tokenstest.Options{})
	defer s.Close()
	o := deviceOptions(s, &lockedBuffer{})
	o.ClientID = "not-registered"
	_, err := DeviceLogin(context.Background(), o)
	var e *Error
	if !errors.As(err, &e) || e.AADSTS != 700016 || e.Op != "device code" {
		t.Errorf("unknown client: err = %v, want *Error with AADSTS700016", err)
	}

	o = deviceOptions(s, &lockedBuffer{})
	o.Provider.DeviceURL = ""
	if _, err := DeviceLogin(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no device-code flow") {
		t.Errorf("no device URL: err = %v", err)
	}

	o = deviceOptions(s, &lockedBuffer{})
	o.Timeout = 50 * time.Millisecond
	if _, err := DeviceLogin(context.Background(), o); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := DeviceLogin(ctx, deviceOptions(s, &lockedBuffer{})); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled context: err = %v", err)
	}
}

func TestInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute:                "15 minutes",
		14*time.Minute + 59*time.Second: "15 minutes",
		time.Minute:                     "1 minute",
		5 * time.Minute:                 "5 minutes",
		45 * time.Second:                "45 seconds",
		time.Second:                     "1 second",
		time.Hour:                       "1 hour",
		90 * time.Minute:                "1 hour 30 minutes",
		2*time.Hour + time.Minute:       "2 hours 1 minute",
	} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%v) = %q, want %q", d, got, want)
		}
	}
}
