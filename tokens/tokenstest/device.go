package tokenstest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// deviceRec is one device authorization (RFC 8628 section 3.2).
type deviceRec struct {
	userCode, scope, clientID string
	exp                       time.Time
	gap                       time.Duration // shortest allowed time between polls
	lastPoll                  time.Time
	polls                     int
	user                      string // who approved; "" while pending
	declined, redeemed        bool
}

// handleDeviceCode is the devicecode endpoint (RFC 8628 section 3.1).
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	s.deviceReqs.Add(1)
	_ = r.ParseForm()
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", 900561,
			fmt.Sprintf("The endpoint only accepts POST requests. Received a %s request.", r.Method))
		return
	}
	clientID, ok := s.checkClient(w, r, false)
	if !ok {
		return
	}
	scope := r.PostForm.Get("scope")
	if msg := checkScope(scope); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_scope", 70011, msg)
		return
	}
	s.newDevice(w, scope, clientID)
}

// newDevice records a device authorization and sends its answer (RFC 8628
// section 3.2); Google names the address verification_url.
func (s *Server) newDevice(w http.ResponseWriter, scope, clientID string) {
	o := s.opts
	dc := "DAQABIQEAAAB" + randB64(200)
	var uc string
	s.mu.Lock()
	for {
		uc = userCode()
		if _, dup := s.userCode[uc]; !dup {
			break
		}
	}
	s.devices[dc] = &deviceRec{
		userCode: uc, scope: scope, clientID: clientID,
		exp: time.Now().Add(time.Duration(o.DeviceExpiresIn) * o.TimeUnit),
		gap: time.Duration(o.DeviceInterval) * o.TimeUnit,
	}
	s.userCode[uc] = dc
	s.mu.Unlock()
	verify := s.srv.URL + "/devicelogin"
	answer := map[string]any{
		"user_code":   uc,
		"device_code": dc,
		"expires_in":  o.DeviceExpiresIn,
		"interval":    o.DeviceInterval,
	}
	if o.Google {
		answer["verification_url"] = verify
	} else {
		answer["verification_uri"] = verify
		answer["message"] = fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.",
			verify, uc)
	}
	writeJSON(w, http.StatusOK, answer)
}

// userCode makes a nine-character code like Microsoft's, from letters and
// digits that are hard to confuse.
func userCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 9)
	for i := range b {
		b[i] = alphabet[randInt(len(alphabet))]
	}
	return string(b)
}

// deviceGrant answers a poll (RFC 8628 section 3.4 and 3.5): pending,
// slow_down when polled faster than the interval, expired, declined, or
// the tokens once approved.
func (s *Server) deviceGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	now := time.Now()
	dc := r.PostForm.Get("device_code")
	s.mu.Lock()
	rec, ok := s.devices[dc]
	var status, aadsts int
	var code, desc, user, scope string
	switch {
	case !ok:
		status, code, aadsts, desc = 400, "bad_verification_code", 70000, "The provided value for the 'device_code' parameter is not valid."
	case rec.clientID != clientID:
		status, code, aadsts, desc = 400, "invalid_grant", 70000, "The device code was issued to a different client."
	case rec.redeemed:
		status, code, aadsts, desc = 400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."
	case !now.Before(rec.exp):
		status, code, aadsts, desc = 400, "expired_token", 70019, "Verification code expired."
	case !rec.lastPoll.IsZero() && now.Sub(rec.lastPoll) < rec.gap:
		// RFC 8628 section 3.5: the client must add 5 seconds from now on.
		rec.gap += 5 * s.opts.TimeUnit
		rec.lastPoll = now
		status, code, desc = 400, "slow_down", "The client is polling too quickly and should back off."
	default:
		rec.lastPoll = now
		rec.polls++
		if rec.user == "" && !rec.declined && s.opts.DevicePolls > 0 && rec.polls >= s.opts.DevicePolls {
			switch {
			case s.opts.DeviceDecline:
				rec.declined = true
			case s.signedIn != "":
				rec.user = s.signedIn
			default:
				rec.user = s.opts.User
			}
		}
		switch {
		case rec.declined:
			status, code, aadsts, desc = 400, "authorization_declined", 65004, "User declined to consent to access the app."
		case rec.user == "":
			status, code, aadsts, desc = 400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
		default:
			rec.redeemed = true
			user, scope = rec.user, rec.scope
		}
	}
	s.mu.Unlock()
	if status != 0 {
		s.writeErr(w, status, code, aadsts, desc)
		return
	}
	if s.opts.Google {
		s.writeGoogleTokens(w, s.issue(user, scope, clientID, true))
		return
	}
	writeTokens(w, s.issue(user, scope, clientID, hasOffline(scope)))
}

// settle approves (user != "") or declines a pending device code.
func (s *Server) settle(code, user string) error {
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.devices[s.userCode[code]]
	switch {
	case !ok:
		return errors.New("tokenstest: unknown user code (AADSTS70018)")
	case !time.Now().Before(rec.exp):
		return errors.New("tokenstest: the code has expired (AADSTS70019)")
	case rec.user != "" || rec.declined:
		return errors.New("tokenstest: the code was already approved or declined (AADSTS90120)")
	}
	if user == "" {
		rec.declined = true
	} else {
		rec.user = user
	}
	return nil
}

// ApproveDevice signs user in on the device code shown as userCode (case
// and dashes do not matter); the next poll gets tokens.
func (s *Server) ApproveDevice(userCode, user string) error {
	if user == "" {
		user = s.opts.User
	}
	return s.settle(userCode, user)
}

// DeclineDevice refuses the device code; the next poll gets
// authorization_declined.
func (s *Server) DeclineDevice(userCode string) error { return s.settle(userCode, "") }

// PendingUserCodes lists the user codes that are neither settled nor
// expired, so a test can play the person at the browser.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	now := time.Now()
	for uc, dc := range s.userCode {
		rec := s.devices[dc]
		if rec.user == "" && !rec.declined && now.Before(rec.exp) {
			out = append(out, uc)
		}
	}
	return out
}
