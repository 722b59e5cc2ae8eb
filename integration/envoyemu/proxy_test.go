package envoyemu

//lint:file-ignore SA1019 Envoy's ext_authz reads the deprecated HeaderValueOption.append (envoy-ext-authz.md §2.1), so we emulate and test that field.

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeAuthz answers with whatever the test sets and records what it got.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	answer    func(*authv3.CheckRequest) (*authv3.CheckResponse, error)
	got       chan *authv3.CheckRequest
	authority chan string
}

func (f *fakeAuthz) Check(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	select {
	case f.got <- r:
	default:
	}
	select {
	case f.authority <- strings.Join(md.Get(":authority"), ""):
	default:
	}
	return f.answer(r)
}

type rig struct {
	front string
	fake  *fakeAuthz
	proxy *Proxy
}

func newRig(t *testing.T, adjust func(*Settings)) *rig {
	t.Helper()
	fake := &fakeAuthz{got: make(chan *authv3.CheckRequest, 1), authority: make(chan string, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, fake)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "upstream=1")
		h := map[string]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, "|")
		}
		h["_path"] = r.URL.RequestURI()
		json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(upstream.Close)
	s, err := ShippedSettings()
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(&s)
	}
	u, _ := url.Parse(upstream.URL)
	p, err := New(s, ln.Addr().String(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return &rig{front: front.URL, fake: fake, proxy: p}
}

func ok(headers []*corev3.HeaderValueOption, remove []string, resp []*corev3.HeaderValueOption) func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: headers, HeadersToRemove: remove, ResponseHeadersToAdd: resp}}}, nil
	}
}

func hv(k, v string, app *bool) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}}
	if app != nil {
		o.Append = wrapperspb.Bool(*app)
	}
	return o
}

var yes, no = true, false

func send(t *testing.T, method, target string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, target, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := testkit.NoRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// §1 / §8.1: the CheckRequest as Envoy builds it (every header: no
// allowed_headers).
func TestCheckRequestShape(t *testing.T) {
	r := newRig(t, func(s *Settings) { s.AllowedHeaders = nil })
	r.fake.answer = ok(nil, nil, nil)
	send(t, "GET", r.front+"/api/items?q=1", http.Header{"X-Dup": {"one", "two"}, "Accept": {"text/html"}})
	got := <-r.fake.got
	h := got.GetAttributes().GetRequest().GetHttp()
	u, _ := url.Parse(r.front)
	checks := map[string]bool{
		"lower-case keys, no host key":    h.GetHeaders()["accept"] == "text/html" && h.GetHeaders()["host"] == "",
		"pseudo-headers":                  h.GetHeaders()[":authority"] == u.Host && h.GetHeaders()[":method"] == "GET" && h.GetHeaders()[":path"] == "/api/items?q=1" && h.GetHeaders()[":scheme"] == "http",
		"repeated headers comma-merged":   h.GetHeaders()["x-dup"] == "one,two",
		"path with query":                 h.GetPath() == "/api/items?q=1",
		"host is :authority":              h.GetHost() == u.Host,
		"numeric id":                      h.GetId() != "" && strings.Trim(h.GetId(), "0123456789") == "",
		"protocol":                        h.GetProtocol() == "HTTP/1.1",
		"metadata_context present":        got.GetAttributes().GetMetadataContext() != nil,
		"context_extensions of the route": got.GetAttributes().GetContextExtensions()["auth"] == "bearer-only",
		":authority is the cluster name":  <-r.fake.authority == "ext_authz",
	}
	for name, okay := range checks {
		if !okay {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// §1, note of 2026-12-07: with envoy.yaml's allowed_headers, only the
// listed headers (no pseudo-header) and disallowed_headers wins; the
// request's method, path, host and scheme are sent all the same.
func TestCheckRequestAllowedHeaders(t *testing.T) {
	r := newRig(t, func(s *Settings) { s.DisallowedHeaders = []envoy.HeaderPattern{{Exact: "x-requested-with"}} })
	r.fake.answer = ok(nil, nil, nil)
	send(t, "GET", r.front+"/x?q=1", http.Header{"Accept": {"text/html"}, "Cookie": {"a=1"}, "X-Requested-With": {"XMLHttpRequest"}, "User-Agent": {"test"}})
	h := (<-r.fake.got).GetAttributes().GetRequest().GetHttp()
	<-r.fake.authority
	keys := slices.Sorted(maps.Keys(h.GetHeaders()))
	if want := []string{"accept", "cookie", "x-request-id"}; !slices.Equal(keys, want) {
		t.Errorf("header keys %v, want %v", keys, want)
	}
	if h.GetMethod() != "GET" || h.GetPath() != "/x?q=1" || h.GetHost() == "" || h.GetScheme() != "http" {
		t.Errorf("method %q path %q host %q scheme %q: want each filled", h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme())
	}
}

// §2.1, §2.2: OK mutations and response headers.
func TestOKMutations(t *testing.T) {
	r := newRig(t, nil)
	r.fake.answer = ok(
		[]*corev3.HeaderValueOption{hv("x-set", "new", &no), hv("x-unset", "u", nil), hv("x-existing", "b", &yes), hv("x-absent", "dropped", &yes), hv("x-both", "gone", &no)},
		[]string{"x-remove", "x-both", "host", ":path"},
		[]*corev3.HeaderValueOption{hv("set-cookie", "a=1", &yes), hv("set-cookie", "b=2", &yes)},
	)
	resp, body := send(t, "GET", r.front+"/x", http.Header{"X-Set": {"old"}, "X-Existing": {"a"}, "X-Remove": {"1"}})
	var up map[string]string
	json.Unmarshal([]byte(body), &up)
	want := map[string]string{"x-set": "new", "x-unset": "u", "x-existing": "a,b", "_path": "/x"}
	for k, v := range want {
		if up[k] != v {
			t.Errorf("upstream %s = %q, want %q", k, up[k], v)
		}
	}
	for _, k := range []string{"x-absent", "x-remove", "x-both"} {
		if _, present := up[k]; present {
			t.Errorf("upstream has %s", k)
		}
	}
	if got := resp.Header.Values("Set-Cookie"); strings.Join(got, " ") != "upstream=1 a=1 b=2" {
		t.Errorf("response set-cookie %v, want the upstream's plus both of ours", got)
	}
}

// §2.3: Denied local replies.
func TestDenied(t *testing.T) {
	r := newRig(t, nil)
	cases := []struct {
		name       string
		denied     *authv3.DeniedHttpResponse
		wantStatus int
		wantCT     string
		wantHeader [2]string
	}{
		{"no denied_response is 403", nil, 403, "", [2]string{}},
		{"redirect with cookies", &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 302}, Headers: []*corev3.HeaderValueOption{hv("location", "/x", nil), hv("set-cookie", "a=1", nil), hv("set-cookie", "b=2", nil), hv("x-append", "ignored", &yes)}}, 302, "", [2]string{"Location", "/x"}},
		{"body without content-type is text/plain", &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 401}, Body: "no"}, 401, "text/plain", [2]string{}},
		{"server content-type kept", &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 200}, Body: "{}", Headers: []*corev3.HeaderValueOption{hv("content-type", "application/json", nil)}}, 200, "application/json", [2]string{}},
		{"empty body loses content-type", &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 403}, Headers: []*corev3.HeaderValueOption{hv("content-type", "text/html", nil)}}, 403, "", [2]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
				resp := &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}
				if tc.denied != nil {
					resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: tc.denied}
				}
				return resp, nil
			}
			resp, _ := send(t, "GET", r.front+"/x", nil)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != tc.wantCT {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantStatus, tc.wantCT)
			}
			if tc.wantHeader[0] != "" && resp.Header.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Fatalf("header %s = %q", tc.wantHeader[0], resp.Header.Get(tc.wantHeader[0]))
			}
			if tc.name == "redirect with cookies" && (len(resp.Header.Values("Set-Cookie")) != 2 || resp.Header.Get("X-Append") != "") {
				t.Fatalf("denied headers: %v", resp.Header)
			}
		})
	}
}

// §2 / §2.4: RPC errors, timeouts, fail-open, and routes without a check.
func TestErrorsAndRoutes(t *testing.T) {
	t.Run("gRPC error is status_on_error", func(t *testing.T) {
		r := newRig(t, nil)
		r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, grpcstatus.Error(codes.Internal, "x")
		}
		// envoy.yaml's local_reply_config gives Envoy's own 503 a page.
		if resp, body := send(t, "GET", r.front+"/x", nil); resp.StatusCode != 503 || !strings.Contains(body, "Service unavailable") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("got %d %q, want envoy.yaml's status_on_error 503 with the shipped page", resp.StatusCode, body)
		}
	})
	t.Run("timeout is status_on_error", func(t *testing.T) {
		r := newRig(t, func(s *Settings) { s.Timeout = 50 * time.Millisecond })
		release := make(chan struct{})
		defer close(release)
		r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
			<-release
			return nil, nil
		}
		if resp, _ := send(t, "GET", r.front+"/x", nil); resp.StatusCode != 503 {
			t.Fatalf("got %d, want 503", resp.StatusCode)
		}
	})
	t.Run("failure_mode_allow lets the request through", func(t *testing.T) {
		r := newRig(t, func(s *Settings) { s.FailureModeAllow = true })
		r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, grpcstatus.Error(codes.Unavailable, "x")
		}
		if resp, _ := send(t, "GET", r.front+"/x", nil); resp.StatusCode != 200 {
			t.Fatalf("got %d, want the upstream's 200", resp.StatusCode)
		}
	})
	t.Run("empty CheckResponse allows", func(t *testing.T) {
		r := newRig(t, nil)
		r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) { return &authv3.CheckResponse{}, nil }
		if resp, _ := send(t, "GET", r.front+"/x", nil); resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200 (code 0 is OK, §6.2)", resp.StatusCode)
		}
	})
	t.Run("disabled route is not checked", func(t *testing.T) {
		r := newRig(t, nil)
		r.fake.answer = func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
			t.Error("Check called for /public/")
			return nil, nil
		}
		if resp, _ := send(t, "GET", r.front+"/public/a", nil); resp.StatusCode != 200 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}

func TestShippedSettings(t *testing.T) {
	s, err := ShippedSettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster != "ext_authz" || s.Timeout != 6*time.Second || s.FailureModeAllow || s.StatusOnError != 503 || len(s.Routes) != 7 || s.Routes[0].Path != "/oauth2/backchannel_logout" || s.Routes[0].Cluster != "zitadel-ext-authz-http" || !s.Routes[0].Disabled {
		t.Fatalf("settings from envoy.yaml: %+v", s)
	}
}
