package config

import (
	"strings"
	"testing"
)

// TestValidateCloud checks cloud, and smtp_tls beside it.
func TestValidateCloud(t *testing.T) {
	cases := []struct {
		name string
		acct Account
		key  string // "" = valid
		msg  string
	}{
		{"default", Account{Email: "a@contoso.com"}, "", ""},
		{"global", Account{Email: "a@contoso.com", Cloud: "global", Tenant: "consumers"}, "", ""},
		{"usgov", Account{Email: "a@agency.gov", Cloud: "usgov", Tenant: "agency.onmicrosoft.us"}, "", ""},
		{"china any case", Account{Email: "a@contoso.cn", Cloud: "China", Tenant: "organizations"}, "", ""},
		{"unknown", Account{Email: "a@contoso.com", Cloud: "gcc"}, "account[0].cloud", "want global, usgov, china"},
		{"gmail", Account{Email: "a@gmail.com", Provider: "gmail", ClientSecret: "s", Cloud: "usgov"}, "account[0].cloud", "microsoft accounts only"},
		{"personal in usgov", Account{Email: "a@outlook.com", Cloud: "usgov", Tenant: "consumers"}, "account[0].tenant", "only in the global cloud"},
		{"smtp_tls implicit", Account{Email: "a@contoso.com", SMTP: "127.0.0.1:2465", SMTPTLS: "implicit"}, "", ""},
		{"smtp_tls wrong", Account{Email: "a@contoso.com", SMTPTLS: "ssl"}, "account[0].smtp_tls", "want \"implicit\" or \"starttls\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Accounts = []Account{tc.acct}
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			errs := configErrors(t, err)
			if e := findErr(t, errs, tc.key); !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg = %q, want %q", e.Msg, tc.msg)
			}
			if len(errs) != 1 {
				t.Errorf("got %d errors, want 1: %v", len(errs), err)
			}
		})
	}
}

// TestLoadCloudLine: a wrong cloud in a file names its line.
func TestLoadCloudLine(t *testing.T) {
	_, err := Load(writeConfig(t, "[[account]]\nemail = \"a@contoso.com\"\ncloud = \"moon\"\n"))
	if e := findErr(t, configErrors(t, err), "account[0].cloud"); e.Line != 3 {
		t.Errorf("line = %d, want 3", e.Line)
	}
}
