package tokenstest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	appID    = "0a1b2c3d-0000-4000-8000-00000000abcd"
	appScope = "https://outlook.office365.com/.default"
)

// selfSigned makes an RSA key and a self-signed certificate valid from
// notBefore to notAfter, as `openssl req -x509` would for an app.
func selfSigned(t *testing.T, notBefore, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bridge app"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// assertion signs a client assertion with alg ("RS256" or "PS256"),
// naming cert by x5t#S256, with the given claims.
func assertion(t *testing.T, alg string, key *rsa.PrivateKey, cert *x509.Certificate, claims map[string]any) string {
	t.Helper()
	sum := sha256.Sum256(cert.Raw)
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "x5t#S256": enc.EncodeToString(sum[:])})
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	d := sha256.Sum256([]byte(signing))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func goodClaims(s *tokenstest.Server) map[string]any {
	now := time.Now()
	return map[string]any{"aud": s.TokenURL(s.TenantID()), "iss": appID, "sub": appID, "jti": "j1",
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

func secretForm(secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {appScope}}
}

func assertionForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "scope": {appScope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
}

// TestClientCredentialsSecret: a registered app gets an app-only token
// with its secret at its tenant's endpoint: the roles it was granted, its
// service principal's object id, no user and no refresh token. A wrong,
// expired or missing secret, the common endpoint, another tenant and a
// scope without /.default get Microsoft's refusals.
func TestClientCredentialsSecret(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	ids := s.RegisterApp(tokenstest.App{ClientID: appID, Secret: "s3cret~value", Roles: []string{"IMAP.AccessAsApp", "SMTP.SendAsApp"}})
	if ids.ServicePrincipal == "" || ids.Registration == "" || ids.ServicePrincipal == ids.Registration {
		t.Fatalf("ids %+v: want two different object ids", ids)
	}
	tenant := s.TokenURL(s.TenantID())

	status, m := post(t, tenant, secretForm("s3cret~value"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, m)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Error("the client credentials grant issued a refresh token")
	}
	at, _ := m["access_token"].(string)
	c := payload(t, at)
	roles, _ := c["roles"].([]any)
	if c["idtyp"] != "app" || c["oid"] != ids.ServicePrincipal || c["appid"] != appID || c["upn"] != nil ||
		len(roles) != 2 || roles[0] != "IMAP.AccessAsApp" || c["aud"] != "https://outlook.office365.com" || c["appidacr"] != "1" {
		t.Errorf("claims %v", c)
	}
	if err := s.Validate("printer@contoso.example", at); err != nil {
		t.Errorf("Validate of an app-only token for a mailbox: %v", err)
	}
	if s.AppRequests() != 1 || s.RefreshRequests() != 0 {
		t.Errorf("AppRequests %d RefreshRequests %d, want 1 and 0", s.AppRequests(), s.RefreshRequests())
	}

	status, m = post(t, tenant, secretForm("the-secret-id"))
	wantError(t, status, m, 401, "invalid_client", 7000215)
	f := secretForm("s3cret~value")
	f.Del("client_secret")
	status, m = post(t, tenant, f)
	wantError(t, status, m, 401, "invalid_client", 7000218)
	status, m = post(t, s.TokenURL("common"), secretForm("s3cret~value"))
	wantError(t, status, m, 400, "invalid_request", 9001023)
	status, m = post(t, s.TokenURL("consumers"), secretForm("s3cret~value"))
	wantError(t, status, m, 400, "invalid_request", 9001023)
	status, m = post(t, s.TokenURL("contoso.example"), secretForm("s3cret~value"))
	wantError(t, status, m, 400, "unauthorized_client", 700016)
	f = secretForm("s3cret~value")
	f.Set("scope", "https://outlook.office365.com/IMAP.AccessAsApp")
	status, m = post(t, tenant, f)
	wantError(t, status, m, 400, "invalid_scope", 1002012)
	f.Set("scope", "https://graph.microsoft.com/.default")
	status, m = post(t, tenant, f)
	wantError(t, status, m, 400, "invalid_resource", 500011)

	s.RegisterApp(tokenstest.App{ClientID: appID, Secret: "s3cret~value", SecretExpired: true})
	status, m = post(t, tenant, secretForm("s3cret~value"))
	wantError(t, status, m, 401, "invalid_client", 7000222)
	if again := s.RegisterApp(tokenstest.App{ClientID: appID}); again != ids {
		t.Errorf("re-registering changed the object ids: %+v, was %+v", again, ids)
	}
}

// TestClientCredentialsAssertion: a client assertion signed RS256 or
// PS256 with the registered certificate's key gets a token whose roles
// are those granted (none here: the claim is left out); an unknown
// certificate, a wrong signature, an expired certificate, a wrong
// audience or issuer and an expired assertion are refused as Microsoft
// does.
func TestClientCredentialsAssertion(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{})
	defer s.Close()
	now := time.Now()
	key, cert := selfSigned(t, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	s.RegisterApp(tokenstest.App{ClientID: appID, Certificate: cert})
	tenant := s.TokenURL(s.TenantID())

	for _, alg := range []string{"RS256", "PS256"} {
		status, m := post(t, tenant, assertionForm(assertion(t, alg, key, cert, goodClaims(s))))
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %v", alg, status, m)
		}
		c := payload(t, m["access_token"].(string))
		if _, ok := c["roles"]; ok || c["appidacr"] != "2" {
			t.Errorf("%s: claims %v: want no roles and appidacr 2", alg, c)
		}
	}

	otherKey, otherCert := selfSigned(t, now.Add(-time.Hour), now.Add(time.Hour))
	bad := func(name, a string, aadsts int) {
		t.Helper()
		status, m := post(t, tenant, assertionForm(a))
		if status != 401 || m["error"] != "invalid_client" {
			t.Errorf("%s: got %d %v", name, status, m["error"])
			return
		}
		if codes, _ := m["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(aadsts) {
			t.Errorf("%s: error_codes %v, want [%d]", name, m["error_codes"], aadsts)
		}
	}
	bad("unregistered certificate", assertion(t, "PS256", otherKey, otherCert, goodClaims(s)), 700027)
	bad("signed by another key", assertion(t, "PS256", otherKey, cert, goodClaims(s)), 700027)
	c := goodClaims(s)
	c["aud"] = s.TokenURL("common")
	bad("audience", assertion(t, "PS256", key, cert, c), 700023)
	c = goodClaims(s)
	c["iss"] = "someone-else"
	bad("issuer", assertion(t, "PS256", key, cert, c), 700021)
	c = goodClaims(s)
	c["exp"] = now.Add(-time.Hour).Unix()
	bad("expired assertion", assertion(t, "PS256", key, cert, c), 700024)

	oldKey, oldCert := selfSigned(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	s.RegisterApp(tokenstest.App{ClientID: appID, Certificate: oldCert})
	bad("expired certificate", assertion(t, "PS256", oldKey, oldCert, goodClaims(s)), 700027)
	if s.AppRequests() != 8 || s.RefreshRequests() != 0 || s.DevicePolls() != 0 {
		t.Errorf("AppRequests %d, RefreshRequests %d, DevicePolls %d: want 8, 0, 0", s.AppRequests(), s.RefreshRequests(), s.DevicePolls())
	}
}
