// Package tokenstest imitates the Microsoft identity platform in process:
// the v2.0 authorize, token and devicecode endpoints, Microsoft-shaped error
// bodies with AADSTS numbers, JWT-sized access tokens, rotating refresh
// tokens, app registrations for the client credentials grant (RegisterApp)
// and an RFC 7662 introspection endpoint. With Options.Google it imitates
// Google's identity platform instead (google.go). Tests of package tokens
// and `bridge demo` use it; it does not import package tokens.
package tokenstest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value gives Microsoft's defaults.
type Options struct {
	// Lifetime is the access-token lifetime; zero means one hour.
	Lifetime time.Duration
	// ClientID, when set, is the only application id the platform knows;
	// any other gets AADSTS700016. Empty accepts every client id.
	ClientID string
	// ClientSecret, when set, makes the client confidential: token requests
	// must carry it (AADSTS7000215 otherwise). Empty makes it a public
	// client, and a request that sends a secret gets AADSTS700025.
	ClientSecret string
	// User is who the auto-approving authorize endpoint signs in when the
	// request has no login_hint, and who approves device codes settled by
	// DevicePolls. Empty means "user@example.com".
	User string

	// RevokeOnRotate makes a refresh token stop working once it has been
	// exchanged for a newer one (AADSTS70008). Microsoft keeps old refresh
	// tokens valid; false imitates that.
	RevokeOnRotate bool
	// RequireRefreshScope refuses refresh requests without a scope parameter
	// with AADSTS900144. False accepts them and keeps the granted scope.
	RequireRefreshScope bool

	// DeviceInterval is the polling interval, in units of TimeUnit, that the
	// devicecode endpoint announces; zero means 5.
	DeviceInterval int
	// DeviceExpiresIn is the device code's lifetime in units of TimeUnit;
	// zero means 900 (15 minutes).
	DeviceExpiresIn int
	// TimeUnit is how long one "second" of DeviceInterval and
	// DeviceExpiresIn lasts; zero means time.Second. Tests shrink it so that
	// device-code polling runs in milliseconds.
	TimeUnit time.Duration
	// DevicePolls, when positive, settles each device code by itself: the
	// DevicePolls-th poll finds it approved for User, or for whoever
	// SignInAs names (or declined, when DeviceDecline is set). Zero leaves codes pending until ApproveDevice
	// or DeclineDevice.
	DevicePolls int
	// DeviceDecline makes DevicePolls decline instead of approve.
	DeviceDecline bool

	// RefreshLifetime, when positive, ends each refresh token that long
	// after the sign-in that issued it: Google answers invalid_grant "Token
	// has been expired or revoked." 7 days after the consent of an External
	// app whose publishing status is "Testing", Microsoft AADSTS700082.
	// Zero keeps refresh tokens until they are revoked.
	RefreshLifetime time.Duration

	// Personal imitates the consumers tenant that personal Outlook.com
	// accounts sign in through: opaque access tokens ("EwB...", not JWTs)
	// and the tenant id of personal Microsoft accounts.
	Personal bool

	// Google imitates Google's identity platform instead of Microsoft's
	// (docs/google-facts.md): its endpoints, error bodies and opaque
	// tokens, a client that must send its secret, a refresh token only
	// when access_type=offline is asked and the consent page was shown, no
	// rotation, and a device flow that refuses the mail scope.
	Google bool
	// TestUsers, in Google mode, are the only accounts the app may sign
	// in, as for an app in "Testing": anyone else is sent back with
	// error=access_denied. Empty lets every account in.
	TestUsers []string
	// Unticked, in Google mode, are the scopes the person leaves unticked
	// on Google's consent page: sign-ins grant every other scope asked for.
	Unticked []string
}

// Server is a running imitation of the identity platform on 127.0.0.1. It is
// safe for concurrent use.
type Server struct {
	opts    Options
	tenant  string // the tid claim of every token
	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex
	lifetime time.Duration
	access   map[string]*accessRec
	refresh  map[string]*refreshRec
	latest   map[string]string          // lower-cased user -> newest refresh token
	refused  map[string]bool            // lower-cased users whose access tokens mail servers refuse
	consent  map[string]map[string]bool // consentKey -> resource scopes the user consented to
	codes    map[string]*codeRec
	devices  map[string]*deviceRec // device_code -> record
	userCode map[string]string     // user_code -> device_code
	apps     map[string]*appRec    // by client id
	failures []Failure
	authFail *Failure
	signedIn string // SignInAs
	// consented holds user+"\x00"+client pairs that saw Google's consent
	// page once; later sign-ins skip it unless prompt=consent.
	consented map[string]bool

	tokenReqs, refreshReqs, deviceReqs, devicePolls, appReqs atomic.Int64
}

// New starts a Server on 127.0.0.1 with a random port. It does I/O (it
// listens) and works outside tests too. Close it when done.
func New(o Options) *Server {
	if o.Lifetime <= 0 {
		o.Lifetime = time.Hour
	}
	if o.User == "" {
		o.User = "user@example.com"
	}
	if o.DeviceInterval <= 0 {
		o.DeviceInterval = 5
	}
	if o.DeviceExpiresIn <= 0 {
		o.DeviceExpiresIn = 900
	}
	if o.TimeUnit <= 0 {
		o.TimeUnit = time.Second
	}
	tenant := newUUID()
	if o.Personal {
		tenant = personalTenant
	}
	s := &Server{
		opts:      o,
		tenant:    tenant,
		closing:   make(chan struct{}),
		lifetime:  o.Lifetime,
		access:    map[string]*accessRec{},
		refresh:   map[string]*refreshRec{},
		latest:    map[string]string{},
		refused:   map[string]bool{},
		consent:   map[string]map[string]bool{},
		codes:     map[string]*codeRec{},
		devices:   map[string]*deviceRec{},
		userCode:  map[string]string{},
		consented: map[string]bool{},
		apps:      map[string]*appRec{},
	}
	mux := http.NewServeMux()
	if o.Google {
		mux.HandleFunc(googleAuthPath, s.handleGoogleAuthorize)
		mux.HandleFunc(googleTokenPath, s.handleGoogleToken)
		mux.HandleFunc(googleDevicePath, s.handleGoogleDevice)
	} else {
		mux.HandleFunc("/{tenant}/oauth2/v2.0/authorize", s.handleAuthorize)
		mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.handleToken)
		mux.HandleFunc("/{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
	}
	mux.HandleFunc("/introspect", s.handleIntrospect)
	mux.HandleFunc("/devicelogin", s.handleDevicePage)
	s.srv = httptest.NewServer(mux)
	return s
}

// Close stops the server, cutting short any delayed answer.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// AuthURL is the authorize endpoint for tenant ("common", a tenant id...);
// Google has no tenants and ignores it.
func (s *Server) AuthURL(tenant string) string { return s.endpoint(tenant, "authorize") }

// TokenURL is the token endpoint for tenant.
func (s *Server) TokenURL(tenant string) string { return s.endpoint(tenant, "token") }

// DeviceURL is the devicecode endpoint for tenant (Google's device/code).
func (s *Server) DeviceURL(tenant string) string { return s.endpoint(tenant, "devicecode") }

// IntrospectURL is the RFC 7662 introspection endpoint, for mail servers
// (Dovecot's oauth2 passdb) that check tokens against the platform.
func (s *Server) IntrospectURL() string { return s.srv.URL + "/introspect" }

// TenantID is the tid claim of the tokens this server issues.
func (s *Server) TenantID() string { return s.tenant }

func (s *Server) endpoint(tenant, name string) string {
	if s.opts.Google {
		return s.srv.URL + map[string]string{"authorize": googleAuthPath, "token": googleTokenPath, "devicecode": googleDevicePath}[name]
	}
	if tenant == "" {
		tenant = "common"
	}
	return s.srv.URL + "/" + tenant + "/oauth2/v2.0/" + name
}

// SignInAs sets who the person at the browser is signed in as, whatever
// the sign-in asks for, as a browser profile already signed in to another
// account does: the authorize endpoint then signs user in regardless of
// login_hint, and DevicePolls approves device codes for user. Empty goes
// back to the default (login_hint, else Options.User). ApproveDevice also
// approves one device code for any user.
func (s *Server) SignInAs(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedIn = user
}

// browserUser is who the authorize endpoint signs in for a login_hint.
func (s *Server) browserUser(hint string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.signedIn != "":
		return s.signedIn
	case hint != "":
		return hint
	}
	return s.opts.User
}

// SetLifetime changes the lifetime of access tokens issued from now on.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// TokenRequests counts requests to the token endpoint, of every grant type
// and including failed ones.
func (s *Server) TokenRequests() int { return int(s.tokenReqs.Load()) }

// RefreshRequests counts token-endpoint requests with
// grant_type=refresh_token.
func (s *Server) RefreshRequests() int { return int(s.refreshReqs.Load()) }

// DeviceRequests counts requests to the devicecode endpoint.
func (s *Server) DeviceRequests() int { return int(s.deviceReqs.Load()) }

// DevicePolls counts token-endpoint requests with the device_code grant.
func (s *Server) DevicePolls() int { return int(s.devicePolls.Load()) }

// wait sleeps for d, or less when the request or the server ends first.
func (s *Server) wait(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.closing:
	}
}
