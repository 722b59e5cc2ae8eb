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
