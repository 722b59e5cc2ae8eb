package envoy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// gatewayManifests is what envoy/gateway/ decodes to, with our Service
// from the Kubernetes manifest it reuses.
type gatewayManifests struct {
	classes  []*gwapiv1.GatewayClass
	gateways []*gwapiv1.Gateway
	routes   []*gwapiv1.HTTPRoute
	policies []*egv1a1.SecurityPolicy
	clients  []*egv1a1.ClientTrafficPolicy
	grants   []*gwapiv1b1.ReferenceGrant
	services []*corev1.Service
}

// decodeGateway decodes every document strictly, as the API server would
// with the Gateway API and Envoy Gateway CRDs installed: unknown fields
// and wrong types fail.
func decodeGateway(files map[string][]byte) (*gatewayManifests, error) {
	m := &gatewayManifests{}
	return m, eachDocument(files, m.add)
}

func (m *gatewayManifests) add(js []byte) error {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "gateway.networking.k8s.io/v1 GatewayClass":
		return decodeInto(js, &m.classes)
	case "gateway.networking.k8s.io/v1 Gateway":
		return decodeInto(js, &m.gateways)
	case "gateway.networking.k8s.io/v1 HTTPRoute":
		return decodeInto(js, &m.routes)
	case "gateway.networking.k8s.io/v1beta1 ReferenceGrant":
		return decodeInto(js, &m.grants)
	case "gateway.envoyproxy.io/v1alpha1 SecurityPolicy":
		return decodeInto(js, &m.policies)
	case "gateway.envoyproxy.io/v1alpha1 ClientTrafficPolicy":
		return decodeInto(js, &m.clients)
	case "v1 Service":
		return decodeInto(js, &m.services)
	case "v1 Namespace", "v1 ConfigMap", "v1 Secret", "apps/v1 Deployment":
		return nil // the server's own manifest; istio_test.go checks those
	}
	return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
}

func readGateway(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	paths, _ := filepath.Glob("gateway/*.yaml")
	paths = append(paths, "istio/zitadel-ext-authz.yaml") // the Service/Deployment, reused
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = data
	}
	if len(files) != 4 {
		t.Fatalf("envoy/gateway/: %d files, want gateway.yaml, httproute.yaml, security-policy.yaml", len(files)-1)
	}
	return files
}

func (m *gatewayManifests) route(namespace, name string) *gwapiv1.HTTPRoute {
	for _, r := range m.routes {
		if r.Namespace == namespace && r.Name == name {
			return r
		}
	}
	return nil
}

// check says what doesn't fit together: the policy's target and backend,
// the routes' gateway, the gateway's class, the cross-namespace grant.
func (m *gatewayManifests) check() error {
	if len(m.classes) != 1 || len(m.gateways) != 1 || len(m.policies) != 1 || len(m.services) != 1 || len(m.routes) != 2 || len(m.grants) != 1 {
		return fmt.Errorf("want 1 GatewayClass, Gateway, SecurityPolicy, Service, ReferenceGrant and 2 HTTPRoutes; got %d %d %d %d %d %d",
			len(m.classes), len(m.gateways), len(m.policies), len(m.services), len(m.grants), len(m.routes))
	}
	class, gw, pol, svc, grant := m.classes[0], m.gateways[0], m.policies[0], m.services[0], m.grants[0]
	if class.Spec.ControllerName != "gateway.envoyproxy.io/gatewayclass-controller" || string(gw.Spec.GatewayClassName) != class.Name {
		return fmt.Errorf("gateway class %q (controller %q), gateway's class %q: want Envoy Gateway's controller", class.Name, class.Spec.ControllerName, gw.Spec.GatewayClassName)
	}
	for _, r := range m.routes {
		for _, p := range r.Spec.ParentRefs {
			ns := r.Namespace
			if p.Namespace != nil {
				ns = string(*p.Namespace)
			}
			if string(p.Name) != gw.Name || ns != gw.Namespace {
				return fmt.Errorf("route %s/%s attaches to %s/%s, not the gateway %s/%s", r.Namespace, r.Name, ns, p.Name, gw.Namespace, gw.Name)
			}
		}
	}
	// The policy guards the app's route.
	if len(pol.Spec.TargetRefs) != 1 {
		return fmt.Errorf("policy targets %d refs, want the app's route", len(pol.Spec.TargetRefs))
	}
	target := pol.Spec.TargetRefs[0]
	app := m.route(pol.Namespace, string(target.Name))
	if target.Kind != "HTTPRoute" || target.Group != gwapiv1.GroupName || app == nil {
		return fmt.Errorf("policy target %s/%s %s is no HTTPRoute of these files", target.Group, target.Kind, target.Name)
	}
	// Its gRPC backend is our Service's port named grpc, fail closed, with
	// a timeout that covers a code exchange.
	ea := pol.Spec.ExtAuth
	if ea == nil || ea.GRPC == nil || len(ea.GRPC.BackendRefs) != 1 {
		return fmt.Errorf("policy has no extAuth.grpc with one backendRef")
	}
	be := ea.GRPC.BackendRefs[0]
	if string(be.Name) != svc.Name || be.Namespace == nil || string(*be.Namespace) != svc.Namespace || be.Port == nil {
		return fmt.Errorf("ext_authz backend %v is not the Service %s/%s", be.BackendObjectReference, svc.Namespace, svc.Name)
	}
	if p := servicePort(svc, "grpc"); p == 0 || int32(*be.Port) != p {
		return fmt.Errorf("ext_authz backend port %d, the Service's grpc port is %d", *be.Port, p)
	}
	if ea.FailOpen == nil || *ea.FailOpen {
		return fmt.Errorf("failOpen must be set to false")
	}
	// The route names its app, so the Host can't pick another one.
	if !slices.ContainsFunc(ea.ContextExtensions, func(c *egv1a1.ContextExtension) bool {
		return c.Name == "app" && c.Value != nil && *c.Value != ""
	}) {
		return fmt.Errorf("extAuth.contextExtensions must name the app (app: default)")
	}
	// The gateway refuses underscore spellings of identity headers.
	if len(m.clients) != 1 || m.clients[0].Spec.Headers == nil || m.clients[0].Spec.Headers.WithUnderscoresAction == nil ||
		*m.clients[0].Spec.Headers.WithUnderscoresAction != egv1a1.WithUnderscoresActionRejectRequest ||
		len(m.clients[0].Spec.TargetRefs) != 1 || string(m.clients[0].Spec.TargetRefs[0].Name) != gw.Name {
		return fmt.Errorf("want one ClientTrafficPolicy on the gateway with headers.withUnderscoresAction: RejectRequest")
	}
	if ea.Timeout == nil {
		return fmt.Errorf("extAuth.timeout must be set (a code exchange takes seconds)")
	}
	if d, err := time.ParseDuration(string(*ea.Timeout)); err != nil || d < time.Second || d > 10*time.Second {
		return fmt.Errorf("extAuth.timeout %q: want 1s to 10s", *ea.Timeout)
	}
	if len(ea.HeadersToExtAuth) > 0 && !slices.Contains(ea.HeadersToExtAuth, "cookie") {
		return fmt.Errorf("headersToExtAuth leaves out cookie: no session could ever be seen")
	}
	// The Service's namespace grants the policy's namespace the reference.
	if grant.Namespace != svc.Namespace || len(grant.Spec.From) != 1 || string(grant.Spec.From[0].Namespace) != pol.Namespace ||
		grant.Spec.From[0].Kind != "SecurityPolicy" || len(grant.Spec.To) != 1 || grant.Spec.To[0].Kind != "Service" ||
		grant.Spec.To[0].Name == nil || string(*grant.Spec.To[0].Name) != svc.Name {
		return fmt.Errorf("no ReferenceGrant in %s lets SecurityPolicies of %s refer to Service %s", svc.Namespace, pol.Namespace, svc.Name)
	}
	// Back-channel logout reaches the operations port, on the app's host.
	var logout *gwapiv1.HTTPRoute
	for _, r := range m.routes {
		if r != app {
			logout = r
		}
	}
	rule := logout.Spec.Rules[0]
	if len(rule.Matches) != 1 || rule.Matches[0].Path == nil || *rule.Matches[0].Path.Value != "/oauth2/backchannel_logout" ||
		len(rule.BackendRefs) != 1 || string(rule.BackendRefs[0].Name) != svc.Name || logout.Namespace != svc.Namespace ||
		rule.BackendRefs[0].Port == nil || int32(*rule.BackendRefs[0].Port) != servicePort(svc, "http") {
		return fmt.Errorf("the back-channel logout route must send /oauth2/backchannel_logout to %s's http port", svc.Name)
	}
	if !slices.Equal(logout.Spec.Hostnames, app.Spec.Hostnames) {
		return fmt.Errorf("back-channel logout hostnames %v differ from the app's %v", logout.Spec.Hostnames, app.Spec.Hostnames)
	}
	return nil
}

func servicePort(svc *corev1.Service, name string) int32 {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	return 0
}

func TestEnvoyGatewayManifestsDecodeStrictlyAndFitTogether(t *testing.T) {
	m, err := decodeGateway(readGateway(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.check(); err != nil {
		t.Fatal(err)
	}
}

func TestEnvoyGatewayManifestsRejectMistakes(t *testing.T) {
	for _, tc := range []struct{ file, old, new string }{
		{"gateway/security-policy.yaml", "extAuth:", "extAuthz:"},                  // unknown field
		{"gateway/security-policy.yaml", "failOpen: false", "failOpen: no thanks"}, // wrong type
		{"gateway/security-policy.yaml", "failOpen: false", "failOpen: true"},
		{"gateway/security-policy.yaml", "port: 9001", "port: 9002"},
		{"gateway/security-policy.yaml", "timeout: 6s", "timeout: 60s"},
		{"gateway/security-policy.yaml", "    name: my-app\n  extAuth", "    name: my-ap\n  extAuth"},
		{"gateway/security-policy.yaml", "    namespace: my-app\n  to:", "    namespace: other\n  to:"},
		{"gateway/httproute.yaml", "backendRefs:", "backendRef:"},
		{"gateway/httproute.yaml", "port: 4180", "port: 9001"},
		{"gateway/gateway.yaml", "gatewayClassName: envoy-gateway", "gatewayClassName: istio"},
		{"gateway/gateway.yaml", "port: 80", "port: eighty"},
	} {
		t.Run(tc.file+": "+tc.new, func(t *testing.T) {
			files := readGateway(t)
			bad := strings.Replace(string(files[tc.file]), tc.old, tc.new, 1)
			if bad == string(files[tc.file]) {
				t.Fatalf("test setup: %q not in %s", tc.old, tc.file)
			}
			files[tc.file] = []byte(bad)
			m, err := decodeGateway(files)
			if err == nil {
				err = m.check()
			}
			if err == nil {
				t.Errorf("a broken copy of %s passed", tc.file)
			}
		})
	}
}
