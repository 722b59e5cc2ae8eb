package integration_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// recorder is an ext_authz server that keeps every CheckRequest with its
// gRPC metadata and answers as told: allow, hang past the deadline, or fail.
type recorder struct {
	authv3.UnimplementedAuthorizationServer
	mu       sync.Mutex
	seen     []recorded
	behave   atomic.Value // "allow", "hang", "error"
	released chan struct{}
}

type recorded struct {
	req      *authv3.CheckRequest
	md       metadata.MD
	deadline time.Duration // left of the gRPC deadline (grpc-timeout) on arrival; 0 = none
}

func (r *recorder) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var left time.Duration
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	r.mu.Lock()
	r.seen = append(r.seen, recorded{req, md, left})
	r.mu.Unlock()
	switch r.behave.Load() {
	case "hang":
		select {
		case <-ctx.Done():
		case <-r.released:
		}
		return nil, ctx.Err()
	case "error":
		return nil, grpcstatus.Error(codes.Internal, "broken")
	}
	return &authv3.CheckResponse{Status: &status.Status{}}, nil
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("no CheckRequest arrived")
	}
	return r.seen[len(r.seen)-1]
}

// startRecorder serves a recorder on a free 127.0.0.1 port.
func startRecorder(t *testing.T) (*recorder, string) {
	rec := &recorder{released: make(chan struct{})}
	rec.behave.Store("allow")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, rec)
	go gs.Serve(ln)
	t.Cleanup(func() { close(rec.released); gs.Stop() })
	return rec, ln.Addr().String()
}

// countingUpstream is the echo app counting the requests it got.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	h := echo.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestWhatEnvoySends records the CheckRequests the real Envoy builds for a
// few requests (HTTP/1.1 and HTTP/2, repeated headers, a query, a body, a
// route with context_extensions), checks them against
// envoy-ext-authz.md §0–§1, and requires the emulator to build the same:
// with every header (no allowed_headers), with the shipped
// allowed_headers, and with a list of each kind of matcher.
func TestWhatEnvoySends(t *testing.T) {
	every, err := envoy.AllowAllHeaders(envoy.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name  string
		cfg   []byte
		check func(t *testing.T, name string, r recorded)
	}{
		{"every header", every, checkAgainstDoc},
		{"the shipped allowed_headers", nil, checkShippedList},
		{"each kind of matcher", matcherList(t), checkMatchers},
	} {
		t.Run(v.name, func(t *testing.T) { compareWhatEnvoySends(t, v.cfg, v.check) })
	}
}

// compareWhatEnvoySends sends the requests through the real Envoy and the
// emulator, each with cfg, checks each CheckRequest, and compares them.
func compareWhatEnvoySends(t *testing.T, cfg []byte, check func(t *testing.T, name string, r recorded)) {
	summaries := map[frontKind][]map[string]string{}
	for _, kind := range []frontKind{realEnvoy, emulator} {
		t.Run(string(kind), func(t *testing.T) {
			rec, addr := startRecorder(t)
			up, _ := countingUpstream(t)
			f := startFront(t, frontOptions{kind: kind, grpcAddr: addr, upstream: up.URL, config: cfg})
			b := newBrowser(t, "", "")
			h2 := newBrowser(t, "", "")
			h2.client.Transport = h2cTo(f.URL)
			var out []map[string]string
			for _, tc := range []struct {
				name   string
				client *browser
				method string
				path   string
				header http.Header
			}{
				{"HTTP/1.1 GET with a query and a repeated header", b, "GET", "/p/a?x=1&y=%20z", http.Header{"X-Dup": {"one", "two"}, "Cookie": {"a=1"},
					"X-Upper": {"u"}, "X-Ignore": {"i"}, "X-Pre-A": {"p"}, "X-Pre-No": {"n"}}},
				{"HTTP/2 POST with a body", h2, "POST", "/form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
				{"API route with context_extensions", b, "GET", "/api/items", nil},
				{"client-sent x-request-id", b, "GET", "/x", http.Header{"X-Request-Id": {"client-chosen-id"}}},
			} {
				before := len(rec.seen)
				var req *http.Request
				if tc.method == "GET" {
					req, _ = http.NewRequest(tc.method, f.URL+tc.path, nil)
				} else {
					req, _ = http.NewRequest(tc.method, f.URL+tc.path, strings.NewReader("a=1&b=2"))
				}
				for k, v := range tc.header {
					req.Header[k] = v
				}
				resp, err := tc.client.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || len(rec.seen) != before+1 {
					t.Fatalf("%s: status %d, %d checks", tc.name, resp.StatusCode, len(rec.seen)-before)
				}
				got := rec.last(t)
				s := summarizeCheck(got)
				s["request"] = tc.name
				checkAlways(t, tc.name, got, s)
				check(t, tc.name, got)
				out = append(out, s)
			}
			summaries[kind] = out
		})
	}
	if summaries[realEnvoy] != nil && summaries[emulator] != nil {
		if diff := cmp.Diff(summaries[realEnvoy], summaries[emulator]); diff != "" {
			t.Errorf("the emulator builds other CheckRequests than the real Envoy (-envoy +emulator):\n%s", diff)
		}
	}
}

// matcherList is envoy.yaml with an allowed_headers list of each kind
// (a case-sensitive exact name with capitals, which never matches, an
// exact one ignoring case, a prefix) and a disallowed_headers entry.
func matcherList(t *testing.T) []byte {
	t.Helper()
	every, err := envoy.AllowAllHeaders(envoy.Config)
	if err != nil {
		t.Fatal(err)
	}
	const at = "              include_peer_certificate: false\n"
	cfg := strings.Replace(string(every), at, at+`              allowed_headers:
                patterns:
                - exact: cookie
                - exact: X-Upper
                - { exact: X-Ignore, ignore_case: true }
                - prefix: x-pre-
              disallowed_headers:
                patterns:
                - exact: x-pre-no
`, 1)
	if cfg == string(every) {
		t.Fatal("test setup: envoy.yaml lacks include_peer_certificate")
	}
	return []byte(cfg)
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// summarizeCheck keeps what a server reads from a CheckRequest, in a form
// that does not change between runs.
func summarizeCheck(r recorded) map[string]string {
	h := r.req.GetAttributes().GetRequest().GetHttp()
	s := map[string]string{}
	var keys []string
	for k := range h.GetHeaders() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s["header keys"] = strings.Join(keys, " ")
	s["header :authority"] = "port " + map[bool]string{true: "of the front", false: "other"}[strings.HasPrefix(h.GetHeaders()[":authority"], "127.0.0.1:")]
	for _, k := range []string{":method", ":path", ":scheme", "x-dup", "cookie", "content-type", "x-forwarded-proto", "content-length"} {
		if v, ok := h.GetHeaders()[k]; ok {
			s["header "+k] = v
		}
	}
	rid := h.GetHeaders()["x-request-id"]
	switch {
	case rid == "client-chosen-id":
		s["x-request-id"] = "kept from the client"
	case uuidShape.MatchString(rid):
		s["x-request-id"] = "uuid"
	default:
		s["x-request-id"] = fmt.Sprintf("other: %q", rid)
	}
	s["method"], s["path"], s["scheme"], s["protocol"] = h.GetMethod(), h.GetPath(), h.GetScheme(), h.GetProtocol()
	s["host is :authority"] = fmt.Sprint(h.GetHost() == h.GetHeaders()[":authority"])
	s["query, fragment"] = h.GetQuery() + "|" + h.GetFragment()
	s["body"] = fmt.Sprintf("%q %d raw", h.GetBody(), len(h.GetRawBody()))
	s["size"] = fmt.Sprint(h.GetSize())
	s["context_extensions"] = fmt.Sprint(r.req.GetAttributes().GetContextExtensions())
	s["metadata_context present"] = fmt.Sprint(r.req.GetAttributes().GetMetadataContext() != nil)
	s["source address"] = r.req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
	s["destination address"] = r.req.GetAttributes().GetDestination().GetAddress().GetSocketAddress().GetAddress()
	s["grpc :authority"] = strings.Join(r.md.Get(":authority"), ",")
	s["grpc deadline"] = fmt.Sprintf("%.0fs", r.deadline.Seconds())
	return s
}

// checkAlways asserts the facts of envoy-ext-authz.md §0–§1 that hold
// whatever allowed_headers says: lower-case keys and no host; the request's
// method, path (with the query), host and scheme in their own fields; a
// numeric id; the cluster as :authority; the request time.
func checkAlways(t *testing.T, name string, r recorded, s map[string]string) {
	t.Helper()
	h := r.req.GetAttributes().GetRequest().GetHttp()
	for k := range h.GetHeaders() {
		if k != strings.ToLower(k) || k == "host" {
			t.Errorf("%s: header key %q (keys are lower-case, no host)", name, k)
		}
	}
	if h.GetMethod() == "" || !strings.HasPrefix(h.GetPath(), "/") || !strings.HasPrefix(h.GetHost(), "127.0.0.1:") || h.GetScheme() != "http" {
		t.Errorf("%s: method %q, path %q, host %q, scheme %q: want each filled", name, h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme())
	}
	if _, err := fmt.Sscan(h.GetId(), new(uint64)); err != nil {
		t.Errorf("%s: id %q is not numeric", name, h.GetId())
	}
	if s["grpc :authority"] != "ext_authz" {
		t.Errorf("%s: gRPC :authority %q, want the cluster name ext_authz", name, s["grpc :authority"])
	}
	if r.req.GetAttributes().GetRequest().GetTime() == nil {
		t.Errorf("%s: no request time", name)
	}
}

// checkAgainstDoc asserts §1's header map without allowed_headers: every
// header, pseudo-headers included, path and host equal to :path and
// :authority.
func checkAgainstDoc(t *testing.T, name string, r recorded) {
	t.Helper()
	h := r.req.GetAttributes().GetRequest().GetHttp()
	for _, k := range []string{":authority", ":method", ":path", ":scheme", "x-request-id", "x-forwarded-proto"} {
		if _, ok := h.GetHeaders()[k]; !ok {
			t.Errorf("%s: no %s header", name, k)
		}
	}
	if h.GetPath() != h.GetHeaders()[":path"] || h.GetHost() != h.GetHeaders()[":authority"] {
		t.Errorf("%s: path %q / host %q differ from :path / :authority", name, h.GetPath(), h.GetHost())
	}
}

// checkShippedList asserts the shipped allowed_headers: only headers on
// it (no pseudo-header, nothing Envoy adds of its own accord), and the
// x-request-id it lists.
func checkShippedList(t *testing.T, name string, r recorded) {
	t.Helper()
	lists, err := envoy.HeaderLists(envoy.Config)
	if err != nil || len(lists) != 1 {
		t.Fatalf("envoy.yaml: %d header lists (%v)", len(lists), err)
	}
	h := r.req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	for k := range h {
		if !lists[0].Sends(k) {
			t.Errorf("%s: header %q is not on the shipped allowed_headers", name, k)
		}
	}
	if _, ok := h["x-request-id"]; !ok {
		t.Errorf("%s: no x-request-id", name)
	}
}

// checkMatchers asserts matcherList's picks: exact names compare case
// (X-Upper never matches a lower-case key) unless ignore_case; a prefix
// picks its family; disallowed_headers wins.
func checkMatchers(t *testing.T, name string, r recorded) {
	t.Helper()
	var keys []string
	for k := range r.req.GetAttributes().GetRequest().GetHttp().GetHeaders() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{}
	if strings.HasPrefix(name, "HTTP/1.1 GET") {
		want = []string{"cookie", "x-ignore", "x-pre-a"}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("%s: header keys %v, want %v", name, keys, want)
	}
}

// TestEnvoyFailureSemantics: what the real Envoy does when our server is
// gone, slow, failing or restarted, with envoy.yaml's failure_mode_allow:
// false and status_on_error: 503. The upstream is never reached.
func TestEnvoyFailureSemantics(t *testing.T) {
	rec, addr := startRecorder(t)
	up, hits := countingUpstream(t)
	f := startFront(t, frontOptions{kind: realEnvoy, grpcAddr: addr, upstream: up.URL, timeout: 300 * time.Millisecond})
	b := newBrowser(t, "", "")
	if r := b.get(f.URL + "/ok"); r.StatusCode != http.StatusOK || hits.Load() != 1 {
		t.Fatalf("allowed request: %s, upstream hits %d", describe(r), hits.Load())
	}

	t.Run("a Check slower than the filter timeout: 503", func(t *testing.T) {
		rec.behave.Store("hang")
		defer rec.behave.Store("allow")
		start := time.Now()
		r := b.get(f.URL + "/slow")
		// status_on_error, with the shipped local_reply_config's page.
		if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Service unavailable") {
			t.Errorf("hanging Check: %s, want status_on_error 503 with the shipped page", describe(r))
		}
		if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
			t.Errorf("answered after %s, want the 300 ms filter timeout", el)
		}
		if left := rec.last(t).deadline; left <= 0 || left > 300*time.Millisecond {
			t.Errorf("the Check arrived with %s left of its deadline, want the 300 ms filter timeout (grpc-timeout)", left)
		}
	})
	t.Run("a gRPC error from the server: 503, not a denial", func(t *testing.T) {
		rec.behave.Store("error")
		defer rec.behave.Store("allow")
		if r := b.get(f.URL + "/error"); r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("gRPC error: %s, want 503", describe(r))
		}
	})
	if hits.Load() != 1 {
		t.Fatalf("the upstream was reached %d times; failure_mode_allow: false must hold", hits.Load()-1)
	}
}

// Our server stopped: Envoy answers 503 without reaching the upstream; the
// server started again on the same port: Envoy reconnects by itself and the
// next request is checked again.
func TestEnvoyReconnectsAfterARestart(t *testing.T) {
	st := startStack(t, stackOptions{})
	cfg := baseConfig(st.IdP.Issuer)
	cfg["grpc_address"], cfg["http_address"] = st.Server.GRPCAddr, st.Server.HTTPAddr
	b := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, b, "/"))

	if err := st.Server.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r := b.get(st.Front.URL + "/after-stop")
	if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(r.Body, "echo") {
		t.Fatalf("server stopped: %s, want Envoy's 503 and no upstream", describe(r))
	}

	srv := startServer(t, cfg)
	srv.waitReady(t)
	waitFor(t, "Envoy to reconnect and accept the session again", func() bool {
		r = b.get(st.Front.URL + "/after-restart")
		return r.StatusCode == http.StatusOK
	})
	if got := upstreamSaw(t, r); got.Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("after the restart the upstream saw user %q", got.Headers["x-forwarded-user"])
	}
}
