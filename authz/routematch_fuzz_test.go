package authz

import (
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"
)

// The routes of the differential fuzz target: shapes from our peers'
// advisories (oauth2-proxy GHSA-7rh7-c77v-6434's "^/api/.*/status",
// GHSA-pxq7-h93f-9jrg's "^/foo/.*/bar$", prefixes, a method, a negation).
var fuzzRoutes = []Route{
	{Path: regexp.MustCompile(`^/api/.*/status$`)},
	{Path: regexp.MustCompile(`^/foo/.*/bar$`)},
	{Path: regexp.MustCompile(`^/public/`)},
	{Method: "GET", Path: regexp.MustCompile(`^/health$`)},
	{Method: "POST", Path: regexp.MustCompile(`^/private`), Negate: true},
}

// referenceSkip is what skip_auth_routes must decide, written apart from
// skipAuth: the routes' regexes applied by hand to the path Envoy forwards
// (its :path up to the first '?', as normalize_path and merge_slashes left
// it), and only when that path can't mean another path to an upstream:
// path.Clean wouldn't change it, and it holds no encoded dot, slash or
// backslash, no backslash and no dot segment with parameters ("..;").
// Nothing else of the request counts: not the query, not a fragment, not
// X-Forwarded-Uri, X-Original-URL or X-Rewrite-URL.
func referenceSkip(method, envoyPath string) bool {
	p, _, _ := strings.Cut(envoyPath, "?")
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\\#") {
		return false
	}
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return false
	}
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && cleaned != "/" {
		cleaned += "/"
	}
	if cleaned != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if name, _, params := strings.Cut(seg, ";"); params && (name == "." || name == "..") {
			return false
		}
	}
	for _, rt := range fuzzRoutes {
		if rt.Method != "" && rt.Method != method {
			continue
		}
		if rt.Path.MatchString(p) != rt.Negate {
			return true
		}
	}
	return false
}

// FuzzSkipAuthRoutes: our route matcher against referenceSkip, for any
// path Envoy may forward (the fuzzer's, with a query and a fragment-looking
// tail), and whatever the rewrite headers claim: the two always agree.
func FuzzSkipAuthRoutes(f *testing.F) {
	s, _ := newTestServer(f, Config{SkipAuthRoutes: fuzzRoutes}, &stubIdP{}, nil)
	for _, seed := range []string{
		"/api/private/sensitive?path=/status", "/api/x/status", "/foo/secret#/x/bar", "/foo/secret%23/x/bar",
		"/public/../admin", "/public/..;/admin", "/public/.;x/admin", "/public/%2e%2e/admin", "/public//admin", "/health", "/health;x=1",
		"/public/x?a=/health", "/publicx", "/public/%5Cadmin", "/private/x", "/a/b/../c",
	} {
		f.Add("GET", seed, "/public/x")
		f.Add("POST", seed, "/health")
	}
	f.Fuzz(func(t *testing.T, method, envoyPath, rewritten string) {
		if envoyPath == "" || envoyPath[0] != '/' || method == "" || method == "OPTIONS" {
			return // Envoy forwards no such request; OPTIONS is skip_auth_preflight's
		}
		req := envoyRequest(method, envoyPath, map[string]string{
			"x-forwarded-uri": rewritten, "x-original-url": rewritten, "x-rewrite-url": rewritten, "x-envoy-original-path": rewritten,
			"x-forwarded-prefix": rewritten, "accept": "application/json",
		})
		resp, err := s.Check(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		skipped := resp.GetOkResponse() != nil
		if want := referenceSkip(method, envoyPath); skipped != want {
			t.Fatalf("%s %q (rewrite headers %q): skipped=%v, the regexes on Envoy's path say %v", method, envoyPath, rewritten, skipped, want)
		}
		if !skipped && resp.GetDeniedResponse().GetStatus().GetCode() == http.StatusOK {
			t.Fatalf("%s %q: a 200 local reply", method, envoyPath)
		}
	})
}
