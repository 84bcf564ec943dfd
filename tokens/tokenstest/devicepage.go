package tokenstest

import (
	"html/template"
	"net/http"
)

var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in (test identity platform)</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h1>Enter code</h1>
{{if .Msg}}<p><b>{{.Msg}}</b></p>{{end}}
<form method="post">
<p><label>Code <input name="code" autofocus></label></p>
<p><label>Sign in as <input name="user" value="{{.User}}"></label></p>
<p><button name="action" value="approve">Approve</button>
<button name="action" value="decline">Decline</button></p>
</form>
<p>This is an imitation of the Microsoft identity platform for tests and demos.</p>
</body></html>
`))

// handleDevicePage is the verification URI: a form where a person enters
// the user code and approves or declines it, for `bridge demo`.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	data := struct{ Msg, User string }{User: s.opts.User}
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		var err error
		if r.PostForm.Get("action") == "decline" {
			err = s.DeclineDevice(r.PostForm.Get("code"))
			data.Msg = "Declined. You can close this window."
		} else {
			err = s.ApproveDevice(r.PostForm.Get("code"), r.PostForm.Get("user"))
			data.Msg = "Signed in. You can close this window and return to the application."
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data.Msg = err.Error()
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = devicePage.Execute(w, data)
}
