package config

import (
	"strings"
	"testing"
)

// A redirect_url on one of our own listeners can never finish a sign-in
// (ZITADEL's oauth2-proxy guide sets oauth2-proxy's address, our
// operations listener); one through Envoy, or a path, can.
func TestCallbackProblems(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // a part of the one problem; "": none
	}{
		{"the guide's file", "redirect_url = \"http://127.0.0.1:4180/oauth2/callback\"\nhttp_address = \"127.0.0.1:4180\"\n", "http_address = 127.0.0.1:4180"},
		{"localhost for 127.0.0.1", "redirect_url = \"http://localhost:4180/oauth2/callback\"\nhttp_address = \"127.0.0.1:4180\"\n", "operations listener"},
		{"a bind-all listener", "redirect_url = \"http://127.0.0.1:9001/oauth2/callback\"\ngrpc_address = \"0.0.0.0:9001\"\n", "grpc_address = 0.0.0.0:9001"},
		{"an app's own", "[[apps]]\nname = \"shop\"\nhosts = [\"shop.example.com\"]\nclient_id = \"5@acme\"\nredirect_url = \"http://127.0.0.1:4180/oauth2/callback\"\n", "app shop: redirect_url"},
		{"through Envoy", "redirect_url = \"http://127.0.0.1:8000/oauth2/callback\"\nhttp_address = \"127.0.0.1:4180\"\n", ""},
		{"a path", "redirect_url = \"/oauth2/callback\"\nhttp_address = \"127.0.0.1:4180\"\n", ""},
		{"another host on the same port", "redirect_url = \"https://app.example.com:4180/oauth2/callback\"\nhttp_address = \"127.0.0.1:4180\"\n", ""},
		{"https on the default port", "redirect_url = \"https://app.example.com/oauth2/callback\"\nhttp_address = \"0.0.0.0:443\"\n", ""},
	} {
		c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+tc.body)}, env(nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := c.CallbackProblems()
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s: %v, want none", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.Contains(got[0], "must come through Envoy")):
			t.Errorf("%s: %v, want one naming %q and the fix", tc.name, got, tc.want)
		}
	}
}
