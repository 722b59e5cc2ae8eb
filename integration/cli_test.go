package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// zitadelGuideConfig is the oauth2-proxy file from ZITADEL's guide
// (testdata/oauth2-proxy/zitadel-guide.cfg), with only its {placeholders} filled in.
const zitadelGuideConfig = `provider = "oidc"
user_id_claim = "sub"
provider_display_name = "ZITADEL"
redirect_url = "http://127.0.0.1:4180/oauth2/callback"
oidc_issuer_url = "{ISSUER}"
upstreams = [ "https://example.corp.com" ]
email_domains = [ "*" ]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
pass_access_token = true
cookie_secret = "{COOKIE_SECRET}"
skip_provider_button = true
cookie_secure = false
http_address = "127.0.0.1:4180"
# optional, from the same guide:
oidc_groups_claim = "{your_actions_group_key}"
allowed_groups = ["list", "of", "allowed", "roles"]
`

func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, serverBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "zitadel-ext-authz ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

// Contract §1: an invalid config exits non-zero before listening, with one
// line that names the offending key.
func TestInvalidConfigStopsStartup(t *testing.T) {
	cases := []struct {
		name, key string
		change    func(map[string]any)
	}{
		{"missing client_id", "client_id", func(c map[string]any) { delete(c, "client_id") }},
		{"cookie_secret of 10 bytes", "cookie_secret", func(c map[string]any) { c["cookie_secret"] = "0123456789" }},
		{"unparsable issuer", "oidc_issuer_url", func(c map[string]any) { c["oidc_issuer_url"] = "https://{your_domain}.zitadel.cloud" }},
		{"unknown provider", "provider", func(c map[string]any) { c["provider"] = "github" }},
		{"bad redirect_url", "redirect_url", func(c map[string]any) { c["redirect_url"] = "callback" }},
		{"bad regex", "skip_auth_routes", func(c map[string]any) { c["skip_auth_routes"] = []string{"GET=^/(x"} }},
		{"bad duration", "cookie_expire", func(c map[string]any) { c["cookie_expire"] = "a week" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig("http://127.0.0.1:1")
			tc.change(cfg)
			code, _, stderr := runCLI(t, nil, "serve", "--config", writeConfig(t, cfg))
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], tc.key) {
				t.Fatalf("exit %d, stderr %q: want non-zero and one line naming %s", code, stderr, tc.key)
			}
			if strings.Contains(stderr, "listening") {
				t.Fatal("listened before validating")
			}
		})
	}
}

// Contract §2: the ZITADEL guide's oauth2-proxy TOML loads unchanged;
// upstreams is ignored with a warning. Its redirect_url is oauth2-proxy's
// own address, which is our operations listener: no sign-in could finish
// there, so serve warns and check-config fails naming redirect_url and the
// fix, until redirect_url points at Envoy.
func TestZitadelGuideConfigLoadsUnchanged(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	c := devidp.DefaultClient()
	file := strings.NewReplacer("{ISSUER}", idp.Issuer, "{CLIENT_ID}", c.ID, "{CLIENT_SECRET}", c.Secret, "{COOKIE_SECRET}", testCookieSecret).Replace(zitadelGuideConfig)
	// The name oauth2-proxy's docs, Helm chart and packages use: TOML
	// whatever the extension.
	path := filepath.Join(t.TempDir(), "oauth2-proxy.cfg")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(serverBin, "serve", "--config", path, "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--log-format", "json")
	srv := startCmd(t, cmd)
	srv.waitReady(t)
	if !strings.Contains(srv.Logs(), "upstreams: Envoy's job: ignored") {
		t.Errorf("no warning about upstreams:\n%s", srv.Logs())
	}
	code, out, stderr := runCLI(t, nil, "check-config", "--config", path)
	if code != 1 || !strings.Contains(stderr, "redirect_url http://127.0.0.1:4180/oauth2/callback is our own operations listener") ||
		!strings.Contains(stderr, "must come through Envoy") || !strings.Contains(stderr, "http://127.0.0.1:8000/oauth2/callback") {
		t.Errorf("check-config on the guide's file: exit %d, want 1 naming redirect_url and the fix\n%s%s", code, out, stderr)
	}
	// The two lines README's switching section changes: redirect_url
	// through Envoy (here its shipped listener), and nothing else.
	if code, out, stderr := runCLI(t, nil, "check-config", "--config", path, "--redirect-url", "http://127.0.0.1:8000/oauth2/callback"); code != 0 {
		t.Errorf("check-config with redirect_url through Envoy: exit %d\n%s%s", code, out, stderr)
	}
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ops := fmt.Sprintf("127.0.0.1:%d", port) // the guide's shape, on a free port
	srv2 := startCmd(t, exec.Command(serverBin, "serve", "--config", path, "--grpc-address", "127.0.0.1:0", "--log-format", "json",
		"--http-address", ops, "--redirect-url", "http://"+ops+"/oauth2/callback"))
	srv2.waitReady(t)
	if !strings.Contains(srv2.Logs(), "is our own operations listener") {
		t.Errorf("serve with the guide's redirect_url and http_address didn't warn:\n%s", srv2.Logs())
	}
}

// A file that doesn't parse is named with the line and the format tried.
func TestConfigParseErrorNamesFileLineAndFormat(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ file, body, want string }{
		"cfg":  {"oauth2-proxy.cfg", "provider = \"oidc\"\nclient_id = \"x\"\ncookie_secret = = \"y\"\n", "line 3: not valid TOML"},
		"json": {"config.json", "{\n  \"provider\": \"oidc\",\n  \"client_id\" \"x\"\n}\n", "line 3: not valid JSON"},
		"none": {"settings", "provider: oidc\n", "line 1: not valid TOML"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, nil, "serve", "--config", path)
			if code == 0 || !strings.Contains(stderr, path+", "+tc.want) {
				t.Fatalf("exit %d, stderr %q: want the file, %q", code, stderr, tc.want)
			}
		})
	}
}

// The usual ways to ask for help print the usage and exit 0; serve --help
// keeps its key table.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		code, out, stderr := runCLI(t, nil, arg)
		if code != 0 || !strings.Contains(out, "zitadel-ext-authz serve --config FILE") || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, out, stderr)
		}
	}
	code, out, stderr := runCLI(t, nil, "serve", "--help")
	if code != 0 || !strings.Contains(out+stderr, "oidc_issuer_url") || !strings.Contains(out+stderr, "cookie_secret ") {
		t.Errorf("serve --help: exit %d, no key table:\n%s%s", code, out, stderr)
	}
}

// Contract §1: env wins over the file, flags over env; unknown keys warn.
func TestEnvAndFlagsOverrideTheFile(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	cfg["client_secret"] = "wrong-secret-in-file"
	cfg["no_such_key"] = true
	cfg["provider_display_name"] = "FromFile"
	path := writeConfig(t, cfg)
	cmd := exec.Command(serverBin, "serve", "--config", path, "--provider-display-name", "FromFlag")
	cmd.Env = append(os.Environ(), "ZITADEL_EXT_AUTHZ_CLIENT_SECRET="+devidp.DefaultClient().Secret, "ZITADEL_EXT_AUTHZ_PROVIDER_DISPLAY_NAME=FromEnv")
	srv := startCmd(t, cmd)
	srv.waitReady(t)
	if !strings.Contains(srv.Logs(), `unknown key \"no_such_key\"`) {
		t.Errorf("no warning for the unknown key:\n%s", srv.Logs())
	}
	st := frontFor(t, srv)
	b := newBrowser(t, "alice", "alice-password")
	// The env secret works at the token endpoint (the file's would not).
	got := upstreamSaw(t, st.login(t, b, "/"))
	if got.Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("login with the env client_secret: %v", got.Headers)
	}
}

// Contract §1: SIGTERM stops accepting, finishes in-flight Checks, exits 0.
func TestSIGTERMFinishesInFlightChecks(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"idp_timeout": "20s"}})
	b := newBrowser(t, "alice", "alice-password")
	cb := beginLogin(t, st, b, "/landing")
	st.IdP.HangToken()
	result := make(chan *response, 1)
	go func() { result <- b.get(cb.String()) }()
	waitFor(t, "the callback to reach the token endpoint", func() bool { return st.IdP.Calls("/oauth/token") > 0 })
	// Watch gRPC health from before the signal, as a load balancer does.
	conn, err := grpc.NewClient(st.Server.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := watch.Recv(); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before SIGTERM: %v, %v", h, err)
	}
	if err := st.Server.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// NOT_SERVING comes first, while the callback is still in flight.
	if h, err := watch.Recv(); err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after SIGTERM: %v, %v", h, err)
	}
	if r, err := http.Get("http://" + st.Server.HTTPAddr + "/readyz"); err != nil || r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %v, %v; want 503", r, err)
	}
	select {
	case r := <-result:
		t.Fatalf("the in-flight callback ended before its token call did: %s", describe(r))
	default:
	}
	st.IdP.Release()
	resp := <-result
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != st.Front.URL+"/landing" {
		t.Fatalf("in-flight callback during shutdown: got %s, want its 302", describe(resp))
	}
	select {
	case <-st.Server.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	if st.Server.Err() != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", st.Server.Err())
	}
}

func scrape(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// The image has no shell: its HEALTHCHECK and the compose healthcheck run
// `zitadel-ext-authz healthcheck URL`.
func TestHealthcheckSubcommand(t *testing.T) {
	st := startStack(t, stackOptions{})
	if code, _, stderr := runCLI(t, nil, "healthcheck", "http://"+st.Server.HTTPAddr+"/readyz"); code != 0 {
		t.Errorf("healthcheck of a ready server: exit %d, %s", code, stderr)
	}
	code, _, stderr := runCLI(t, nil, "healthcheck", "http://"+st.Server.HTTPAddr+"/no-such-page")
	if code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("healthcheck of a 404: exit %d, %q", code, stderr)
	}
	if err := st.Server.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, nil, "healthcheck", "http://"+st.Server.HTTPAddr+"/readyz"); code != 1 {
		t.Errorf("healthcheck of a stopped server: exit %d, want 1", code)
	}
}
