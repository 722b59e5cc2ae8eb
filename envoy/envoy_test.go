package envoy

import (
	"strings"
	"testing"
)

func TestShippedConfigDecodesStrictly(t *testing.T) {
	if _, err := Decode(Config); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
}

func TestDecodeRejectsMistakes(t *testing.T) {
	cases := map[string]struct{ old, new string }{
		"typo in a field":         {"failure_mode_allow: false", "failure_mode_alow: false"},
		"wrong type":              {"timeout: 6s", "timeout: six seconds"},
		"unknown typed_config":    {"ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthzz\n"},
		"validation rule (PGV)":   {"connect_timeout: 1s\n    # gRPC", "connect_timeout: -1s\n    # gRPC"},
		"unknown status_on_error": {"code: ServiceUnavailable", "code: NotAStatus"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(string(Config), tc.old, tc.new, 1)
			if bad == string(Config) {
				t.Fatalf("test setup: %q not found in envoy.yaml", tc.old)
			}
			if _, err := Decode([]byte(bad)); err == nil {
				t.Fatalf("Decode accepted a config with a %s", name)
			}
		})
	}
}

// Virtual hosts added for more apps decode as Envoy would read them.
func TestWithVirtualHostsDecodes(t *testing.T) {
	cfg, err := WithVirtualHosts(VirtualHost{Name: "shop", Domains: []string{"shop.example.com", "shop.example.com:*"}, App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(cfg)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	vhosts := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		vhosts += strings.Count(l.String(), `name:"shop"`)
	}
	if vhosts == 0 || !strings.Contains(string(cfg), `domains: ["shop.example.com", "shop.example.com:*"]`) {
		t.Errorf("no shop virtual host in:\n%s", cfg)
	}
}
