package authz

//lint:file-ignore SA1019 Envoy's ext_authz reads the deprecated HeaderValueOption.append (envoy-ext-authz.md §2.1), so we emulate and test that field.

import (
	"context"
	"errors"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// stubIdP is a second IdP implementation for decision tests; the real one
// is exercised end to end in integration/.
type stubIdP struct {
	exchange func(ctx context.Context, code string) (*oidcflow.Tokens, error)
	refresh  func(ctx context.Context, rt string) (*oidcflow.Tokens, error)
	// tokenExchange answers ExchangeToken (upstreamtoken_test.go).
	tokenExchange func(ctx context.Context, subjectToken, audience string) (*oidcflow.ExchangedToken, error)
	revoked       []string
	panicky       bool
}

func (s *stubIdP) ExchangeToken(ctx context.Context, subjectToken, audience string) (*oidcflow.ExchangedToken, error) {
	if s.tokenExchange != nil {
		return s.tokenExchange(ctx, subjectToken, audience)
	}
	return nil, oidcflow.ErrRejected
}

func (s *stubIdP) Refresh(ctx context.Context, rt string) (*oidcflow.Tokens, error) {
	if s.refresh != nil {
		return s.refresh(ctx, rt)
	}
	return nil, oidcflow.ErrRejected
}

func (s *stubIdP) BackendLogout(context.Context, string) error { return nil }

func (s *stubIdP) Revoke(_ context.Context, token, _ string) error {
	s.revoked = append(s.revoked, token)
	return nil
}

func (s *stubIdP) CheckResponseIssuer(string, bool) error { return nil }

func (s *stubIdP) NewLogin() (oidcflow.Login, error) {
	if s.panicky {
		panic("boom")
	}
	return oidcflow.Login{State: strings.Repeat("s", 43), Nonce: strings.Repeat("n", 43), CodeVerifier: strings.Repeat("v", 43)}, nil
}

func (s *stubIdP) AuthURL(l oidcflow.Login, redirectURI string, _ url.Values) (string, error) {
	return "https://idp.example/authorize?state=" + l.State + "&redirect_uri=" + url.QueryEscape(redirectURI), nil
}

func (s *stubIdP) Exchange(ctx context.Context, code, _ string, _ oidcflow.Login) (*oidcflow.Tokens, error) {
	if s.exchange != nil {
		return s.exchange(ctx, code)
	}
	return nil, oidcflow.ErrRejected
}

func (s *stubIdP) EndSessionURL(hint, post, _ string) (string, error) {
	return "https://idp.example/end_session?id_token_hint=" + hint + "&post_logout_redirect_uri=" + url.QueryEscape(post), nil
}

const secret = "0123456789!bcdef0123456789!bcdef"

func newTestServer(t testing.TB, cfg Config, idp IdP, cache session.Cache) (*Server, *session.Jar) {
	t.Helper()
	codec, err := session.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	opts := []session.JarOption{session.WithClock(func() time.Time { return t0 })}
	if cache != nil {
		opts = append(opts, session.WithCache(cache))
	}
	jar := session.NewJar(codec, session.Options{}, opts...)
	if cfg.EmailDomains == nil {
		cfg.EmailDomains = []string{"*"}
	}
	cfg.PassUserHeaders = true
	s, err := New(cfg, idp, jar, WithClock(func() time.Time { return t0 }), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return s, jar
}

// envoyRequest builds a CheckRequest as Envoy does (envoy-ext-authz.md §1).
func envoyRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "app.example.com", ":method": method, ":path": path, ":scheme": "https",
		"x-request-id": "c0ffee", "x-forwarded-proto": "https",
	}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Id: "1", Method: method, Path: path, Host: "app.example.com", Scheme: "https", Headers: h, Protocol: "HTTP/1.1",
	}}}}
}

func sessionCookie(t testing.TB, jar *session.Jar, s *sessionpb.Session) string {
	t.Helper()
	cookies, err := jar.Save(t.Context(), s, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range cookies {
		parsed, _ := http.ParseSetCookie(c)
		parts = append(parts, parsed.Name+"="+parsed.Value)
	}
	return strings.Join(parts, "; ")
}

func alice() *sessionpb.Session {
	return &sessionpb.Session{
		Subject: "user-alice", User: "user-alice", Email: "alice@example.com", EmailVerified: true,
		PreferredUsername: "alice", Groups: []string{"admin", "reader"},
		AccessToken: "at", IdToken: "idt", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), AccessTokenExpiresAt: t0.Add(time.Hour).Unix(),
	}
}

func TestBadInputIsDeniedNeverAnError(t *testing.T) {
	s, _ := newTestServer(t, Config{SkipProviderButton: true}, &stubIdP{}, nil)
	cases := map[string]*authv3.CheckRequest{
		"nil request":       nil,
		"no attributes":     {},
		"no http":           {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}},
		"no path":           envoyRequest("GET", "", map[string]string{":path": ""}),
		"relative path":     envoyRequest("GET", "admin", map[string]string{":path": "admin"}),
		"no host":           {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/"}}}},
		"huge cookie":       envoyRequest("GET", "/", map[string]string{"cookie": "_oauth2_proxy=" + strings.Repeat("A", 200<<10)}),
		"garbage cookie":    envoyRequest("GET", "/", map[string]string{"cookie": ";;==;_oauth2_proxy_0=\x00\xff;_oauth2_proxy_1"}),
		"callback no state": envoyRequest("GET", "/oauth2/callback?code=x", nil),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := s.Check(t.Context(), req)
			if err != nil {
				t.Fatalf("Check(%s): got gRPC error %v, want a Denied answer", name, err)
			}
			if resp.GetStatus().GetCode() == 0 {
				t.Fatalf("Check(%s): allowed", name)
			}
			if sc := resp.GetDeniedResponse().GetHeaders(); hasSessionCookie(sc) {
				t.Fatalf("Check(%s): set a session cookie", name)
			}
		})
	}
}

func hasSessionCookie(h []*corev3.HeaderValueOption) bool {
	for _, o := range h {
		if o.GetHeader().GetKey() == "set-cookie" && strings.HasPrefix(o.GetHeader().GetValue(), "_oauth2_proxy=") && !strings.Contains(o.GetHeader().GetValue(), "Max-Age=0") {
			return true
		}
	}
	return false
}

func TestPanicIsDenied500(t *testing.T) {
	s, _ := newTestServer(t, Config{SkipProviderButton: true}, &stubIdP{panicky: true}, nil)
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"accept": "text/html"}))
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 500 {
		t.Fatalf("Check with a panicking IdP: got %v, %v; want Denied 500", resp, err)
	}
}

// The full allow response, field by field: explicit append=false upstream,
// client identity headers removed, our cookies stripped (CONTRACT.md §3).
func TestAllowResponseEncoding(t *testing.T) {
	s, jar := newTestServer(t, Config{PassAccessToken: true}, &stubIdP{}, nil)
	cookie := sessionCookie(t, jar, alice()) + "; theme=dark"
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{
		"cookie": cookie, "x-auth-request-user": "evil", "x-forwarded-user": "evil", "authorization": "Basic abc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	// What Envoy gets: the encoded answer (the dynamic metadata rides
	// pre-encoded, see setMetadata).
	wire, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	resp = &authv3.CheckResponse{}
	if err := proto.Unmarshal(wire, resp); err != nil {
		t.Fatal(err)
	}
	set := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(false)}
	}
	want := &authv3.CheckResponse{
		Status: &status.Status{Code: 0},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				// First, so Envoy's header limit holds while it applies the
				// sets (see stripOurCookies).
				set("cookie", "theme=dark"),
				set("x-forwarded-user", "user-alice"),
				set("x-forwarded-email", "alice@example.com"),
				set("x-forwarded-groups", "admin,reader"),
				set("x-forwarded-preferred-username", "alice"),
				set("x-forwarded-access-token", "at"),
			},
			HeadersToRemove: []string{"x-auth-request-user"},
		}},
		// For Envoy's RBAC filter and access log (envoy.filters.http.ext_authz).
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"sub": structpb.NewStringValue("user-alice"), "email": structpb.NewStringValue("alice@example.com"),
			"groups": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("admin"), structpb.NewStringValue("reader")}}),
			"reason": structpb.NewStringValue("session"), "app": structpb.NewStringValue(""),
		}},
	}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Fatalf("Check(valid session): response mismatch (-want +got):\n%s", diff)
	}
}

func TestDeniedResponseEncoding(t *testing.T) {
	d := redirect("https://idp.example/authorize", "login_redirect", []string{"a=1", "b=2"})
	resp := d.Response()
	want := &authv3.CheckResponse{
		Status: &status.Status{Code: 7},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Found},
			Headers: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "location", Value: "https://idp.example/authorize"}},
				{Header: &corev3.HeaderValue{Key: "cache-control", Value: "no-store"}},
				{Header: &corev3.HeaderValue{Key: "referrer-policy", Value: "no-referrer"}},
				{Header: &corev3.HeaderValue{Key: "set-cookie", Value: "a=1"}},
				{Header: &corev3.HeaderValue{Key: "set-cookie", Value: "b=2"}},
			},
		}},
	}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Fatalf("redirect: (-want +got):\n%s", diff)
	}
	if got := (&Decision{Status: 401}).Response().GetStatus().GetCode(); got != 16 {
		t.Fatalf("401: gRPC code %d, want 16 (UNAUTHENTICATED)", got)
	}
}

func TestCallbackMapsIdPErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"rejected code", oidcflow.ErrRejected, 403},
		{"invalid token", oidcflow.ErrInvalidToken, 403},
		{"unreachable", oidcflow.ErrIdPUnavailable, 503},
		{"timeout", errors.Join(oidcflow.ErrIdPUnavailable, context.DeadlineExceeded), 504},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idp := &stubIdP{exchange: func(context.Context, string) (*oidcflow.Tokens, error) { return nil, tc.err }}
			s, _ := newTestServer(t, Config{SkipProviderButton: true}, idp, nil)
			start, _ := s.Check(t.Context(), envoyRequest("GET", "/page", map[string]string{"accept": "text/html"}))
			var stateCookie string
			for _, h := range start.GetDeniedResponse().GetHeaders() {
				if h.GetHeader().GetKey() == "set-cookie" {
					c, _ := http.ParseSetCookie(h.GetHeader().GetValue())
					stateCookie = c.Name + "=" + c.Value
				}
			}
			resp, err := s.Check(t.Context(), envoyRequest("GET", "/oauth2/callback?code=c&state="+strings.Repeat("s", 43), map[string]string{"cookie": stateCookie}))
			if err != nil || int(resp.GetDeniedResponse().GetStatus().GetCode()) != tc.want || hasSessionCookie(resp.GetDeniedResponse().GetHeaders()) {
				t.Fatalf("callback with %s: got %v %v, want Denied %d without a session", tc.name, resp.GetDeniedResponse().GetStatus(), err, tc.want)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	s, _ := newTestServer(t, Config{
		EmailDomains:     []string{"example.com", ".corp.example"},
		AllowedGroups:    []string{"admin"},
		WhitelistDomains: []string{"docs.example.org", ".apps.example.net:*", "api.example.io:8443", "*.wild.example"},
		APIRoutes:        []*regexp.Regexp{regexp.MustCompile("^/api/")},
	}, &stubIdP{}, nil)
	r := &Request{Scheme: "https", Host: "app.example.com", Method: "GET", Headers: map[string]string{}}

	for _, tc := range []struct {
		email    string
		verified bool
		groups   []string
		want     Reason
	}{
		{"a@example.com", true, []string{"admin"}, ""},
		{"a@EXAMPLE.com", true, []string{"admin"}, ""},
		{"a@sub.example.com", true, []string{"admin"}, ReasonEmailDomain},
		{"a@corp.example", true, []string{"admin"}, ""},
		{"a@x.corp.example", true, []string{"admin"}, ""},
		{"a@evilcorp.example", true, []string{"admin"}, ReasonEmailDomain},
		{"a@example.com", false, []string{"admin"}, ReasonEmailUnverified},
		{"a@example.com", true, []string{"reader"}, ReasonNotInGroup},
		{"no-at-sign", true, []string{"admin"}, ReasonEmailDomain},
		// More than one '@' is no address of any domain (oauth2-proxy
		// GHSA-c5c4-8r6x-56w3): the part after the last '@' must not count.
		{"mallory@evil.example@corp.example", true, []string{"admin"}, ReasonEmailDomain},
		{"mallory@@corp.example", true, []string{"admin"}, ReasonEmailDomain},
		{"@corp.example", true, []string{"admin"}, ReasonEmailDomain},
		{"a@corp.example.", true, []string{"admin"}, ReasonEmailDomain},
		{"a@.corp.example", true, []string{"admin"}, ReasonEmailDomain},
	} {
		if got := s.authorize(user{email: tc.email, emailVerified: tc.verified, groups: tc.groups}); got != tc.want {
			t.Errorf("authorize(%s, verified=%v, %v): got %q, want %q", tc.email, tc.verified, tc.groups, got, tc.want)
		}
	}

	for _, tc := range []struct {
		rd   string
		want string
	}{
		{"/x?y=1", "https://app.example.com/x?y=1"},
		{"https://app.example.com/z", "https://app.example.com/z"},
		{"https://docs.example.org/a", "https://docs.example.org/a"},
		{"https://docs.example.org:444/a", ""},
		{"https://a.apps.example.net:9000/", "https://a.apps.example.net:9000/"},
		{"https://api.example.io:8443/", "https://api.example.io:8443/"},
		{"https://api.example.io/", ""},
		// oauth2-proxy's "*.example.com": subdomains, not the domain itself.
		{"https://a.wild.example/x", "https://a.wild.example/x"},
		{"https://b.a.wild.example/", "https://b.a.wild.example/"},
		{"https://wild.example/", ""},
		{"https://evilwild.example/", ""},
		{"//evil.example", ""},
		{"/\\evil.example", ""},
		{"https://evil.example", ""},
		{"https://app.example.com@evil.example/", ""},
		{"javascript:alert(1)", ""},
		{"/ok\r\nset-cookie: x", ""},
		{"", ""},
	} {
		got, ok := s.returnURL(r, tc.rd)
		if (tc.want == "") == ok || got != tc.want {
			t.Errorf("returnURL(%q): got %q %v, want %q", tc.rd, got, ok, tc.want)
		}
	}

	for _, tc := range []struct {
		method string
		path   string
		hdr    map[string]string
		want   bool
	}{
		{"GET", "/", map[string]string{"accept": "text/html,application/xhtml+xml"}, false},
		{"HEAD", "/", map[string]string{"accept": "text/html"}, false},
		{"GET", "/", map[string]string{"accept": "application/json"}, true},
		{"GET", "/", map[string]string{"accept": "*/*"}, true},
		{"GET", "/", map[string]string{"accept": "text/html", "x-requested-with": "XMLHttpRequest"}, true},
		{"POST", "/", map[string]string{"accept": "text/html"}, true},
		{"GET", "/api/v1", map[string]string{"accept": "text/html"}, true},
	} {
		r := &Request{Method: tc.method, Path: tc.path, Headers: tc.hdr}
		if got := s.isAPI(r); got != tc.want {
			t.Errorf("isAPI(%s %s %v): got %v, want %v", tc.method, tc.path, tc.hdr, got, tc.want)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/assets/app.css": true, "/a/b/": true,
		"/assets/../admin": false, "/assets/./x": false, "/assets//x": false,
		"/assets/%2e%2e/admin": false, "/assets/%2F/x": false, "/a\\b": false,
		"/a/..b": true, "/a/.well-known": true, "/a/%2E%2E/b": false, "/..": false, "/a/.": false,
		"/public/..;/admin": false, "/public/..;x=1/admin": false, "/public/.;x/admin": false, "/a/b;x=1": true, "/foo/secret#/x/bar": false,
	} {
		if got := canonicalPath(p); got != want {
			t.Errorf("canonicalPath(%q): got %v, want %v", p, got, want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	req := envoyRequest("GET", "/p/a?x=1&y=2", map[string]string{"cookie": `a=1; b="2",c=3; a=dup`})
	r, err := ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != "/p/a" || r.RawQuery != "x=1&y=2" || r.Host != "app.example.com" || r.Scheme != "https" || r.ID != "c0ffee" {
		t.Fatalf("ParseRequest: %+v", r)
	}
	got := map[string]string{}
	for _, c := range r.Cookies.AppendAll(nil) {
		got[c.Name] = c.Value
	}
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "2", "c": "3"}, got); diff != "" {
		t.Fatalf("cookies (-want +got):\n%s", diff)
	}
	if v, ok := r.Cookies.Get("a"); !ok || v != "1" {
		t.Fatalf(`Get("a") = %q, %v; want the first value`, v, ok)
	}
	if _, ok := r.Cookies.Get("zz"); ok {
		t.Fatal("a missing cookie found")
	}
	// encode_raw_headers: header_map instead of headers, duplicates merged.
	raw := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":authority", RawValue: []byte("h.example")}, {Key: ":method", RawValue: []byte("GET")},
			{Key: ":path", RawValue: []byte("/r")}, {Key: "x-d", RawValue: []byte("1")}, {Key: "x-d", RawValue: []byte("2")},
		}},
	}}}}
	r, err = ParseRequest(raw)
	if err != nil || r.Host != "h.example" || r.Path != "/r" || r.Headers["x-d"] != "1,2" {
		t.Fatalf("ParseRequest(header_map): %+v, %v", r, err)
	}
}

// A header the configuration sends but this session has no value for (no
// access token) is not ours to overwrite: the client's copy is removed,
// never passed on.
func TestSpoofedTokenHeaderRemovedWhenTheSessionHasNone(t *testing.T) {
	s, jar := newTestServer(t, Config{PassAccessToken: true}, &stubIdP{}, nil)
	sess := alice()
	sess.AccessToken, sess.AccessTokenExpiresAt = "", 0
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{
		"cookie": sessionCookie(t, jar, sess), "x-forwarded-access-token": "forged",
	}))
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("Check: %v %v", resp, err)
	}
	ok := resp.GetOkResponse()
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == "x-forwarded-access-token" {
			t.Fatalf("x-forwarded-access-token set to %q", h.GetHeader().GetValue())
		}
	}
	if !slices.Contains(ok.GetHeadersToRemove(), "x-forwarded-access-token") {
		t.Fatalf("the forged x-forwarded-access-token is not removed: %v", ok.GetHeadersToRemove())
	}
}

// skip_auth_routes as oauth2-proxy reads them: "regex", "METHOD=regex",
// "METHOD!=regex" (that method, any other path) and "!=regex" (any
// method, any other path).
func TestSkipAuthRouteNegations(t *testing.T) {
	route := func(method, expr string, negate bool) Route {
		return Route{Method: method, Path: regexp.MustCompile(expr), Negate: negate}
	}
	for _, tc := range []struct {
		route        Route
		method, path string
		want         bool
	}{
		{route("GET", "^/private", true), "GET", "/public", true},
		{route("GET", "^/private", true), "GET", "/private/x", false},
		{route("GET", "^/private", true), "POST", "/public", false},
		{route("", "^/api/", true), "POST", "/public", true},
		{route("", "^/api/", true), "POST", "/api/items", false},
		{route("POST", "^/hook$", false), "POST", "/hook", true},
		{route("POST", "^/hook$", false), "GET", "/hook", false},
	} {
		s, _ := newTestServer(t, Config{SkipAuthRoutes: []Route{tc.route}}, &stubIdP{}, nil)
		if got := s.skipAuth(&Request{Method: tc.method, Path: tc.path}); got != tc.want {
			t.Errorf("route %s negate=%v %s: %s %s: skip = %v, want %v", tc.route.Method, tc.route.Negate, tc.route.Path, tc.method, tc.path, got, tc.want)
		}
	}
}
