package integration_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// RFC 9728 protected-resource metadata and RFC 8707-style audiences per
// route, through the real Envoy: the default app (bearer tokens, the
// metadata of each URL), app1 (bearer tokens, one configured resource)
// and app2 (no bearer tokens: no metadata).

// aud* are the routes with an audience key: a ZITADEL project, an RFC 8707
// resource.
const (
	audProjectRoute  = "/aud-project/"
	audResourceRoute = "/aud-resource/"
	audResource      = "https://mcp.example.com/mcp"
	app1Resource     = "https://app1.example.com/mcp"
)

// resourceStack is the stack behind the real Envoy with the audience
// routes and three apps.
func resourceStack(t *testing.T) *stack {
	t.Helper()
	app1 := appEntry("app1", "app1.localhost")
	app1["resource_url"] = app1Resource
	app1["resource_name"] = "App one's MCP server"
	app1["resource_scopes_supported"] = []string{"openid", devidp.ProjectAudienceScope(devidp.ProjectID)}
	app2 := appEntry("app2", "app2.localhost")
	app2["skip_jwt_bearer_tokens"] = false
	return startStack(t, stackOptions{
		config: map[string]any{
			"skip_jwt_bearer_tokens": true,
			"extra_jwt_audiences":    []string{jwtClient.ID},
			"apps":                   []map[string]any{app1, app2},
		},
		clients: []devidp.Client{devidp.DefaultClient(), jwtClient, appClient("app1"), appClient("app2")},
		envoy: withRuleRoutes(t,
			ruleRoute{audProjectRoute, map[string]string{"audience": devidp.ProjectID}},
			ruleRoute{audResourceRoute, map[string]string{"audience": audResource}}),
		front: realEnvoy, // the emulator reads the shipped routes, not these
	})
}

// prm is an RFC 9728 §2 document.
type prm struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// fetchPRM gets the metadata at target through Envoy and checks what RFC
// 9728 asks of every document: JSON, resource an http(s) URL without a
// fragment, the issuer as the authorization server, header bearer tokens;
// and that it came from the Check, never the upstream.
func fetchPRM(t *testing.T, st *stack, target string) prm {
	t.Helper()
	before := upstreamRequests(t, st)
	r := newBrowser(t, "", "").do(http.MethodGet, target, http.Header{"Accept": {"application/json"}})
	var doc prm
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &doc) != nil {
		t.Fatalf("GET %s: %s, want 200 and RFC 9728 metadata", target, describe(r))
	}
	if ct, cc := r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"); ct != "application/json" || !strings.HasPrefix(cc, "public, max-age=") {
		t.Errorf("GET %s: content-type %q, cache-control %q", target, ct, cc)
	}
	if u, err := url.Parse(doc.Resource); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || strings.Contains(doc.Resource, "#") {
		t.Errorf("GET %s: resource %q is not an http(s) URL without fragment", target, doc.Resource)
	}
	if !slices.Equal(doc.AuthorizationServers, []string{st.IdP.Issuer}) {
		t.Errorf("GET %s: authorization_servers %q, want [%s]", target, doc.AuthorizationServers, st.IdP.Issuer)
	}
	if !slices.Equal(doc.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("GET %s: bearer_methods_supported %q, want [header]", target, doc.BearerMethodsSupported)
	}
	if n := upstreamRequests(t, st); n != before {
		t.Errorf("GET %s reached the upstream (%d requests), want the Check's own answer", target, n-before)
	}
	return doc
}

var resourceMetadataOf = regexp.MustCompile(`resource_metadata="([^"]+)"`)

// challenge is the resource_metadata of a 401's Bearer challenge, which
// must also keep error (when want is set).
func challenge(t *testing.T, what string, r *response, wantError string) string {
	t.Helper()
	h := r.Header.Get("Www-Authenticate")
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("%s: %s, want a 401 with a Bearer challenge", what, describe(r))
	}
	if wantError != "" && !strings.Contains(h, `error="`+wantError+`"`) {
		t.Errorf("%s: www-authenticate %q lacks error=%q", what, h, wantError)
	}
	m := resourceMetadataOf.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("%s: www-authenticate %q names no resource_metadata (RFC 9728 §5.1)", what, h)
	}
	return m[1]
}

func TestProtectedResourceMetadataThroughEnvoy(t *testing.T) {
	st := resourceStack(t)
	front := st.Front.URL
	host := strings.TrimPrefix(front, "http://")

	t.Run("default app: the origin and each path-suffixed form", func(t *testing.T) {
		root := fetchPRM(t, st, front+"/.well-known/oauth-protected-resource")
		want := prm{Resource: front, AuthorizationServers: []string{st.IdP.Issuer}, ScopesSupported: []string{"openid", "email", "profile", "offline_access"},
			BearerMethodsSupported: []string{"header"}, ResourceName: host}
		if !sameprm(root, want) {
			t.Errorf("root document %+v, want %+v", root, want)
		}
		for _, path := range []string{"/mcp", "/api/items"} {
			if doc := fetchPRM(t, st, front+"/.well-known/oauth-protected-resource"+path); doc.Resource != front+path {
				t.Errorf("…/oauth-protected-resource%s: resource %q, want %q (RFC 9728 §3.1)", path, doc.Resource, front+path)
			}
		}
	})

	t.Run("app1: its resource_* keys, at its resource's location only", func(t *testing.T) {
		doc := fetchPRM(t, st, st.appURL("app1")+"/.well-known/oauth-protected-resource/mcp")
		want := prm{Resource: app1Resource, AuthorizationServers: []string{st.IdP.Issuer}, BearerMethodsSupported: []string{"header"},
			ScopesSupported: []string{"openid", devidp.ProjectAudienceScope(devidp.ProjectID)}, ResourceName: "App one's MCP server"}
		if !sameprm(doc, want) {
			t.Errorf("app1's document %+v, want %+v", doc, want)
		}
		// Elsewhere it's a path like any other, whose 401 names the resource's document.
		r := newBrowser(t, "", "").do(http.MethodGet, st.appURL("app1")+"/.well-known/oauth-protected-resource", http.Header{"Accept": {"application/json"}})
		if got := challenge(t, "app1's root metadata path", r, ""); got != "https://app1.example.com/.well-known/oauth-protected-resource/mcp" {
			t.Errorf("app1's 401 names %q, want its resource's document", got)
		}
	})

	t.Run("app2 takes no bearer tokens: no metadata, no resource_metadata", func(t *testing.T) {
		r := newBrowser(t, "", "").do(http.MethodGet, st.appURL("app2")+"/.well-known/oauth-protected-resource", http.Header{"Accept": {"application/json"}})
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Www-Authenticate") != "Bearer" {
			t.Errorf("app2's metadata path: %s, want a plain 401 Bearer", describe(r))
		}
	})

	t.Run("every bearer 401 names the metadata of the URL asked for", func(t *testing.T) {
		alice := st.accessToken(t, jwtClient, "alice")
		anon := func(path string) *response {
			return newBrowser(t, "", "").do(http.MethodGet, front+path, http.Header{"Accept": {"application/json"}})
		}
		for _, tc := range []struct {
			what, path, err string
			send            func(path string) *response
		}{
			{"no_session", "/data", "", anon},
			{"no_bearer (auth: bearer-only)", "/api/items", "", anon},
			{"invalid_token", "/data", "invalid_token", func(p string) *response { return apiCall(t, st, p, "not-a-token-we-issued") }},
			{"insufficient_user_authentication (/admin/: required_amr)", "/admin/panel", "insufficient_user_authentication",
				func(p string) *response { return apiCall(t, st, p, alice) }},
			{"invalid_token: another audience", audProjectRoute + "x", "invalid_token", func(p string) *response { return apiCall(t, st, p, alice) }},
		} {
			meta := challenge(t, tc.what, tc.send(tc.path), tc.err)
			if want := front + "/.well-known/oauth-protected-resource" + tc.path; meta != want {
				t.Errorf("%s: resource_metadata %q, want %q", tc.what, meta, want)
			}
			// RFC 9728 §3.3: the document a challenge names is the
			// resource the client asked for.
			if doc := fetchPRM(t, st, meta); doc.Resource != front+tc.path {
				t.Errorf("%s: the named document's resource %q, want %q", tc.what, doc.Resource, front+tc.path)
			}
		}
	})
}

func sameprm(a, b prm) bool {
	return a.Resource == b.Resource && a.ResourceName == b.ResourceName && slices.Equal(a.AuthorizationServers, b.AuthorizationServers) &&
		slices.Equal(a.ScopesSupported, b.ScopesSupported) && slices.Equal(a.BearerMethodsSupported, b.BearerMethodsSupported)
}

// A route's audience takes only tokens that carry it in aud, JWTs and
// opaque (introspected) tokens alike; the same tokens pass elsewhere.
func TestRouteAudienceThroughEnvoy(t *testing.T) {
	st := resourceStack(t)
	for _, tc := range []struct {
		kind   string
		client devidp.Client
	}{{"opaque (introspection)", devidp.DefaultClient()}, {"JWT", jwtClient}} {
		t.Run(tc.kind, func(t *testing.T) {
			ctx := t.Context()
			plain := st.accessToken(t, tc.client, "bob")
			project, err := st.IdP.Tokens(ctx, tc.client, "bob", "bob-password", "openid", "email", "profile", devidp.ProjectAudienceScope(devidp.ProjectID))
			if err != nil {
				t.Fatal(err)
			}
			indicated, err := st.IdP.TokensForResource(ctx, tc.client, "bob", "bob-password", audResource)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				token, what           string
				onProject, onResource bool // allowed on the audience routes
			}{
				{plain, "a token for the client only", false, false},
				{project.AccessToken, "a token with the project's audience (ZITADEL's :aud scope)", true, false},
				{indicated.AccessToken, "a token for the resource (RFC 8707)", false, true},
			} {
				// Accepted where no route audience applies.
				if r := apiCall(t, st, "/api/items", c.token); r.StatusCode != http.StatusOK {
					t.Errorf("%s on /api/items: %s, want 200", c.what, describe(r))
				}
				for route, allowed := range map[string]bool{audProjectRoute: c.onProject, audResourceRoute: c.onResource} {
					r := apiCall(t, st, route+"x", c.token)
					if allowed {
						if r.StatusCode != http.StatusOK {
							t.Errorf("%s on %s: %s, want 200", c.what, route, describe(r))
						}
						continue
					}
					challenge(t, c.what+" on "+route, r, "invalid_token")
					want := map[string]string{audProjectRoute: devidp.ProjectID, audResourceRoute: audResource}[route]
					if h := r.Header.Get("Www-Authenticate"); !strings.Contains(h, `error_description="This route needs a token for the audience `+want+`"`) {
						t.Errorf("%s on %s: www-authenticate %q doesn't say which audience", c.what, route, h)
					}
				}
			}
		})
	}
}
