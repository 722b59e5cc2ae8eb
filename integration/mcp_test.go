package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// The MCP test's Node parts (integration/mcp): package.json pins the
// official MCP TypeScript SDK, make tools installs it (npm ci).
const (
	mcpDir    = "mcp"
	mcpSDK    = "@modelcontextprotocol/sdk"
	mcpRoute  = "/mcp"
	mcpPRM    = "/.well-known/oauth-protected-resource"
	mcpUser   = "bob"
	mcpUserID = "user-bob"
)

// mcpNode is node, once integration/mcp/node_modules holds the pinned SDK.
// Without them the test skips, saying how to install them, except under CI
// (CI set), where make tools has installed them and the test fails instead.
func mcpNode(t *testing.T) string {
	t.Helper()
	missing := func(why string) string {
		msg := why + "; run `make tools` (npm ci --prefix integration/mcp: Node.js 18+ with npm, and the npm registry)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
		return ""
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return missing("node is not on PATH")
	}
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var installed struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(mcpDir, "package.json"))
	if err != nil || json.Unmarshal(b, &pinned) != nil || pinned.Dependencies[mcpSDK] == "" {
		t.Fatalf("integration/mcp/package.json does not pin %s: %v", mcpSDK, err)
	}
	b, err = os.ReadFile(filepath.Join(mcpDir, "node_modules", mcpSDK, "package.json"))
	if err != nil {
		return missing("integration/mcp/node_modules lacks " + mcpSDK)
	}
	if json.Unmarshal(b, &installed) != nil || installed.Version != pinned.Dependencies[mcpSDK] {
		// Stale modules are not missing ones: never a skip.
		t.Fatalf("integration/mcp/node_modules has %s %q, package.json pins %q: run `make tools`", mcpSDK, installed.Version, pinned.Dependencies[mcpSDK])
	}
	return node
}

// startMCPServer runs integration/mcp/server.mjs (the SDK's McpServer with
// the whoami tool) on a free port and returns its base URL; it stops when
// the test ends, and a failing test shows what it wrote.
func startMCPServer(t *testing.T, node string) string {
	t.Helper()
	cmd := exec.Command(node, filepath.Join(mcpDir, "server.mjs"))
	var logs testkit.Buffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the MCP server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("MCP server log:\n%s", logs.String())
		}
	})
	// Its first line names the address; the rest is drained to the log.
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
				fmt.Fprintln(&logs, sc.Text())
			}
		}
		close(first)
	}()
	select {
	case line, ok := <-first:
		base, found := strings.CutPrefix(line, "listening ")
		if !ok || !found {
			t.Fatalf("MCP server: first line %q, want \"listening URL\"\n%s", line, logs.String())
		}
		return base
	case <-time.After(20 * time.Second):
		t.Fatalf("MCP server: no address within 20s\n%s", logs.String())
	}
	return ""
}

// mcpReport is what client.mjs prints: each HTTP request the SDK made, the
// sign-in's hops, what discovery found and the tool's answer.
type mcpReport struct {
	Requests []struct {
		Method          string `json:"method"`
		URL             string `json:"url"`
		Status          int    `json:"status"`
		WWWAuthenticate string `json:"wwwAuthenticate"`
	} `json:"requests"`
	SignIn    []string `json:"signIn"`
	Discovery struct {
		AuthorizationServerURL string   `json:"authorizationServerUrl"`
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorizationServers"`
		Issuer                 string   `json:"issuer"`
		AuthorizationEndpoint  string   `json:"authorizationEndpoint"`
		TokenEndpoint          string   `json:"tokenEndpoint"`
	} `json:"discovery"`
	AuthorizationRequest struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
	} `json:"authorizationRequest"`
	Tools  []string          `json:"tools"`
	WhoAmI map[string]string `json:"whoami"`
	Error  string            `json:"error"`
}

// request is the index of the first request from index from on that
// matches, or -1.
func (r *mcpReport) request(from int, match func(method, url string, status int) bool) int {
	for i := max(from, 0); i < len(r.Requests); i++ {
		q := r.Requests[i]
		if match(q.Method, q.URL, q.Status) {
			return i
		}
	}
	return -1
}

func (r *mcpReport) String() string {
	var b strings.Builder
	for _, q := range r.Requests {
		fmt.Fprintf(&b, "  %s %s → %d %s\n", q.Method, q.URL, q.Status, q.WWWAuthenticate)
	}
	b.WriteString("  sign-in:\n")
	for _, h := range r.SignIn {
		fmt.Fprintf(&b, "    %s\n", h)
	}
	return b.String()
}

// sameURL compares URLs as the SDK does: a trailing slash doesn't count.
func sameURL(a, b string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") }

// resourceMetadataParam is RFC 9728 §5.1's WWW-Authenticate parameter.
var resourceMetadataParam = regexp.MustCompile(`resource_metadata="([^"]+)"`)

// A real MCP client (the official TypeScript SDK) finds its way to the
// user's identity with nothing but the MCP server's URL behind the real
// Envoy and us: 401 with resource_metadata, our RFC 9728 metadata, the dev
// IdP's discovery from authorization_servers, a code flow with PKCE and
// the resource indicator through the IdP's login form, then a tool call
// that reaches the MCP server as the user.
func TestMCPClientSignsIn(t *testing.T) {
	node := mcpNode(t)
	mcpClient := devidp.MCPClient()
	idp := devidp.StartT(t, devidp.Options{Clients: []devidp.Client{devidp.DefaultClient(), mcpClient}})
	cfg := baseConfig(idp.Issuer)
	cfg["skip_jwt_bearer_tokens"] = true
	cfg["extra_jwt_audiences"] = []string{mcpClient.ID}
	srv := startServer(t, cfg)
	srv.waitReady(t)
	upstream := startMCPServer(t, node)
	// The MCP server is Envoy's upstream (cluster echo); /mcp takes bearer
	// tokens only: a 401 with a challenge, never a login redirect.
	front := startFront(t, frontOptions{
		kind: realEnvoy, grpcAddr: srv.GRPCAddr, opsAddr: srv.HTTPAddr, upstream: upstream,
		config: withRuleRoutes(t, ruleRoute{mcpRoute, map[string]string{"auth": "bearer-only"}}),
	})
	mcpURL := front.URL + mcpRoute

	// Our RFC 9728 metadata through Envoy, at the root and for /mcp
	// (§3.1: the resource's path after the well-known name).
	var scopes []string // /mcp's scopes_supported
	for _, path := range []string{mcpPRM, mcpPRM + mcpRoute} {
		var prm struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
		}
		r := newBrowser(t, "", "").do(http.MethodGet, front.URL+path, http.Header{"Accept": {"application/json"}})
		if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &prm) != nil {
			t.Fatalf("GET %s through Envoy: %s, want 200 and RFC 9728 metadata (JSON)", path, describe(r))
		}
		if !slices.ContainsFunc(prm.AuthorizationServers, func(s string) bool { return sameURL(s, idp.Issuer) }) {
			t.Errorf("GET %s: authorization_servers %q lack the dev IdP %s", path, prm.AuthorizationServers, idp.Issuer)
		}
		if path == mcpPRM+mcpRoute {
			if prm.Resource != mcpURL {
				t.Errorf("GET %s: resource %q, want %q", path, prm.Resource, mcpURL)
			}
			scopes = prm.ScopesSupported
		}
	}
	if !slices.Contains(scopes, "openid") {
		t.Fatalf("scopes_supported of %s %q lack openid, which the dev IdP, like ZITADEL, wants", mcpRoute, scopes)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(mcpDir, "client.mjs"), mcpURL,
		"--client-id", mcpClient.ID, "--issuer", idp.Issuer, "--username", mcpUser, "--password", mcpUser+"-password")
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rep mcpReport
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); jerr != nil {
		t.Fatalf("client.mjs: %v (exit: %v)\nstdout: %s\nstderr: %s", jerr, err, out, stderr.String())
	}
	if err != nil || rep.Error != "" {
		t.Fatalf("client.mjs (exit: %v): %s\nrequests:\n%sstderr: %s", err, rep.Error, &rep, stderr.String())
	}
	t.Logf("the SDK's requests:\n%s", &rep)

	// 1. The first request: our 401 with the metadata's URL.
	first := rep.Requests[0]
	if first.Method != http.MethodPost || first.URL != mcpURL || first.Status != http.StatusUnauthorized {
		t.Fatalf("first request: %s %s → %d, want POST %s → 401", first.Method, first.URL, first.Status, mcpURL)
	}
	m := resourceMetadataParam.FindStringSubmatch(first.WWWAuthenticate)
	if !strings.HasPrefix(first.WWWAuthenticate, "Bearer ") || m == nil {
		t.Fatalf("first request: www-authenticate %q, want Bearer with resource_metadata", first.WWWAuthenticate)
	}
	prmURL := m[1]
	if u, err := url.Parse(prmURL); err != nil || u.Scheme+"://"+u.Host != front.URL || !strings.HasPrefix(u.Path, mcpPRM) {
		t.Errorf("resource_metadata %q: want %s%s…", prmURL, front.URL, mcpPRM)
	}

	// 2. It read that metadata, 3. found the dev IdP there and read its
	// metadata, 4. got a token at its token endpoint, 5. and then got in.
	steps := []struct {
		what  string
		match func(method, u string, status int) bool
	}{
		{"GET resource_metadata → 200", func(method, u string, status int) bool {
			return method == http.MethodGet && u == prmURL && status == http.StatusOK
		}},
		{"GET the dev IdP's metadata → 200", func(method, u string, status int) bool {
			return method == http.MethodGet && status == http.StatusOK &&
				(u == idp.Issuer+"/.well-known/oauth-authorization-server" || u == idp.Issuer+"/.well-known/openid-configuration")
		}},
		{"POST the dev IdP's token endpoint → 200", func(method, u string, status int) bool {
			return method == http.MethodPost && sameURL(u, rep.Discovery.TokenEndpoint) && status == http.StatusOK
		}},
		{"POST " + mcpRoute + " with the token → 200", func(method, u string, status int) bool {
			return method == http.MethodPost && u == mcpURL && status == http.StatusOK
		}},
	}
	at := 0
	for _, s := range steps {
		i := rep.request(at+1, s.match)
		if i < 0 {
			t.Fatalf("no %s after request %d", s.what, at)
		}
		at = i
	}
	if rep.Discovery.Resource != mcpURL {
		t.Errorf("discovery: resource %q, want %q", rep.Discovery.Resource, mcpURL)
	}
	if !sameURL(rep.Discovery.AuthorizationServerURL, idp.Issuer) || rep.Discovery.Issuer != idp.Issuer {
		t.Errorf("discovery: authorization server %q (issuer %q), want the dev IdP %s", rep.Discovery.AuthorizationServerURL, rep.Discovery.Issuer, idp.Issuer)
	}
	if !strings.HasPrefix(rep.Discovery.TokenEndpoint, idp.Issuer+"/") {
		t.Errorf("discovery: token endpoint %q is not the dev IdP's", rep.Discovery.TokenEndpoint)
	}

	// 4. The authorization request: our client, PKCE, the MCP server as
	// the resource (RFC 8707), the loopback redirect URI; the sign-in
	// went through the dev IdP's login form.
	ar := rep.AuthorizationRequest
	if !strings.HasPrefix(ar.Endpoint, idp.Issuer+"/") || ar.Endpoint != rep.Discovery.AuthorizationEndpoint {
		t.Errorf("authorization endpoint %q, want the dev IdP's (%q)", ar.Endpoint, rep.Discovery.AuthorizationEndpoint)
	}
	for k, want := range map[string]string{"client_id": mcpClient.ID, "response_type": "code", "code_challenge_method": "S256", "resource": mcpURL} {
		if ar.Params[k] != want {
			t.Errorf("authorization request: %s=%q, want %q", k, ar.Params[k], want)
		}
	}
	// The SDK asks for the metadata's scopes_supported (SEP-835).
	if got := strings.Fields(ar.Params["scope"]); !slices.Equal(got, scopes) {
		t.Errorf("authorization request: scope %q, want the metadata's scopes_supported %q", got, scopes)
	}
	if !slices.ContainsFunc(rep.SignIn, func(h string) bool { return strings.HasPrefix(h, "POST "+idp.Issuer+"/login/username") }) {
		t.Errorf("the sign-in never posted the dev IdP's login form: %q", rep.SignIn)
	}

	// 5. The tool call reached the MCP server as the user.
	if !slices.Contains(rep.Tools, "whoami") {
		t.Errorf("tools %q lack whoami", rep.Tools)
	}
	// ZITADEL's access tokens carry no email: x-forwarded-email stays unset.
	if rep.WhoAmI["user"] != mcpUserID || rep.WhoAmI["groups"] != "reader" {
		t.Errorf("whoami: %v, want user %s (the dev IdP user's sub) in groups reader (the user's ZITADEL roles)", rep.WhoAmI, mcpUserID)
	}
	waitFor(t, "Envoy's access log line of the tool call with the user", func() bool {
		return strings.Contains(front.Logs(), "[access] POST "+mcpRoute+" 200 sub="+mcpUserID)
	})
}
