package envoy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
)

// composeConfig is the demo stack's configuration (docker-compose.yml):
// the template with what zitadel-bootstrap adds.
func composeConfig(t *testing.T) *config.Config {
	t.Helper()
	env := map[string]string{
		"ZITADEL_EXT_AUTHZ_CLIENT_ID": "1234@demo", "ZITADEL_EXT_AUTHZ_CLIENT_SECRET": "s3cret",
		"ZITADEL_EXT_AUTHZ_INTROSPECTION_CLIENT_ID": "5678@demo", "ZITADEL_EXT_AUTHZ_INTROSPECTION_CLIENT_SECRET": "s3cret",
	}
	cfg, _, err := config.Load([]string{"--config", "compose/zitadel-ext-authz.toml"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// chartConfig is the configuration the Helm chart renders with values.
func chartConfig(t *testing.T, values map[string]any, secrets map[string]string) *config.Config {
	t.Helper()
	r, err := render(t, loadChart(t), values)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := r.serverConfig(t, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// shippedPairs are the deployment files with the configurations shipped
// to run with them: envoy.yaml with the demo stack's, and Envoy Gateway's
// and Istio's files with the Helm chart's.
func shippedPairs(t *testing.T) []struct {
	file    string
	configs map[string]*config.Config
} {
	chart := map[string]*config.Config{
		"the chart's defaults": chartConfig(t, nil, validSecrets),
		"the chart with apps":  chartConfig(t, appsValues(), map[string]string{"client-secret": "s3cret", "cookie-secret": "0123456789abcdef0123456789abcdef", "blog-client-secret": "b1og"}),
		"a lean chart":         chartConfig(t, leanValues(), validSecrets),
	}
	return []struct {
		file    string
		configs map[string]*config.Config
	}{
		{"envoy.yaml", map[string]*config.Config{"the demo stack's": composeConfig(t)}},
		{"gateway/security-policy.yaml", chart},
		{"istio/mesh-config.yaml", chart},
	}
}

// leftOut are the headers cfg reads that a list of data leaves out.
func leftOut(t *testing.T, data []byte, cfg *config.Config) []string {
	t.Helper()
	lists, err := HeaderLists(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lists {
		out = append(out, l.Leaves(config.HeaderNames(cfg.RequestHeaders()))...)
	}
	return out
}

// The acceptance test of issue 36: every header list shipped (envoy.yaml's
// allowed_headers, the SecurityPolicy's headersToExtAuth; Istio's gRPC
// provider has none, so its sidecars send every header) sends Check each
// header the configurations shipped with it read. And it catches a
// header taken off: for each name on a list that a configuration needs,
// a copy of the file without it fails.
func TestShippedHeaderListsSendWhatTheConfigurationsRead(t *testing.T) {
	for _, p := range shippedPairs(t) {
		data, err := os.ReadFile(p.file)
		if err != nil {
			t.Fatal(err)
		}
		for what, cfg := range p.configs {
			if left := leftOut(t, data, cfg); len(left) > 0 {
				t.Errorf("%s leaves out %v, which %s configuration reads (zitadel-ext-authz check-config says why)", p.file, left, what)
			}
			for _, name := range config.HeaderNames(cfg.RequestHeaders()) {
				// The name's line: "- exact: cookie" (Envoy) or "- cookie".
				line := regexp.MustCompile(`(?m)^\s*- (exact: )?` + regexp.QuoteMeta(name) + `\n`)
				if !line.Match(data) {
					continue // not on this file's list (underscored, or no list)
				}
				dropped := line.ReplaceAll(data, nil)
				if left := leftOut(t, dropped, cfg); !slices.Equal(left, []string{name}) {
					t.Errorf("%s without %s: the check finds %v left out, want [%s]", p.file, name, left, name)
				}
			}
		}
	}
}

// Istio's gRPC provider can't narrow what its sidecars send: the shipped
// mesh config has no list, and says why.
func TestIstioSendsEveryHeader(t *testing.T) {
	data, err := os.ReadFile("istio/mesh-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if lists, err := HeaderLists(data); err != nil || len(lists) != 0 {
		t.Fatalf("istio/mesh-config.yaml: %d header lists (%v), want none", len(lists), err)
	}
	if !strings.Contains(string(data), "includeRequestHeadersInCheck") {
		t.Error("istio/mesh-config.yaml should say why it has no includeRequestHeadersInCheck")
	}
}
