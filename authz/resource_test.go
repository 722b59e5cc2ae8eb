package authz

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

const testIssuer = "https://issuer.example.com"

// resourceServer is a test server whose app takes bearer tokens (b) and
// has the protected resource pr.
func resourceServer(t *testing.T, pr ProtectedResource, b BearerAuth, opts ...Option) *Server {
	t.Helper()
	s, _ := newTestServer(t, Config{ProtectedResource: pr}, &stubIdP{}, nil)
	s.bearerAuth = b
	for _, o := range opts {
		o(s)
	}
	return s
}

// deniedHeader is the value of header name in a denied answer ("" when
// there is none).
func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// decideAndCheck is the reason Decide gives req, and Check's answer to it.
func decideAndCheck(t *testing.T, s *Server, req *authv3.CheckRequest) (Reason, *authv3.CheckResponse) {
	t.Helper()
	r, err := ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Decide(t.Context(), r)
	resp, err := s.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason, resp
}

func TestResourceMetadataDocument(t *testing.T) {
	bearer := stubBearer{b: &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "user-alice"}}}
	defaults := ProtectedResource{AuthorizationServers: []string{testIssuer}, ScopesSupported: []string{"email", "profile", "offline_access"}}
	perApp := ProtectedResource{URL: "https://api.example.com/mcp/", AuthorizationServers: []string{testIssuer, "https://other.example.com"},
		ScopesSupported: []string{"urn:zitadel:iam:org:project:id:zitadel:aud"}, Name: "Shop MCP", Documentation: "https://docs.example.com/mcp"}
	for _, tc := range []struct {
		name, method, scheme, path string
		pr                         ProtectedResource
		opts                       []Option
		want                       *resourceDocument // nil: not served, Check goes on
	}{
		{name: "well-known path: the request's origin", path: "/.well-known/oauth-protected-resource", pr: defaults,
			want: &resourceDocument{Resource: "https://app.example.com", AuthorizationServers: []string{testIssuer},
				ScopesSupported: []string{"email", "profile", "offline_access"}, BearerMethodsSupported: []string{"header"}, ResourceName: "app.example.com"}},
		{name: "path-suffixed form (RFC 9728 §3.1)", path: "/.well-known/oauth-protected-resource/mcp", pr: defaults,
			want: &resourceDocument{Resource: "https://app.example.com/mcp", AuthorizationServers: []string{testIssuer},
				ScopesSupported: []string{"email", "profile", "offline_access"}, BearerMethodsSupported: []string{"header"}, ResourceName: "app.example.com"}},
		{name: "a deeper suffix over http, HEAD, an app's name", method: http.MethodHead, scheme: "http", path: "/.well-known/oauth-protected-resource/mcp/v1",
			pr: ProtectedResource{AuthorizationServers: []string{testIssuer}}, opts: []Option{WithApp("shop")},
			want: &resourceDocument{Resource: "http://app.example.com/mcp/v1", AuthorizationServers: []string{testIssuer},
				BearerMethodsSupported: []string{"header"}, ResourceName: "shop"}},
		{name: "per-app keys at the configured resource's location", path: "/.well-known/oauth-protected-resource/mcp", pr: perApp,
			want: &resourceDocument{Resource: "https://api.example.com/mcp/", AuthorizationServers: []string{testIssuer, "https://other.example.com"},
				ScopesSupported: []string{"urn:zitadel:iam:org:project:id:zitadel:aud"}, BearerMethodsSupported: []string{"header"},
				ResourceName: "Shop MCP", ResourceDocumentation: "https://docs.example.com/mcp"}},
		{name: "per-app resource: not at another location", path: "/.well-known/oauth-protected-resource", pr: perApp},
		{name: "per-app resource: nor at another suffix", path: "/.well-known/oauth-protected-resource/other", pr: perApp},
		{name: "a trailing slash is no form of it", path: "/.well-known/oauth-protected-resource/", pr: defaults},
		{name: "a longer name is another path", path: "/.well-known/oauth-protected-resources", pr: defaults},
		{name: "POST", method: http.MethodPost, path: "/.well-known/oauth-protected-resource", pr: defaults},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := resourceServer(t, tc.pr, bearer, tc.opts...)
			req := envoyRequest(cmpOr(tc.method, http.MethodGet), tc.path, map[string]string{"accept": "application/json"})
			if tc.scheme != "" {
				req.Attributes.Request.Http.Scheme = tc.scheme
			}
			reason, resp := decideAndCheck(t, s, req)
			if tc.want == nil {
				if reason == ReasonResourceMeta {
					t.Fatalf("Check(%s %s): served the document, want it checked like any path", req.Attributes.Request.Http.Method, tc.path)
				}
				return
			}
			denied := resp.GetDeniedResponse()
			if reason != ReasonResourceMeta || denied.GetStatus().GetCode() != http.StatusOK {
				t.Fatalf("Check(%s): reason %s, status %d, want the document", tc.path, reason, denied.GetStatus().GetCode())
			}
			for name, want := range map[string]string{"content-type": "application/json", "cache-control": "public, max-age=3600", "access-control-allow-origin": "*"} {
				if got := deniedHeader(resp, name); got != want {
					t.Errorf("Check(%s): %s %q, want %q", tc.path, name, got, want)
				}
			}
			var got resourceDocument
			dec := json.NewDecoder(strings.NewReader(denied.GetBody()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("Check(%s): body %q: %v", tc.path, denied.GetBody(), err)
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("Check(%s): document (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// An app without bearer tokens has no document: the path is checked like
// any other, and check-policy doesn't call it ours.
func TestNoResourceMetadataWithoutBearerTokens(t *testing.T) {
	s := resourceServer(t, ProtectedResource{AuthorizationServers: []string{testIssuer}}, nil)
	reason, resp := decideAndCheck(t, s, envoyRequest("GET", ResourceMetadataPath, map[string]string{"accept": "application/json"}))
	if reason != ReasonNoSession || resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusUnauthorized {
		t.Fatalf("Check(%s) without bearer tokens: %s, want a 401 no_session", ResourceMetadataPath, reason)
	}
	if got := deniedHeader(resp, "www-authenticate"); got != "Bearer" {
		t.Errorf("www-authenticate %q without bearer tokens, want a plain Bearer", got)
	}
	get := func(method string) *Request {
		r, err := ParseRequest(envoyRequest(method, ResourceMetadataPath+"/mcp", nil))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := s.Endpoint(get("GET")); got != "" {
		t.Errorf("Endpoint(%s/mcp) without bearer tokens: %q, want none", ResourceMetadataPath, got)
	}
	s.bearerAuth = stubBearer{}
	if got := s.Endpoint(get("GET")); got != "the protected-resource metadata (RFC 9728)" {
		t.Errorf("Endpoint(%s/mcp) with bearer tokens: %q", ResourceMetadataPath, got)
	}
	// A POST there isn't the document: Check judges it like any path.
	if got := s.Endpoint(get("POST")); got != "" {
		t.Errorf("Endpoint(POST %s/mcp): %q, want none", ResourceMetadataPath, got)
	}
}

// Every 401 of an app that takes bearer tokens names the document
// (RFC 9728 §5.1), beside the error fields it had, whatever the reason.
func TestEvery401NamesTheResourceMetadata(t *testing.T) {
	// The document of the URL the client asked for (RFC 9728 §3.3).
	const origin = `resource_metadata="https://app.example.com/.well-known/oauth-protected-resource/x"`
	noAuthTime := &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "user-alice"}, Audiences: []string{"client"}, Via: "jwt"}
	api := map[string]string{"accept": "application/json"}
	withToken := map[string]string{"accept": "application/json", "authorization": "Bearer t"}
	for _, tc := range []struct {
		name   string
		pr     ProtectedResource
		bearer BearerAuth
		path   string
		header map[string]string
		ext    map[string]string
		reason Reason
		want   string // the www-authenticate value
	}{
		{"no_session", ProtectedResource{}, stubBearer{b: noAuthTime}, "/x", api, nil, ReasonNoSession, "Bearer " + origin},
		{"no_bearer", ProtectedResource{}, stubBearer{b: noAuthTime}, "/x", api, map[string]string{"auth": "bearer-only"}, ReasonNoBearer, "Bearer " + origin},
		{"invalid_token", ProtectedResource{}, stubBearer{err: oidcflow.ErrInvalidToken}, "/x", withToken, nil, ReasonInvalidToken,
			`Bearer error="invalid_token", ` + origin},
		{"insufficient_user_authentication", ProtectedResource{}, stubBearer{b: noAuthTime}, "/x", withToken, map[string]string{"max_age": "60"}, ReasonInsufficientAuthn,
			`Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="60", ` + origin},
		{"a token for another audience", ProtectedResource{}, stubBearer{b: noAuthTime}, "/x", withToken, map[string]string{"audience": "api"}, ReasonInvalidToken,
			`Bearer error="invalid_token", error_description="This route needs a token for the audience api", ` + origin},
		{"userinfo without a session", ProtectedResource{}, stubBearer{b: noAuthTime}, "/oauth2/userinfo", api, nil, ReasonNoSession,
			`Bearer resource_metadata="https://app.example.com/.well-known/oauth-protected-resource/oauth2/userinfo"`},
		{"the root: the origin's document", ProtectedResource{}, stubBearer{b: noAuthTime}, "/", api, nil, ReasonNoSession,
			`Bearer resource_metadata="https://app.example.com/.well-known/oauth-protected-resource"`},
		{"a terminating slash is dropped (§3.1)", ProtectedResource{}, stubBearer{b: noAuthTime}, "/mcp/", api, nil, ReasonNoSession,
			`Bearer resource_metadata="https://app.example.com/.well-known/oauth-protected-resource/mcp"`},
		{"a path that can't be quoted: the origin's document", ProtectedResource{}, stubBearer{b: noAuthTime}, `/a"b`, api, nil, ReasonNoSession,
			`Bearer resource_metadata="https://app.example.com/.well-known/oauth-protected-resource"`},
		{"resource_url: its location", ProtectedResource{URL: "https://api.example.com/mcp"}, stubBearer{b: noAuthTime}, "/x", api, nil, ReasonNoSession,
			`Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"`},
		{"a route that refuses bearer tokens", ProtectedResource{}, stubBearer{b: noAuthTime}, "/x", api, map[string]string{"auth": "session-only"}, ReasonNoSession, "Bearer"},
		{"an app without bearer tokens", ProtectedResource{}, nil, "/x", api, nil, ReasonNoSession, "Bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := resourceServer(t, tc.pr, tc.bearer)
			req := envoyRequest("GET", tc.path, tc.header)
			req.Attributes.ContextExtensions = tc.ext
			reason, resp := decideAndCheck(t, s, req)
			if reason != tc.reason || resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusUnauthorized {
				t.Fatalf("Check(%s): %s %d, want a 401 %s", tc.name, reason, resp.GetDeniedResponse().GetStatus().GetCode(), tc.reason)
			}
			if got := deniedHeader(resp, "www-authenticate"); got != tc.want {
				t.Errorf("Check(%s): www-authenticate\n got %s\nwant %s", tc.name, got, tc.want)
			}
		})
	}
	// A host that can't stand in a quoted parameter is not reflected.
	s := resourceServer(t, ProtectedResource{}, stubBearer{})
	req := envoyRequest("GET", "/x", api)
	req.Attributes.Request.Http.Host = `app.example.com",x="y`
	if _, resp := decideAndCheck(t, s, req); deniedHeader(resp, "www-authenticate") != "Bearer" {
		t.Errorf("a host with a quote: www-authenticate %q, want a plain Bearer", deniedHeader(resp, "www-authenticate"))
	}
}

// A route's audience: a token must carry it in aud, from a JWT or an
// introspection answer alike; ZITADEL project ids and RFC 8707 resource
// URLs are plain values of aud.
func TestRouteAudience(t *testing.T) {
	const project, resource = "290675836227035459", "https://mcp.example.com/mcp"
	for _, via := range []string{"jwt", "introspection"} {
		for _, tc := range []struct {
			name      string
			audiences []string
			audience  string // the route's
			allow     bool
		}{
			{"no audience key: any of ours", []string{"client"}, "", true},
			{"the project id", []string{"client", project}, project, true},
			{"another project's token", []string{"client", "other-project"}, project, false},
			{"the RFC 8707 resource", []string{"client", resource}, resource, true},
			{"a resource with a trailing slash is another", []string{"client", resource + "/"}, resource, false},
			{"no aud at all", nil, project, false},
		} {
			t.Run(via+"/"+tc.name, func(t *testing.T) {
				b := &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "user-alice"}, Audiences: tc.audiences, Via: via}
				s := resourceServer(t, ProtectedResource{}, stubBearer{b: b})
				req := envoyRequest("GET", "/api/x", map[string]string{"authorization": "Bearer t", "accept": "application/json"})
				if tc.audience != "" {
					req.Attributes.ContextExtensions = map[string]string{"audience": tc.audience}
				}
				reason, resp := decideAndCheck(t, s, req)
				allowed := resp.GetStatus().GetCode() == 0
				if allowed != tc.allow {
					t.Fatalf("Check(aud %q, route audience %q): allowed %v (%s), want %v", tc.audiences, tc.audience, allowed, reason, tc.allow)
				}
				if allowed {
					return
				}
				want := `Bearer error="invalid_token", error_description="This route needs a token for the audience ` + tc.audience +
					`", resource_metadata="https://app.example.com/.well-known/oauth-protected-resource/api/x"`
				if reason != ReasonInvalidToken || resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusUnauthorized || deniedHeader(resp, "www-authenticate") != want {
					t.Errorf("Check(aud %q, route audience %q): %s %d %q, want 401 %s", tc.audiences, tc.audience, reason,
						resp.GetDeniedResponse().GetStatus().GetCode(), deniedHeader(resp, "www-authenticate"), want)
				}
			})
		}
	}
	// An audience that can't stand in error_description isn't repeated.
	if got := wrongAudience(`a"b`).Headers[0].Value; got != `Bearer error="invalid_token", error_description="This route needs a token for another audience"` {
		t.Errorf("wrongAudience with a quote: %s", got)
	}
}

func TestResourceURLIsChecked(t *testing.T) {
	for _, bad := range []string{"/mcp", "ftp://app.example.com/mcp", "https://app.example.com/mcp?x=1", "https://app.example.com/mcp#top",
		"https://user@app.example.com/mcp", "https:///mcp", "https://app.example.com/mcp?"} {
		if _, err := New(Config{ProtectedResource: ProtectedResource{URL: bad}}, &stubIdP{}, nil); err == nil || !strings.Contains(err.Error(), "resource_url") {
			t.Errorf("New with resource_url %q: %v, want an error naming resource_url", bad, err)
		}
	}
	for url, want := range map[string]string{
		"https://app.example.com":          "https://app.example.com/.well-known/oauth-protected-resource",
		"https://app.example.com/":         "https://app.example.com/.well-known/oauth-protected-resource",
		"http://app.example.com:8000/a/b/": "http://app.example.com:8000/.well-known/oauth-protected-resource/a/b",
	} {
		s, err := New(Config{ProtectedResource: ProtectedResource{URL: url}}, &stubIdP{}, nil)
		if err != nil {
			t.Fatalf("New with resource_url %q: %v", url, err)
		}
		if got := s.conf().resourceMetaURL; got != want {
			t.Errorf("resource_url %q: document at %q, want %q (RFC 9728 §3.1)", url, got, want)
		}
	}
}

// The document a 401 names is the resource the client asked for: its
// resource is the request's URL (RFC 9728 §3.3), and with resource_url
// the configured resource.
func TestChallengeLeadsToTheRequestedResource(t *testing.T) {
	for _, tc := range []struct {
		pr         ProtectedResource
		path, want string
	}{
		{ProtectedResource{}, "/mcp", "https://app.example.com/mcp"},
		{ProtectedResource{}, "/api/items/42", "https://app.example.com/api/items/42"},
		{ProtectedResource{}, "/", "https://app.example.com"},
		{ProtectedResource{URL: "https://app.example.com/mcp"}, "/mcp/tools", "https://app.example.com/mcp"},
	} {
		s := resourceServer(t, tc.pr, stubBearer{})
		_, resp := decideAndCheck(t, s, envoyRequest("POST", tc.path, map[string]string{"accept": "application/json"}))
		m := strings.SplitN(deniedHeader(resp, "www-authenticate"), `resource_metadata="`, 2)
		if len(m) != 2 {
			t.Fatalf("POST %s: www-authenticate %q names no resource_metadata", tc.path, deniedHeader(resp, "www-authenticate"))
		}
		meta, err := url.Parse(strings.TrimSuffix(m[1], `"`))
		if err != nil || meta.Scheme+"://"+meta.Host != "https://app.example.com" {
			t.Fatalf("POST %s: resource_metadata %q is not on the app's origin", tc.path, m[1])
		}
		_, resp = decideAndCheck(t, s, envoyRequest("GET", meta.EscapedPath(), map[string]string{"accept": "application/json"}))
		var doc resourceDocument
		if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &doc); err != nil || doc.Resource != tc.want {
			t.Errorf("POST %s → GET %s: resource %q (%v), want %q", tc.path, meta.EscapedPath(), doc.Resource, err, tc.want)
		}
	}
}
