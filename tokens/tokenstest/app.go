package tokenstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// App is an app registration the platform knows, for the client
// credentials grant (RFC 6749 section 4.4) of app-only access.
type App struct {
	// ClientID is the application (client) id; required.
	ClientID string
	// Secret, when set, is a client secret the app accepts.
	Secret string
	// SecretExpired refuses Secret with AADSTS7000222, as Microsoft
	// refuses a secret past its end date.
	SecretExpired bool
	// Certificate, when set, is the certificate uploaded for the app:
	// client assertions (RFC 7523) signed with its key are accepted
	// until its NotAfter.
	Certificate *x509.Certificate
	// Roles are the application permissions an administrator consented
	// to, which the app's tokens carry in their roles claim, such as
	// "IMAP.AccessAsApp". Empty: none is granted, or none consented; the
	// platform still issues tokens, which Exchange then refuses.
	Roles []string
}

// AppIDs are the two object ids Microsoft Entra gives an app in its home
// tenant.
type AppIDs struct {
	// ServicePrincipal is the enterprise application's object id: the
	// oid claim of the app's tokens, and what Exchange's
	// New-ServicePrincipal -ObjectId wants.
	ServicePrincipal string
	// Registration is the app registration's own object id, which
	// New-ServicePrincipal must not be given (a common mistake).
	Registration string
}

type appRec struct {
	App
	ids AppIDs
}

// RegisterApp registers a in the platform's tenant (TenantID), or
// replaces the registration of the same client id (keeping its object
// ids), and returns its object ids.
func (s *Server) RegisterApp(a App) AppIDs {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.apps[a.ClientID]
	ids := AppIDs{ServicePrincipal: newUUID(), Registration: newUUID()}
	if rec != nil {
		ids = rec.ids
	}
	a.Roles = slices.Clone(a.Roles)
	s.apps[a.ClientID] = &appRec{App: a, ids: ids}
	return ids
}

// AppRequests counts token-endpoint requests with the client credentials
// grant, failed ones included.
func (s *Server) AppRequests() int { return int(s.appReqs.Load()) }

// Client credential texts Microsoft sends, from its error reference and
// captured answers (docs/microsoft-facts.md §2).
const (
	descCommon = "The grant type is not supported over the /common or /consumers endpoints. " +
		"Please use the /organizations or tenant-specific endpoint."
	descNoCredential = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
	descKeyNotFound  = "Client assertion contains an invalid signature. [Reason - The key was not found.]"
	descKeyExpired   = "Client assertion contains an invalid signature. [Reason - The key used is expired.]"
	descBadSignature = "Client assertion failed signature validation."
	descBadAlgorithm = "Invalid JWT token. Unsupported asymmetric signing algorithm."
	descAssertionApp = "Client assertion application identifier doesn't match 'client_id' parameter."
	descAssertionAud = "Client assertion audience claim does not match Realm issuer."
	descAssertionExp = "Client assertion is not within its valid time range."
)

// assertionSkew is the clock difference the platform forgives in nbf
// and exp.
const assertionSkew = 5 * time.Minute

// clientCredentials answers the client credentials grant at tenant:
// only a tenant's own endpoint (AADSTS9001023 at common and consumers),
// a registered app of this tenant (AADSTS700016), its secret (7000215,
// 7000222 when expired) or an assertion signed with its certificate
// (700027 and kin), a ".default" scope (1002012) of Exchange Online
// (500011 for another resource). The token carries the app's roles and
// no user; there is no refresh token.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	id := r.PostForm.Get("client_id")
	unauthorized := func(aadsts int, desc string) {
		writeError(w, http.StatusUnauthorized, "invalid_client", aadsts, desc)
	}
	if tenant == "common" || tenant == "consumers" {
		writeError(w, http.StatusBadRequest, "invalid_request", 9001023, descCommon)
		return
	}
	if id == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'client_id'.")
		return
	}
	s.mu.Lock()
	rec, ok := s.apps[id]
	var app appRec
	if ok {
		app = *rec
	}
	s.mu.Unlock()
	// The bridge never asks organizations for an app-only token; like
	// any other name but the tenant's own, it finds no app here.
	if !ok || tenant != s.tenant {
		writeError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			id, tenant))
		return
	}
	secret, assertion := r.PostForm.Get("client_secret"), r.PostForm.Get("client_assertion")
	switch {
	case assertion != "":
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			writeError(w, http.StatusBadRequest, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
			return
		}
		if aadsts, desc := checkAssertion(assertion, app.App, s.TokenURL(tenant), time.Now()); aadsts != 0 {
			unauthorized(aadsts, desc)
			return
		}
	case secret == "":
		unauthorized(7000218, descNoCredential)
		return
	case app.Secret == "" || secret != app.Secret:
		unauthorized(7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id))
		return
	case app.SecretExpired:
		unauthorized(7000222, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", id))
		return
	}
	scope := r.PostForm.Get("scope")
	res, found := strings.CutSuffix(scope, "/.default")
	switch {
	case !found || strings.ContainsAny(scope, " ") || res == "":
		writeError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	case res != appResource && res != outlookRes:
		writeError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf(
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			res, s.tenant))
		return
	}
	writeTokens(w, s.issueApp(app, assertion != "", scope))
}

// appResource is Exchange Online's resource for app-only tokens.
const appResource = "https://outlook.office365.com"

// checkAssertion checks a client assertion the way Microsoft's
// "certificate credentials" page describes it: a JWT signed RS256 or
// PS256 by the key of the app's certificate, which x5t#S256 (or x5t)
// names, with iss and sub the client id, aud the token endpoint, and now
// between nbf and exp. It returns the AADSTS number and description of
// the first problem, or 0.
func checkAssertion(jwt string, app App, tokenURL string, now time.Time) (int, string) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return 700027, descBadSignature
	}
	var h struct {
		Alg    string `json:"alg"`
		X5T    string `json:"x5t"`
		X5T256 string `json:"x5t#S256"`
	}
	var c struct {
		Aud, Iss, Sub string
		Nbf, Exp      int64
	}
	if !decodePart(parts[0], &h) || !decodePart(parts[1], &c) {
		return 700027, descBadSignature
	}
	cert := app.Certificate
	if cert == nil {
		return 700027, descKeyNotFound
	}
	s256, s1 := sha256.Sum256(cert.Raw), sha1.Sum(cert.Raw)
	enc := base64.RawURLEncoding
	if h.X5T256 != enc.EncodeToString(s256[:]) && h.X5T != enc.EncodeToString(s1[:]) {
		return 700027, descKeyNotFound
	}
	if now.After(cert.NotAfter) {
		return 700027, descKeyExpired
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	sig, err := enc.DecodeString(parts[2])
	if !ok || err != nil {
		return 700027, descBadSignature
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch h.Alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		return 700027, descBadAlgorithm
	}
	switch {
	case err != nil:
		return 700027, descBadSignature
	case c.Iss != app.ClientID || c.Sub != app.ClientID:
		return 700021, descAssertionApp
	case c.Aud != tokenURL:
		return 700023, descAssertionAud
	case c.Exp == 0 || now.After(time.Unix(c.Exp, 0).Add(assertionSkew)) || now.Add(assertionSkew).Before(time.Unix(c.Nbf, 0)):
		return 700024, descAssertionExp
	}
	return 0, ""
}

func decodePart(part string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(part)
	return err == nil && json.Unmarshal(b, v) == nil
}

// issueApp mints an app-only access token for app and records it.
func (s *Server) issueApp(app appRec, cert bool, scope string) issued {
	s.mu.Lock()
	life := s.lifetime
	s.mu.Unlock()
	now := time.Now()
	exp := now.Add(life)
	at := s.mintApp(app, cert, now, exp)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access[at] = &accessRec{app: app.ClientID, roles: slices.Clone(app.Roles), scope: scope, clientID: app.ClientID, iat: now, exp: exp}
	return issued{access: at, scope: scope, expiry: exp, lifetime: life}
}

// appClaims follow a v1.0 Entra app-only access token for Exchange
// Online: no user, idtyp "app", the consented permissions in roles, and
// the service principal's object id in oid and sub.
type appClaims struct {
	Aud      string   `json:"aud"`
	Iss      string   `json:"iss"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	Aio      string   `json:"aio"`
	AppName  string   `json:"app_displayname"`
	AppID    string   `json:"appid"`
	AppIDAcr string   `json:"appidacr"`
	IDP      string   `json:"idp"`
	IDType   string   `json:"idtyp"`
	OID      string   `json:"oid"`
	RH       string   `json:"rh"`
	Roles    []string `json:"roles,omitempty"`
	Sub      string   `json:"sub"`
	TID      string   `json:"tid"`
	UTI      string   `json:"uti"`
	Ver      string   `json:"ver"`
	WIDs     []string `json:"wids"`
}

// mintApp builds an app-only JWT. Like the delegated ones, its signature
// is random: tokens are recognised by lookup.
func (s *Server) mintApp(app appRec, cert bool, iat, exp time.Time) string {
	kid := randB64(27)
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid})
	acr := "1" // a client secret; "2" is a certificate
	if cert {
		acr = "2"
	}
	iss := "https://sts.windows.net/" + s.tenant + "/"
	c := appClaims{
		Aud: appResource, Iss: iss, Iat: iat.Unix(), Nbf: iat.Unix(), Exp: exp.Unix(),
		Aio: randB64(100), AppName: "bridge", AppID: app.ClientID, AppIDAcr: acr, IDP: iss, IDType: "app",
		OID: app.ids.ServicePrincipal, RH: "0." + randB64(60) + ".", Roles: app.Roles,
		Sub: app.ids.ServicePrincipal, TID: s.tenant, UTI: randB64(22), Ver: "1.0",
		WIDs: []string{"0997a1d0-0d1d-4acb-b408-d5ca73121e90"},
	}
	body, _ := json.Marshal(c)
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString(sig)
}
