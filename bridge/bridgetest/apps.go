package bridgetest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
)

// Apps is Exchange Online's side of app-only access (docs/microsoft-facts.md
// §3.8): the service principals an administrator registered with
// New-ServicePrincipal, and the mailboxes each was given with
// Add-MailboxPermission. One Apps may serve the IMAP, POP3 and SMTP
// imitations together, as one Exchange does. It is safe for concurrent
// use.
//
// An app-only token (idtyp "app") that the Validator accepts logs in only
// when its roles claim holds the protocol's permission (IMAP.AccessAsApp,
// POP.AccessAsApp, SMTP.SendAsApp), its app id is registered with the
// token's oid (the enterprise application's object id), and that service
// principal may open the mailbox in user=. Otherwise Exchange gives its
// generic refusal (IMAP "NO AUTHENTICATE failed.", POP3 "-ERR
// Authentication failure: ...", SMTP "535 5.7.3 ..."), except that IMAP
// accepts a token whose only lack is the mailbox permission and answers
// the first mailbox command with "BAD User is authenticated but not
// connected.", as Mode NotConnected does. A server without Apps (nil)
// has no service principal, so it refuses every app-only token.
type Apps struct {
	mu        sync.Mutex
	sps       map[string]string          // app id -> the object id registered
	mailboxes map[string]map[string]bool // object id -> lower-case mailboxes
}

// NewApps returns an Exchange with no service principal. It does no I/O.
func NewApps() *Apps {
	return &Apps{sps: map[string]string{}, mailboxes: map[string]map[string]bool{}}
}

// RegisterServicePrincipal is `New-ServicePrincipal -AppId appID
// -ObjectId objectID`. Exchange takes whatever object id it is given; only
// the enterprise application's (the oid of the app's tokens) makes the
// app's tokens work, and the app registration's own object id, the common
// mistake, does not.
func (a *Apps) RegisterServicePrincipal(appID, objectID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sps[strings.ToLower(appID)] = strings.ToLower(objectID)
}

// GrantMailbox is `Add-MailboxPermission -Identity mailbox -User objectID
// -AccessRights FullAccess`.
func (a *Apps) GrantMailbox(objectID, mailbox string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := strings.ToLower(objectID)
	if a.mailboxes[id] == nil {
		a.mailboxes[id] = map[string]bool{}
	}
	a.mailboxes[id][strings.ToLower(mailbox)] = true
}

// appVerdict is what Exchange makes of a token at login.
type appVerdict int

const (
	// appNone: not an app-only token; the Validator's verdict stands.
	appNone appVerdict = iota
	// appOK: the app may open the mailbox with this protocol.
	appOK
	// appRefused: the generic refusal at AUTH.
	appRefused
	// appNotConnected: the login is accepted, the mailbox is not opened.
	appNotConnected
)

// The application permission each protocol needs, as the roles claim
// names it.
const (
	roleIMAP = "IMAP.AccessAsApp"
	rolePOP3 = "POP.AccessAsApp"
	roleSMTP = "SMTP.SendAsApp"
)

// check judges token for user= mailbox and the protocol whose role is
// role. a may be nil.
func (a *Apps) check(role, mailbox, token string) appVerdict {
	var c struct {
		IDType string   `json:"idtyp"`
		AppID  string   `json:"appid"`
		OID    string   `json:"oid"`
		Roles  []string `json:"roles"`
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return appNone
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &c) != nil || c.IDType != "app" {
		return appNone
	}
	if a == nil || !hasRole(c.Roles, role) {
		return appRefused
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sps[strings.ToLower(c.AppID)] != strings.ToLower(c.OID) || c.OID == "" {
		return appRefused
	}
	if !a.mailboxes[strings.ToLower(c.OID)][strings.ToLower(mailbox)] {
		if role == roleIMAP {
			return appNotConnected
		}
		return appRefused
	}
	return appOK
}

func hasRole(roles []string, want string) bool {
	for _, r := range roles {
		if strings.EqualFold(r, want) {
			return true
		}
	}
	return false
}
