package tokenstest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// unit shrinks the platform's seconds. It is large enough that two polls made
// "at once" stay within one interval on a busy machine under the race
// detector.
const unit = 100 * time.Millisecond

func deviceStart(t *testing.T, s *tokenstest.Server) (deviceCode, userCode string) {
	t.Helper()
	st, m := post(t, s.DeviceURL("organizations"), url.Values{"client_id": {clientID}, "scope": {mailScope}})
	dc, _ := m["device_code"].(string)
	uc, _ := m["user_code"].(string)
	msg, _ := m["message"].(string)
	if st != 200 || dc == "" || len(uc) != 9 || m["verification_uri"] == "" || !strings.Contains(msg, uc) {
		t.Fatalf("devicecode answer: %d %v", st, m)
	}
	return dc, uc
}

func poll(t *testing.T, s *tokenstest.Server, dc string) (int, map[string]any) {
	t.Helper()
	return post(t, s.TokenURL("organizations"), url.Values{
		"client_id": {clientID}, "device_code": {dc},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
	})
}

func TestDeviceApprove(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, DeviceInterval: 2, TimeUnit: unit})
	defer s.Close()
	dc, uc := deviceStart(t, s)

	st, m := poll(t, s, dc)
	wantError(t, st, m, 400, "authorization_pending", 70016)
	st, m = poll(t, s, dc) // at once: too fast
	wantError(t, st, m, 400, "slow_down", 0)
	time.Sleep(3 * unit) // the interval is now 2+5 units
	st, m = poll(t, s, dc)
	wantError(t, st, m, 400, "slow_down", 0)
	time.Sleep(13 * unit)
	st, m = poll(t, s, dc)
	wantError(t, st, m, 400, "authorization_pending", 70016)

	if got := s.PendingUserCodes(); len(got) != 1 || got[0] != uc {
		t.Errorf("PendingUserCodes = %v, want [%s]", got, uc)
	}
	if err := s.ApproveDevice(strings.ToLower(uc[:4]+"-"+uc[4:]), "dev@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeclineDevice(uc); err == nil {
		t.Error("a settled code was declined again")
	}
	time.Sleep(13 * unit)
	st, m = poll(t, s, dc)
	if st != 200 {
		t.Fatalf("after approval: %d %v", st, m["error"])
	}
	if err := s.Validate("dev@example.com", m["access_token"].(string)); err != nil {
		t.Error(err)
	}
	time.Sleep(13 * unit)
	st, m = poll(t, s, dc)
	wantError(t, st, m, 400, "invalid_grant", 54005)
	if s.DeviceRequests() != 1 || s.DevicePolls() != 6 {
		t.Errorf("DeviceRequests=%d DevicePolls=%d, want 1 and 6", s.DeviceRequests(), s.DevicePolls())
	}
}

func TestDeviceDeclineAndExpiry(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, DeviceInterval: 1, DeviceExpiresIn: 5, TimeUnit: unit})
	defer s.Close()
	dc, uc := deviceStart(t, s)
	if err := s.DeclineDevice(uc); err != nil {
		t.Fatal(err)
	}
	st, m := poll(t, s, dc)
	wantError(t, st, m, 400, "authorization_declined", 65004)

	dc, _ = deviceStart(t, s)
	time.Sleep(6 * unit)
	st, m = poll(t, s, dc)
	wantError(t, st, m, 400, "expired_token", 70019)

	st, m = poll(t, s, "nonsense")
	wantError(t, st, m, 400, "bad_verification_code", 0)
}

func TestDeviceAutoSettle(t *testing.T) {
	for _, decline := range []bool{false, true} {
		s := tokenstest.New(tokenstest.Options{DeviceInterval: 1, TimeUnit: unit, DevicePolls: 2, DeviceDecline: decline, User: "auto@example.com"})
		dc, _ := deviceStart(t, s)
		st, m := poll(t, s, dc)
		wantError(t, st, m, 400, "authorization_pending", 70016)
		time.Sleep(2 * unit)
		st, m = poll(t, s, dc)
		switch {
		case decline:
			wantError(t, st, m, 400, "authorization_declined", 65004)
		case st != 200:
			t.Errorf("auto-approve: %d %v", st, m["error"])
		default:
			if err := s.Validate("auto@example.com", m["access_token"].(string)); err != nil {
				t.Error(err)
			}
		}
		s.Close()
	}
}

func TestDevicePage(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: clientID, TimeUnit: unit})
	defer s.Close()
	_, uc := deviceStart(t, s)
	resp, err := http.PostForm(s.URL()+"/devicelogin", url.Values{"code": {uc}, "user": {"page@example.com"}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(s.PendingUserCodes()) != 0 {
		t.Errorf("device page approval: status %d, pending %v", resp.StatusCode, s.PendingUserCodes())
	}
}
