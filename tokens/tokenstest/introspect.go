package tokenstest

import (
	"net/http"
	"strings"
	"time"
)

// handleIntrospect answers RFC 7662 token introspection. The token comes
// as the form field "token" (section 2.1, POST), as a "token" query
// parameter, or as a Bearer header, the three ways Dovecot's oauth2 passdb
// can send it (introspection_mode post, get and auth). Unknown, expired
// and invalidated tokens, and those of a user under RefuseMail, are
// {"active":false} (section 2.2).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tok := r.Form.Get("token")
	if h := r.Header.Get("Authorization"); tok == "" && len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		tok = h[7:]
	}
	s.mu.Lock()
	rec, ok := s.access[tok]
	var cp accessRec
	if ok {
		cp = *rec
	}
	refused := ok && cp.app == "" && s.refused[strings.ToLower(cp.user)]
	s.mu.Unlock()
	if !ok || !time.Now().Before(cp.exp) || cp.revoked || refused {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	if cp.app != "" {
		// An app-only token names no user; its roles say what it may do.
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "client_id": cp.clientID, "roles": cp.roles, "token_type": "Bearer",
			"exp": cp.exp.Unix(), "iat": cp.iat.Unix(), "aud": appResource,
			"iss": "https://sts.windows.net/" + s.tenant + "/",
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"active":     true,
		"scope":      scp(cp.scope),
		"client_id":  cp.clientID,
		"username":   cp.user,
		"email":      cp.user,
		"upn":        cp.user,
		"token_type": "Bearer",
		"exp":        cp.exp.Unix(),
		"iat":        cp.iat.Unix(),
		"aud":        audience(cp.scope),
		"iss":        "https://sts.windows.net/" + s.tenant + "/",
	})
}
