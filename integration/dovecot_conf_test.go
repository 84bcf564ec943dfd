package integration

import (
	"strings"
	"text/template"
)

// dovecotSettings fill the config templates.
type dovecotSettings struct {
	Dir                            string // everything of this instance lives under it
	Instance                       string
	InternalUser, InternalGroup    string
	LoginUser                      string
	MailUID, MailGID               int
	IMAPSPort, POP3SPort, SubmPort int
	RelayPort                      int // the sink
	IntrospectURL                  string
}

// dovecot23Conf is a complete Dovecot 2.3 configuration (Debian 12 ships
// 2.3.19): no include of /etc/dovecot, so the system's settings never leak
// in. Notes on the choices:
//   - chroot is emptied for the login services and anvil, because an
//     unprivileged master cannot chroot, and it costs nothing here.
//   - auth_failure_delay = 0 and the anvil-auth-penalty listener with mode 0
//     turn off both of Dovecot's delays after a failed login (the fixed
//     reply delay and the per-IP penalty that doubles up to 15 s), which
//     would otherwise slow every test that logs in after a refusal.
//   - the oauth2 passdb asks the identity platform's RFC 7662 endpoint
//     with a POST of token=..., and takes the user from "email".
const dovecot23Conf = `# Written by the bridge integration tests; Dovecot 2.3 syntax.
instance_name = {{.Instance}}
protocols = imap pop3 submission
listen = 127.0.0.1
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
info_log_path = {{.Dir}}/dovecot.log
debug_log_path = {{.Dir}}/dovecot.log
hostname = dovecot.bridge.test
postmaster_address = postmaster@bridge.test

default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
default_login_user = {{.LoginUser}}
first_valid_uid = {{.MailUID}}
first_valid_gid = {{.MailGID}}

ssl = required
ssl_cert = <{{.Dir}}/tls/cert.pem
ssl_key = <{{.Dir}}/tls/key.pem
ssl_min_protocol = TLSv1.2

auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0

passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{.Dir}}/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid={{.MailUID}} gid={{.MailGID}} home={{.Dir}}/home/%u
}

mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs

submission_relay_host = 127.0.0.1
submission_relay_port = {{.RelayPort}}
submission_relay_ssl = no

service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.IMAPSPort}}
    ssl = yes
  }
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = {{.POP3SPort}}
    ssl = yes
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    address = 127.0.0.1
    port = {{.SubmPort}}
  }
}
service imap-urlauth-login {
  chroot =
}
`

// oauth2Conf is the oauth2 passdb's own file (Dovecot 2.3 reads it from
// the passdb args).
const oauth2Conf = `introspection_mode = post
introspection_url = {{.IntrospectURL}}
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
timeout_msecs = 10000
`

// render fills a template with s.
func (s dovecotSettings) render(text string) (string, error) {
	tmpl, err := template.New("conf").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, s); err != nil {
		return "", err
	}
	return b.String(), nil
}
