package authz

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// baseNeeds are the headers every configuration reads (with the default
// identity_jwt_header).
var baseNeeds = []string{
	"cookie", "accept", "x-requested-with", "sec-fetch-site", "origin", "referer", "x-request-id",
	"x-forwarded-user", "x_forwarded_user", "x-forwarded-email", "x_forwarded_email", "x-forwarded-groups", "x_forwarded_groups",
	"x-forwarded-preferred-username", "x_forwarded_preferred_username", "x-forwarded-access-token", "x_forwarded_access_token",
	"x-auth-request-user", "x_auth_request_user", "x-auth-request-email", "x_auth_request_email", "x-auth-request-groups", "x_auth_request_groups",
	"x-auth-request-preferred-username", "x_auth_request_preferred_username", "x-auth-request-access-token", "x_auth_request_access_token",
	"x-zitadel-ext-authz-jwt", "x_zitadel_ext_authz_jwt",
}

// compiled compiles rule definitions or fails the test.
func compiled(t *testing.T, defs map[string]string) *rules.Set {
	t.Helper()
	s, err := rules.Compile(defs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func needNames(needs []HeaderNeed) []string {
	out := make([]string, len(needs))
	for i, n := range needs {
		out[i] = n.Name
	}
	return out
}

// RequestHeaders: the headers every configuration reads, then each key's.
func TestRequestHeaders(t *testing.T) {
	defaults := Config{IdentityJWT: IdentityJWT{Header: DefaultIdentityJWTHeader}}
	with := func(f func(*Config)) Config { c := defaults; f(&c); return c }
	for _, tc := range []struct {
		name   string
		conf   Config
		bearer bool
		more   []string // after baseNeeds
	}{
		{"the defaults", defaults, false, nil},
		{"bearer tokens", defaults, true, []string{"authorization"}},
		{"claim_headers and id_token_header", with(func(c *Config) {
			c.ClaimHeaders, c.IDTokenHeader = []ClaimHeader{{"x-tenant", "t"}, {"team", "teams"}}, "x-id-token"
		}), false, []string{"x-tenant", "x_tenant", "team", "x-id-token", "x_id_token"}},
		{"trusted_ips behind a reverse proxy", with(func(c *Config) {
			c.TrustedIPs, c.ReverseProxy, c.RealClientIPHeader = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, true, "x-forwarded-for"
		}), false, []string{"x-forwarded-for"}},
		{"trusted_ips without a reverse proxy: the source address", with(func(c *Config) {
			c.TrustedIPs, c.RealClientIPHeader = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "x-real-ip"
		}), false, nil},
		{"a rule's source address behind a reverse proxy", with(func(c *Config) {
			c.Rules, c.ReverseProxy, c.RealClientIPHeader = compiled(t, map[string]string{"office": `cidr("10.0.0.0/8").containsIP(request.source_address)`}), true, "x-real-ip"
		}), false, []string{"x-real-ip"}},
		{"headers rules read", with(func(c *Config) {
			c.Rules = compiled(t, map[string]string{"team": `request.headers["x-team"] == "blue"`, "cookie": `"cookie" in request.headers`})
		}), false, []string{"x-team"}},
		{"a rule that may read any header", with(func(c *Config) {
			c.Rules = compiled(t, map[string]string{"any": `request.headers.exists(k, k.startsWith("x-"))`})
		}), false, []string{AllHeaders}},
		{"no identity assertion", Config{}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RequestHeaders(tc.conf, tc.bearer)
			want := slices.Clone(baseNeeds)
			if tc.conf.IdentityJWT.Header == "" {
				want = want[:len(want)-2]
			}
			if tc.bearer {
				want = slices.Insert(want, 7, tc.more[0])
				tc.more = tc.more[1:]
			}
			want = append(want, tc.more...)
			if diff := cmp.Diff(want, needNames(got)); diff != "" {
				t.Errorf("RequestHeaders names (-want +got):\n%s", diff)
			}
			for _, n := range got {
				if n.Why == "" || n.Name != strings.ToLower(n.Name) {
					t.Errorf("need %+v: want a lower-case name and a why", n)
				}
			}
		})
	}
}

// narrowed is r with only the headers needs names, as Envoy sends them
// with an allowed_headers list of exactly those names.
func narrowed(r *authv3.CheckRequest, needs []HeaderNeed) *authv3.CheckRequest {
	n := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}}}
	h := r.GetAttributes().GetRequest().GetHttp()
	nh := n.Attributes.Request.Http
	nh.Id, nh.Method, nh.Path, nh.Host, nh.Scheme, nh.Protocol = h.Id, h.Method, h.Path, h.Host, h.Scheme, h.Protocol
	nh.Headers = maps.Clone(h.Headers)
	maps.DeleteFunc(nh.Headers, func(k, _ string) bool {
		return !slices.ContainsFunc(needs, func(n HeaderNeed) bool { return n.Name == k })
	})
	n.Attributes.Source = r.GetAttributes().GetSource()
	return n
}

// answerOf is what an answer says, with sealed cookie values (random
// nonces) cut to their names.
func answerOf(resp *authv3.CheckResponse) []string {
	out := []string{"code " + resp.GetStatus().String()}
	ok, denied := resp.GetOkResponse(), resp.GetDeniedResponse()
	for _, h := range append(ok.GetHeaders(), append(ok.GetResponseHeadersToAdd(), denied.GetHeaders()...)...) {
		v := h.GetHeader().GetValue()
		if h.GetHeader().GetKey() == "set-cookie" {
			v, _, _ = strings.Cut(v, "=")
		}
		out = append(out, h.GetHeader().GetKey()+": "+v)
	}
	removed := slices.Clone(ok.GetHeadersToRemove())
	sort.Strings(removed)
	return append(out, "removed "+strings.Join(removed, " "), "status "+denied.GetStatus().String(), "body "+denied.GetBody())
}

// Narrowing the headers Envoy sends to RequestHeaders changes no answer:
// the same sessions, redirects, 401s, CSRF refusals, trusted addresses,
// rule verdicts, and the same client-sent identity headers removed.
func TestNarrowedHeadersChangeNoAnswer(t *testing.T) {
	cfg := claimConfig
	cfg.IdentityJWT = IdentityJWT{Header: DefaultIdentityJWTHeader}
	cfg.TrustedIPs, cfg.ReverseProxy, cfg.RealClientIPHeader = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, true, "x-forwarded-for"
	cfg.Rules = compiled(t, map[string]string{"not_red": `!("x-team" in request.headers) || request.headers["x-team"] != "red"`})
	cfg.AllowIf = []string{"not_red"}
	cfg.SkipAuthRoutes = []Route{{Path: regexp.MustCompile("^/public/")}}
	s, jar := newTestServer(t, cfg, &stubIdP{}, nil)
	needs := RequestHeaders(cfg, false)
	cookie := sessionCookie(t, jar, alice())
	noise := map[string]string{"user-agent": "test", "x-other": "1", "x-forwarded-proto": "https", "content-type": "text/plain"}
	for name := range maps.Keys(forged) {
		noise[name] = "forged"
	}
	for _, name := range identityHeaders {
		noise[name], noise[strings.ReplaceAll(name, "-", "_")] = "forged", "forged"
	}
	noise[DefaultIdentityJWTHeader] = "forged"
	for _, tc := range []struct {
		name, method, path string
		headers            map[string]string
	}{
		{"a session", "GET", "/x", map[string]string{"cookie": cookie}},
		{"a session the rule refuses", "GET", "/x", map[string]string{"cookie": cookie, "x-team": "red"}},
		{"a browser without a session", "GET", "/x", map[string]string{"accept": "text/html"}},
		{"an API caller without a session", "GET", "/x", map[string]string{"accept": "application/json"}},
		{"an XHR without a session", "GET", "/x", map[string]string{"accept": "text/html", "x-requested-with": "XMLHttpRequest"}},
		{"a same-origin POST", "POST", "/x", map[string]string{"cookie": cookie, "origin": "https://app.example.com"}},
		{"a same-origin POST by fetch metadata", "POST", "/x", map[string]string{"cookie": cookie, "sec-fetch-site": "same-origin"}},
		{"a same-origin POST by referer", "POST", "/x", map[string]string{"cookie": cookie, "referer": "https://app.example.com/form"}},
		{"a cross-site POST", "POST", "/x", map[string]string{"cookie": cookie, "origin": "https://evil.example"}},
		{"a trusted address", "GET", "/x", map[string]string{"x-forwarded-for": "198.51.100.7, 192.0.2.9"}},
		{"a skip_auth_routes path", "GET", "/public/a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := maps.Clone(noise)
			maps.Copy(h, tc.headers)
			full := envoyRequest(tc.method, tc.path, h)
			a, err := s.Check(t.Context(), full)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Check(t.Context(), narrowed(full, needs))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(answerOf(a), answerOf(b)); diff != "" {
				t.Errorf("Check(%s): the narrowed request got another answer (-every header +narrowed):\n%s", tc.name, diff)
			}
		})
	}
}
