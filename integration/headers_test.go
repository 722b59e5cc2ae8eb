package integration_test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// headersRead are the request headers the server's start-up line (the
// latest, after a reload) says Check reads.
func (s *server) headersRead(t *testing.T) []string {
	t.Helper()
	var read []string
	found := false
	for line := range strings.SplitSeq(s.Logs(), "\n") {
		var l struct {
			Msg     string   `json:"msg"`
			Headers []string `json:"headers"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Msg, "request headers Check reads") {
			read, found = l.Headers, true
		}
	}
	if !found {
		t.Fatalf("the server logged no request headers line:\n%s", s.Logs())
	}
	return read
}

// envoyFor is cfg (nil: envoy.yaml as shipped) with its allowed_headers
// widened to what s reads (envoyWith).
func (s *server) envoyFor(t *testing.T, cfg []byte) []byte {
	t.Helper()
	return envoyWith(t, cfg, s.headersRead(t))
}

// envoyWith is cfg (nil: envoy.yaml as shipped) with its allowed_headers
// widened to the headers read, as check-envoy --config tells a user: each
// one it leaves out added, or the list removed when a rule may read any
// header. cfg itself when it needs nothing.
func envoyWith(t *testing.T, cfg []byte, read []string) []byte {
	t.Helper()
	base := cfg
	if base == nil {
		base = envoy.Config
	}
	lists, err := envoy.HeaderLists(base)
	if err != nil || len(lists) != 1 {
		t.Fatalf("envoy config: want one allowed_headers list, got %d (%v)", len(lists), err)
	}
	left := lists[0].Leaves(read)
	var out []byte
	switch {
	case len(left) == 0:
		return cfg
	case slices.Contains(left, "*"):
		out, err = envoy.AllowAllHeaders(base)
	default:
		out, err = envoy.AllowHeaders(base, left...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// spoofConfig sends a claim and the ID token upstream and lets /open/
// through without login.
var spoofConfig = map[string]any{
	"claim_headers":    map[string]string{"x-tenant": tenantClaim},
	"id_token_header":  "x-id-token",
	"skip_auth_routes": []string{"^/open/"},
}

// spoofed are client-sent copies of our identity headers, the signed
// assertion's and the configured ones.
var spoofed = http.Header{
	"X-Forwarded-User": {"forged"}, "X-Forwarded-Email": {"forged"}, "X-Forwarded-Access-Token": {"forged"},
	"X-Auth-Request-User": {"forged"}, "X-Zitadel-Ext-Authz-Jwt": {"forged"}, "X-Tenant": {"forged"}, "X-Id-Token": {"forged"},
}

// forgedSeen are the upstream's headers that still carry a forged value.
func forgedSeen(t *testing.T, r *response) []string {
	t.Helper()
	var out []string
	for k, v := range upstreamSaw(t, r).Headers {
		if v == "forged" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// With Envoy sending Check only the headers it reads (allowed_headers as
// check-envoy says for the configuration), a client-sent identity header,
// assertion or configured header still never reaches the upstream: not
// past a session, not on a route that needs no login. The shipped list
// without the configuration's own names lets a forged claim header
// through, and check-envoy says so before deploying.
func TestSpoofedHeadersWithTheNarrowedList(t *testing.T) {
	t.Run("the list check-envoy asks for", func(t *testing.T) {
		st := startStack(t, stackOptions{config: spoofConfig})
		lists, _ := envoy.HeaderLists(st.Server.envoyFor(t, nil))
		if !lists[0].Sends("x-tenant") || !lists[0].Sends("x-id-token") || lists[0].Sends("user-agent") {
			t.Fatalf("Envoy's allowed_headers: want the shipped list with x-tenant and x-id-token, got %v", lists[0].Allowed)
		}
		alice := newBrowser(t, "alice", "alice-password")
		for k, v := range spoofed {
			alice.header[k] = v
		}
		r := st.login(t, alice, "/")
		if got := forgedSeen(t, r); len(got) > 0 {
			t.Errorf("a session: the upstream got forged %v", got)
		}
		if saw := upstreamSaw(t, r); saw.Headers["x-forwarded-user"] != "user-alice" {
			t.Errorf("a session: the upstream got x-forwarded-user %q, want user-alice", saw.Headers["x-forwarded-user"])
		}
		anon := newBrowser(t, "", "")
		if got := forgedSeen(t, anon.do(http.MethodGet, st.Front.URL+"/open/page", spoofed)); len(got) > 0 {
			t.Errorf("skip_auth_routes: the upstream got forged %v", got)
		}
	})
	t.Run("the shipped list as is", func(t *testing.T) {
		st := startStack(t, stackOptions{config: spoofConfig, envoyAsIs: true})
		anon := newBrowser(t, "", "")
		if got := forgedSeen(t, anon.do(http.MethodGet, st.Front.URL+"/open/page", spoofed)); !slices.Equal(got, []string{"x-id-token", "x-tenant"}) {
			t.Errorf("skip_auth_routes: the upstream got forged %v, want x-id-token and x-tenant (Check never saw them)", got)
		}
		out, err := exec.Command(serverBin, "check-envoy", "--config", st.Server.ConfigPath, filepath.Join("..", "envoy", "envoy.yaml")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "ERROR: allowed_headers leaves out x-tenant") || !strings.Contains(string(out), "leaves out x-id-token") {
			t.Errorf("check-envoy --config on the shipped list: %v, want exit 1 naming x-tenant and x-id-token\n%s", err, out)
		}
	})
}
