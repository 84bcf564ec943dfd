package tokens

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// AppScope is the scope of every app-only token request for Exchange
// Online: ".default" grants whatever application permissions
// (IMAP.AccessAsApp, POP.AccessAsApp, SMTP.SendAsApp) an administrator
// consented to, and Microsoft requires this exact resource
// (docs/microsoft-facts.md §2.1).
const AppScope = "https://outlook.office365.com/.default"

// ForApp returns p as an app-only (client credentials) account uses it:
// the token endpoint and the mail servers stay, the scope is AppScope,
// and nothing a person signs in with (authorize and device endpoints,
// OpenID scopes) is left.
func (p Provider) ForApp() Provider {
	p.Scopes = []string{AppScope}
	p.IdentityScopes = nil
	p.AuthURL, p.DeviceURL = "", ""
	return p
}

// AppCredential is what an app-only account proves itself with at the
// token endpoint: a client secret, or a certificate whose private key
// signs a client assertion (preferred: nothing secret crosses the wire,
// and certificates may live longer than the two years a secret may).
type AppCredential struct {
	// Secret is the client secret's value; empty for a certificate.
	Secret string
	// Cert and Key are the certificate registered for the app and its
	// private key; nil for a secret. Microsoft Entra takes RSA keys only.
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// Kind is "certificate" or "client secret", for messages.
func (c *AppCredential) Kind() string {
	if c.Cert != nil {
		return "certificate"
	}
	return "client secret"
}

// ParseAppCredential reads an Entry.AppCredential: PEM text holding a
// certificate and its private key (as CertificateCredential stores it),
// or else a client secret. Errors never quote the credential.
func ParseAppCredential(stored string) (*AppCredential, error) {
	if strings.HasPrefix(strings.TrimSpace(stored), "-----BEGIN ") {
		c, _, err := CertificateCredential([]byte(stored))
		return c, err
	}
	if strings.TrimSpace(stored) == "" {
		return nil, errors.New("tokens: the app credential is empty")
	}
	return &AppCredential{Secret: stored}, nil
}

// CertificateCredential reads PEM data holding the app's certificate and
// its unencrypted RSA private key (PKCS #1 or PKCS #8), in any order and
// beside other certificates of a chain. It returns the credential and the
// text to keep in Entry.AppCredential: the key and the one certificate
// that matches it, nothing else of the file. Errors never quote the key.
func CertificateCredential(data []byte) (*AppCredential, string, error) {
	var key *rsa.PrivateKey
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, "", fmt.Errorf("tokens: a certificate in the PEM data cannot be read: %w", err)
			}
			certs = append(certs, c)
		case b.Type == "ENCRYPTED PRIVATE KEY" || strings.HasSuffix(b.Type, "PRIVATE KEY") && b.Headers["Proc-Type"] != "":
			return nil, "", errors.New("tokens: the private key is encrypted; write it without a passphrase " +
				"(openssl pkey -in KEY.pem -out PLAIN.pem) for the bridge's store, which keeps it in the keyring or an encrypted file")
		case b.Type == "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, "", errors.New("tokens: the RSA private key in the PEM data cannot be read")
			}
			key = k
		case b.Type == "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, "", errors.New("tokens: the private key in the PEM data cannot be read")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, "", fmt.Errorf("tokens: the private key is %T; Microsoft Entra accepts only RSA certificates for an app", k)
			}
			key = rk
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			return nil, "", fmt.Errorf("tokens: the private key is a %s; Microsoft Entra accepts only RSA certificates for an app", b.Type)
		}
	}
	switch {
	case key == nil && len(certs) == 0:
		return nil, "", errors.New("tokens: no PEM certificate or private key found")
	case key == nil:
		return nil, "", errors.New("tokens: the PEM data has a certificate but no private key; put both in one file (cat cert.pem key.pem > app.pem)")
	case len(certs) == 0:
		return nil, "", errors.New("tokens: the PEM data has a private key but no certificate; put both in one file (cat cert.pem key.pem > app.pem)")
	}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
			der := x509.MarshalPKCS1PrivateKey(key)
			text := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})) +
				string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}))
			return &AppCredential{Cert: c, Key: key}, text, nil
		}
	}
	return nil, "", errors.New("tokens: no certificate in the PEM data belongs to its private key")
}

// Thumbprints are how Microsoft names a certificate: the base64url
// SHA-256 (x5t#S256) and SHA-1 (x5t) hashes of its DER form. The
// admin centre shows the SHA-1 one in hex (Thumbprint).
func (c *AppCredential) thumbprints() (s256, s1 string) {
	a := sha256.Sum256(c.Cert.Raw)
	b := sha1.Sum(c.Cert.Raw)
	return base64.RawURLEncoding.EncodeToString(a[:]), base64.RawURLEncoding.EncodeToString(b[:])
}

// Thumbprint is the certificate's SHA-1 thumbprint in upper-case hex, as
// the Microsoft Entra admin centre lists it under Certificates & secrets;
// "" for a secret.
func (c *AppCredential) Thumbprint() string {
	if c.Cert == nil {
		return ""
	}
	sum := sha1.Sum(c.Cert.Raw)
	return fmt.Sprintf("%X", sum[:])
}

// assertionLife is how long a client assertion stays good. Microsoft
// advises at most 5 to 10 minutes after nbf; one is used at once.
const assertionLife = 5 * time.Minute

// assertion builds the client assertion of RFC 7523 section 2.2 in the
// form Microsoft's "certificate credentials" page gives: a JWT signed
// PS256 (RFC 7518 section 3.5) with the certificate's key, the
// certificate named by x5t#S256 and, for older readers, x5t; aud is the
// token endpoint, iss and sub the client id, a random jti, nbf and iat
// now, exp assertionLife later.
func (c *AppCredential) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	s256, s1 := c.thumbprints()
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": s256, "x5t": s1})
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("tokens: client assertion: %w", err)
	}
	claims, _ := json.Marshal(map[string]any{
		"aud": tokenURL, "iss": clientID, "sub": clientID,
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPSS(rand.Reader, c.Key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", fmt.Errorf("tokens: signing the client assertion: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// clientAssertionType is RFC 7523 section 2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// appForm is the body of a client credentials request (RFC 6749 section
// 4.4.2) authenticated with cred: the secret in the body (section
// 2.3.1), or a client assertion (RFC 7523 section 2.2).
func appForm(p Provider, clientID string, cred *AppCredential, now time.Time) (url.Values, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {clientID},
		"scope":      {strings.Join(p.Scopes, " ")},
	}
	if cred.Cert == nil {
		form.Set("client_secret", cred.Secret)
		return form, nil
	}
	a, err := cred.assertion(clientID, p.TokenURL, now)
	if err != nil {
		return nil, err
	}
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", a)
	return form, nil
}

// AppTokenOptions configure AppToken.
type AppTokenOptions struct {
	// Account names the account in errors.
	Account string
	// Provider gives the token endpoint and the scope (see ForApp).
	Provider Provider
	// ClientID is the app registration's application (client) id.
	ClientID string
	// Credential is the secret or certificate to authenticate with.
	Credential *AppCredential
	// HTTPClient makes the request; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// AppToken requests an access token with the client credentials grant,
// once, as `bridge login --app` does to prove a credential before storing
// it; a Source in app mode (SourceOptions.App) requests the ones after.
// Errors are *Error (Op "app token").
func AppToken(ctx context.Context, o AppTokenOptions) (*oauth2.Token, error) {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	form, err := appForm(o.Provider, o.ClientID, o.Credential, time.Now())
	if err != nil {
		return nil, err
	}
	tok, err := postToken(ctx, o.HTTPClient, o.Provider.TokenURL, form, time.Now)
	if err != nil {
		return nil, FromOAuth(o.Account, opAppToken, err)
	}
	return tok, nil
}

// opAppToken is the Error.Op of a client credentials request.
const opAppToken = "app token"

// AppGrant is what an app-only access token says it grants. It is read
// without verifying the token: Exchange checks it; the bridge only
// explains a refusal with it.
type AppGrant struct {
	// Roles are the application permissions consented to (the roles
	// claim), such as "IMAP.AccessAsApp"; empty when none were.
	Roles []string
	// ServicePrincipal is the oid claim: the object id of the app's
	// service principal in the tenant (its enterprise application), the
	// id Exchange's New-ServicePrincipal wants.
	ServicePrincipal string
	// AppID is the appid claim: the application (client) id.
	AppID string
}

// ReadAppGrant reads the claims of an app-only access token; ok is false
// when the token is not a readable JWT or names a user (a delegated
// token).
func ReadAppGrant(access string) (g AppGrant, ok bool) {
	var c struct {
		Roles  []string `json:"roles"`
		OID    string   `json:"oid"`
		AppID  string   `json:"appid"`
		IDType string   `json:"idtyp"`
		SCP    string   `json:"scp"`
	}
	if !jwtPayload(access, &c) || c.SCP != "" || c.IDType != "" && c.IDType != "app" {
		return AppGrant{}, false
	}
	return AppGrant{Roles: c.Roles, ServicePrincipal: c.OID, AppID: c.AppID}, true
}

// HasRole reports whether the grant includes role, ignoring case.
func (g AppGrant) HasRole(role string) bool {
	for _, r := range g.Roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}
