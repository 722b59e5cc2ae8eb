package envoy

import (
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	securityv1 "istio.io/api/security/v1"
)

// ourPaths are the paths Check answers itself, whatever the app: they
// must reach ext_authz on every virtual host (a route with ext_authz
// disabled would hand them to the upstream). The protected-resource
// metadata (RFC 9728) is a prefix: the path-suffixed form of a resource
// at /mcp is …/oauth-protected-resource/mcp.
var ourPaths = []string{
	"/oauth2/callback", "/oauth2/start", "/oauth2/sign_out", "/oauth2/userinfo", "/oauth2/jwks",
	"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
}

func TestOurEndpointsReachExtAuthzOnEveryVirtualHost(t *testing.T) {
	checkOurEndpoints(t, Config, func(format string, args ...any) { t.Errorf(format, args...) })
}

// The test above fails for a file that hands one of our paths to the
// upstream unchecked.
func TestOurEndpointsCheckCatchesADisabledRoute(t *testing.T) {
	const anchor = "              # Public assets: no login needed, ext_authz is not called.\n"
	if !strings.Contains(string(Config), anchor) {
		t.Fatal("test setup: envoy.yaml has no public assets route")
	}
	bad := strings.Replace(string(Config), anchor, `              - match: { prefix: "/.well-known/" }
                route: { cluster: echo }
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    disabled: true
`+anchor, 1)
	var failures []string
	checkOurEndpoints(t, []byte(bad), func(format string, args ...any) { failures = append(failures, format) })
	if len(failures) != 2 {
		t.Errorf("a route that disables ext_authz for /.well-known/: %d failures, want one per metadata path", len(failures))
	}
}

// checkOurEndpoints reports (fail) each of ourPaths that the first
// matching route of a virtual host sends past ext_authz, or that no route
// of it matches (no route: no Check).
func checkOurEndpoints(t *testing.T, cfg []byte, fail func(format string, args ...any)) {
	t.Helper()
	b, err := Decode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vhosts := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
					continue
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					vhosts++
					vhOff := disabled(t, vh.GetTypedPerFilterConfig())
					for _, p := range ourPaths {
						rt := firstMatch(t, vh.GetRoutes(), p)
						switch {
						case rt == nil:
							fail("virtual host %s: no route for %s (no route: no Check)", vh.GetName(), p)
						case rt.GetRoute().GetCluster() == "":
							fail("virtual host %s: %s is not routed to a cluster", vh.GetName(), p)
						case vhOff && !enabled(t, rt.GetTypedPerFilterConfig()), disabled(t, rt.GetTypedPerFilterConfig()):
							fail("virtual host %s: the route for %s disables ext_authz; Check answers it", vh.GetName(), p)
						}
					}
				}
			}
		}
	}
	if vhosts == 0 {
		t.Fatal("no virtual hosts in envoy.yaml")
	}
}

// firstMatch is the route Envoy picks for path: the first whose path,
// prefix or path_separated_prefix matches.
func firstMatch(t *testing.T, routes []*routev3.Route, path string) *routev3.Route {
	t.Helper()
	for _, rt := range routes {
		m := rt.GetMatch()
		switch m.GetPathSpecifier().(type) {
		case *routev3.RouteMatch_Path:
			if m.GetPath() == path {
				return rt
			}
		case *routev3.RouteMatch_Prefix:
			if strings.HasPrefix(path, m.GetPrefix()) {
				return rt
			}
		case *routev3.RouteMatch_PathSeparatedPrefix:
			if p := m.GetPathSeparatedPrefix(); path == p || strings.HasPrefix(path, p+"/") {
				return rt
			}
		default:
			t.Fatalf("route %s: a matcher this test doesn't read (%T); teach it", rt.GetName(), m.GetPathSpecifier())
		}
	}
	return nil
}

// disabled reports whether per-filter config turns ext_authz off.
func disabled(t *testing.T, cfg map[string]*anypb.Any) bool {
	per := extAuthzPerRoute(t, cfg)
	return per != nil && per.GetDisabled()
}

// enabled reports whether per-filter config sets ext_authz's check settings.
func enabled(t *testing.T, cfg map[string]*anypb.Any) bool {
	per := extAuthzPerRoute(t, cfg)
	return per != nil && !per.GetDisabled()
}

func extAuthzPerRoute(t *testing.T, cfg map[string]*anypb.Any) *extauthzv3.ExtAuthzPerRoute {
	t.Helper()
	c, ok := cfg["envoy.filters.http.ext_authz"]
	if !ok {
		return nil
	}
	per := &extauthzv3.ExtAuthzPerRoute{}
	if err := c.UnmarshalTo(per); err != nil {
		t.Fatal(err)
	}
	return per
}

// Istio's CUSTOM policies send our paths to the provider too: a rule that
// matches each of them (only requests matching a rule reach the Check).
func TestIstioSendsOurEndpointsToTheCheck(t *testing.T) {
	m, err := decodeManifests(readIstio(t))
	if err != nil {
		t.Fatal(err)
	}
	customs := 0
	for i, pol := range m.policies {
		if pol.GetAction() != securityv1.AuthorizationPolicy_CUSTOM {
			continue
		}
		customs++
		for _, p := range ourPaths {
			if !customCovers(pol, p) {
				t.Errorf("CUSTOM policy %s/%s: no rule sends %s to the Check", m.policyMeta[i].Namespace, m.policyMeta[i].Name, p)
			}
		}
	}
	if customs == 0 {
		t.Fatal("no CUSTOM AuthorizationPolicy in istio/")
	}
	// The check above fails for a rule that leaves /.well-known/ out.
	pol := &securityv1.AuthorizationPolicy{Rules: []*securityv1.Rule{{To: []*securityv1.Rule_To{{Operation: &securityv1.Operation{NotPaths: []string{"/.well-known/*"}}}}}}}
	if customCovers(pol, ourPaths[len(ourPaths)-1]) {
		t.Error("customCovers: notPaths /.well-known/* covers the metadata path")
	}
}

// customCovers reports whether a rule of pol matches a request for path
// (rules that only name hosts or methods match every path).
func customCovers(pol *securityv1.AuthorizationPolicy, path string) bool {
	for _, r := range pol.GetRules() {
		if len(r.GetTo()) == 0 {
			return true
		}
		for _, to := range r.GetTo() {
			op := to.GetOperation()
			in := len(op.GetPaths()) == 0 || slices.ContainsFunc(op.GetPaths(), func(p string) bool { return istioPath(p, path) })
			out := slices.ContainsFunc(op.GetNotPaths(), func(p string) bool { return istioPath(p, path) })
			if in && !out {
				return true
			}
		}
	}
	return false
}

// istioPath is Istio's path match: exact, "prefix*", "*suffix" or "*".
func istioPath(pattern, path string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == path
}
