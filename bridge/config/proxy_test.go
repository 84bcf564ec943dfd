package config

import (
	"strings"
	"testing"
)

// TestValidateProxy: [network] proxy and an account's proxy take an HTTP
// or SOCKS5 proxy URL with a port, or "direct"; a refused one is named by
// key and line, and its password never shows.
func TestValidateProxy(t *testing.T) {
	c, err := Load(writeConfig(t, `[network]
proxy = "http://ann@proxy.corp:3128"

[[account]]
email = "a@x.com"
proxy = "direct"

[[account]]
email = "b@x.com"
proxy = "socks5://127.0.0.1:1080"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Proxy != "http://ann@proxy.corp:3128" || c.Accounts[0].Proxy != "direct" || c.Accounts[1].Proxy != "socks5://127.0.0.1:1080" {
		t.Errorf("loaded %q, %q, %q", c.Network.Proxy, c.Accounts[0].Proxy, c.Accounts[1].Proxy)
	}

	_, err = Load(writeConfig(t, `[network]
proxy = "https://ann:s3cret@proxy.corp:443"

[[account]]
email = "a@x.com"

proxy = "proxy.corp:3128"
`))
	errs := configErrors(t, err)
	if e := findErr(t, errs, "network.proxy"); e.Line != 2 || !strings.Contains(e.Msg, "not supported") {
		t.Errorf("network.proxy: line %d, %q", e.Line, e.Msg)
	}
	if e := findErr(t, errs, "account[0].proxy"); e.Line != 7 || !strings.Contains(e.Msg, `"direct"`) {
		t.Errorf("account[0].proxy: line %d, %q", e.Line, e.Msg)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the proxy password is in the error: %v", err)
	}
}
