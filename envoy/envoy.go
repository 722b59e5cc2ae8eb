// Package envoy ships the deployment files for zitadel-ext-authz: the Envoy
// configuration (envoy.yaml), the Istio mesh extension and Kubernetes
// manifests (istio/) and the docker compose server template (compose/).
// Decode parses envoy.yaml strictly into go-control-plane's Bootstrap, with
// every typed_config resolved, the way Envoy itself would reject a typo or
// a wrong type; the integration tests' Envoy emulator takes its ext_authz
// settings from the decoded file. The tests decode istio/ with istio.io/api
// and k8s.io/api types and ../docker-compose.yml with compose-go.
//
// For check-envoy, RouteSettings and HeaderLists read any deployment file
// (Envoy, Istio, Envoy Gateway, a rendered chart) as YAML: the route keys
// it sets, and the lists of request headers its proxy sends to Check
// (allowed_headers and its kin), matched as Envoy matches them
// (HeaderPattern).
package envoy

import (
	_ "embed"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	// The typed_config types envoy.yaml uses, registered for Any resolution.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Config is envoy.yaml as shipped.
//
//go:embed envoy.yaml
var Config []byte

// Decode parses an Envoy bootstrap in YAML strictly: unknown fields and
// unresolvable typed_config types fail, and ValidateAll applies the proto
// validation rules (PGV) Envoy enforces.
func Decode(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("envoy config: yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, b); err != nil {
		return nil, fmt.Errorf("envoy config: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy config: %w", err)
	}
	return b, nil
}
