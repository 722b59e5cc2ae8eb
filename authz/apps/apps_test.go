package apps

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// named answers OK with its name in a header, so a test sees which app
// answered.
type named string

func (n named) Answer(context.Context, *authz.Request) *authv3.CheckResponse {
	return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-app", Value: string(n)}}},
	}}}
}

func app(name string, hosts ...string) *Entry {
	return &Entry{Name: name, Hosts: hosts, Server: named(name)}
}

func testTable(withDefault bool) *Table {
	var def *Entry
	if withDefault {
		def = app("default")
	}
	return NewTable(def,
		app("shop", "shop.example.com", "*.shop.example.com"),
		app("wild", "*.example.com"),
		app("deep", "*.a.b.example.com"),
		app("exact-over-wild", "x.a.b.example.com"),
		app("kiosk", "kiosk.test"),
	)
}

func TestLookupPrefersExactThenMostSpecificWildcard(t *testing.T) {
	tab := testTable(true)
	for _, c := range []struct{ name, host, want string }{
		{"", "shop.example.com", "shop"},
		{"", "SHOP.Example.COM:8443", "shop"}, // any case, any numeric port
		// Where Envoy's choice depends on its settings (strip_trailing_host_dot,
		// "host:*" domains, ignore_port_in_host_matching), no app judges:
		// either could be the wrong one, and shop's session could reach the
		// default app's upstream or the other way round.
		{"", "shop.example.com.", ""},        // a trailing dot
		{"", "shop.example.com:", ""},        // an empty port
		{"", "shop.example.com:x", ""},       // a port that is no number
		{"", "shop.example.com:123456", ""},  // no port either
		{"", "blog.example.com:8443", ""},    // a wildcard's host with a port: Envoy can't write "*.example.com:*"
		{"", "eu.shop.example.com:443", ""},  // likewise
		{"", "\u212aiosk.test", "default"},   // KELVIN SIGN, which strings.ToLower folds to k
		{"", "KIOSK.test", "kiosk"},          // ASCII letters fold, as in Envoy
		{"", "xn--kisk-gra.test", "default"}, // punycode is another name
		{"", ".example.com", "default"},      // *.example.com needs a label before it
		{"", "a..example.com", "wild"},       // Envoy: suffix ".example.com" matches
		{"", "[::1]", "default"},
		{"", "eu.shop.example.com", "shop"}, // *.shop beats *.example.com
		{"", "blog.example.com", "wild"},
		{"", "a.blog.example.com", "wild"}, // wildcards cover deeper names, as Envoy's do
		{"", "y.a.b.example.com", "deep"},
		{"", "x.a.b.example.com", "exact-over-wild"},
		{"", "example.com", "default"}, // *.example.com does not cover example.com
		{"", "other.org", "default"},
		{"", "[::1]:8000", "default"},
		{"", "", "default"},
		{"shop", "blog.example.com", "shop"}, // the route's app wins over the host
		{"default", "shop.example.com", "default"},
	} {
		a, reason := tab.Lookup(c.name, c.host)
		if c.want == "" {
			if a != nil || reason != "unknown_host" {
				t.Errorf("Lookup(%q, %q) = %v (%s), want no app (unknown_host)", c.name, c.host, a, reason)
			}
			continue
		}
		if a == nil || a.Name != c.want {
			t.Errorf("Lookup(%q, %q) = %v (%s), want %s", c.name, c.host, a, reason, c.want)
		}
	}
}

func TestLookupWithoutDefaultApp(t *testing.T) {
	tab := testTable(false)
	if a, reason := tab.Lookup("", "other.org"); a != nil || reason != "unknown_host" {
		t.Errorf("unknown host: %v, %q; want none, unknown_host", a, reason)
	}
	if a, reason := tab.Lookup("nope", "shop.example.com"); a != nil || reason != "unknown_app" {
		t.Errorf("unknown app name: %v, %q; want none, unknown_app", a, reason)
	}
	if a, reason := tab.Lookup("default", "other.org"); a != nil || reason != "unknown_host" {
		t.Errorf("the catch-all's app name without a default app: %v, %q; want none, unknown_host", a, reason)
	}
	if a, reason := NewTable(nil).Lookup("", "any"); a != nil || reason != authz.ReasonUnknownHost {
		t.Errorf("empty table: %v, %q", a, reason)
	}
}

func request(host string, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: ext,
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Host: host, Path: "/", Method: "GET", Headers: map[string]string{"x-request-id": "r1"},
		}},
	}}
}

func TestRouterDeniesWhatNoAppTakesWithAPageAndALogLine(t *testing.T) {
	var logs bytes.Buffer
	r := NewRouter(testTable(false), slog.New(slog.NewTextHandler(&logs, nil)), nil)

	resp, err := r.Check(t.Context(), request("evil.org:443", nil))
	if err != nil {
		t.Fatalf("Check returned a gRPC error: %v", err)
	}
	denied := resp.GetDeniedResponse()
	if resp.GetStatus().GetCode() != int32(code.Code_PERMISSION_DENIED) || denied.GetStatus().GetCode() != 403 || !strings.Contains(denied.GetBody(), "No application is configured") {
		t.Fatalf("unknown host: %v", resp)
	}
	if !strings.Contains(logs.String(), "host=evil.org:443") || !strings.Contains(logs.String(), "reason=unknown_host") {
		t.Errorf("log line lacks the host: %s", logs.String())
	}

	resp, _ = r.Check(t.Context(), request("shop.example.com", map[string]string{ContextKey: "typo"}))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 500 || !strings.Contains(logs.String(), "app=typo") {
		t.Errorf("unknown app on a route: %v / %s", resp, logs.String())
	}

	resp, _ = r.Check(t.Context(), request("shop.example.com", nil))
	if got := resp.GetOkResponse().GetHeaders()[0].GetHeader().GetValue(); got != "shop" {
		t.Errorf("shop.example.com went to %q", got)
	}
	r.SetTable(NewTable(app("default")))
	resp, _ = r.Check(t.Context(), request("shop.example.com", nil))
	if got := resp.GetOkResponse().GetHeaders()[0].GetHeader().GetValue(); got != "default" {
		t.Errorf("after SetTable, shop.example.com went to %q", got)
	}
}

// Lookup runs on every Check: with 50 apps an exact host costs one map
// lookup after normalising, and a wildcard one per label.
func BenchmarkLookup(b *testing.B) {
	var list []*Entry
	for i := range 50 {
		list = append(list, app(fmt.Sprintf("app%d", i), fmt.Sprintf("app%d.example.com", i), fmt.Sprintf("*.app%d.example.org", i)))
	}
	tab := NewTable(app("default"), list...)
	for _, host := range []string{"app42.example.com:8000", "x.app42.example.org", "unknown.example.net"} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a, _ := tab.Lookup("", host); a == nil {
					b.Fatal("no app")
				}
			}
		})
	}
}

// What the Router adds to every Check: one app (the default, no host
// lookup) against one of 50 apps found by its exact host.
func BenchmarkRouterCheck(b *testing.B) {
	var list []*Entry
	for i := range 50 {
		list = append(list, app(fmt.Sprintf("app%d", i), fmt.Sprintf("app%d.example.com", i)))
	}
	req := request("app42.example.com:443", nil)
	for name, tab := range map[string]*Table{"1 app": NewTable(app("default")), "50 apps": NewTable(nil, list...)} {
		r := NewRouter(tab, slog.New(slog.DiscardHandler), nil)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Check(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
