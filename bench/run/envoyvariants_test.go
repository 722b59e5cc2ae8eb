package main

import (
	"bytes"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// The variant "(b) with every request header sent" is the shipped
// envoy.yaml without its allowed_headers, and nothing else taken out.
func TestWithoutAllowedHeaders(t *testing.T) {
	out, ok := withoutAllowedHeaders(envoy.Config)
	if !ok {
		t.Fatal("the shipped envoy.yaml has no allowed_headers")
	}
	if bytes.Contains(out, []byte(" allowed_headers:\n")) || bytes.Contains(out, []byte("- exact: x-forwarded-user")) {
		t.Fatalf("allowed_headers left in:\n%s", out)
	}
	if _, err := envoy.Decode(out); err != nil {
		t.Fatalf("the variant is no valid bootstrap: %v", err)
	}
	removed := len(envoy.Config) - len(out)
	if removed > 3000 {
		t.Fatalf("%d bytes taken out: more than the list", removed)
	}
	for _, keep := range []string{"envoy.filters.http.rbac", "status_on_error", "include_peer_certificate"} {
		if !bytes.Contains(out, []byte(keep)) {
			t.Fatalf("%s went too", keep)
		}
	}
}
