package integration_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// oauth2-proxy configurations as people write them (testdata/oauth2-proxy:
// ZITADEL's guide, the Helm chart's rendering with its variables and
// flags, environment only, flags only, Redis standalone and Sentinel, and
// one per group of keys) each start as they are, and no option we apply
// is warned about as ignored.
func TestOAuth2ProxyCorpus(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	rds := startRedis(t)
	sn := startRedisSentinel(t, "", "", nil)
	c := devidp.DefaultClient()
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	os.WriteFile(secretFile, []byte(c.Secret), 0o600)
	subst := strings.NewReplacer("{{ISSUER}}", idp.Issuer, "{{CLIENT_ID}}", c.ID, "{{CLIENT_SECRET}}", c.Secret, "{{COOKIE_SECRET}}", testCookieSecret,
		"{{SECRET_FILE}}", secretFile, "{{REDIS_ADDR}}", rds.addr, "{{SENTINEL_ADDR}}", sn.SentinelAddr, "{{SENTINEL_MASTER}}", sn.name)
	files, _ := filepath.Glob("testdata/oauth2-proxy/*")
	cases := map[string]map[string]string{} // name → extension → substituted content
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ext := filepath.Ext(f)
		name := strings.TrimSuffix(filepath.Base(f), ext)
		if cases[name] == nil {
			cases[name] = map[string]string{}
		}
		cases[name][ext] = subst.Replace(string(data))
	}
	if len(cases) < 10 {
		t.Fatalf("%d configurations in testdata/oauth2-proxy, want at least 10", len(cases))
	}
	lines := func(s string) []string {
		var out []string
		for l := range strings.SplitSeq(s, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				out = append(out, l)
			}
		}
		return out
	}
	for name, parts := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"serve"}
			if cfg, ok := parts[".cfg"]; ok {
				path := filepath.Join(t.TempDir(), "oauth2-proxy.cfg")
				os.WriteFile(path, []byte(cfg), 0o600)
				args = append(args, "--config", path)
			}
			args = append(args, lines(parts[".args"])...)
			// Last, so they win: our listeners on free ports, JSON logs.
			args = append(args, "--grpc-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--log-format=json")
			cmd := exec.Command(serverBin, args...)
			cmd.Env = append(os.Environ(), lines(parts[".env"])...)
			srv := startCmd(t, cmd)
			srv.waitReady(t)
			for line := range strings.SplitSeq(srv.Logs(), "\n") {
				var l struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &l) != nil || l.Level != "WARN" {
					continue
				}
				if strings.Contains(l.Msg, "unknown key") {
					t.Errorf("an unknown key: %s", l.Msg)
				}
				key, _, _ := strings.Cut(l.Msg, ":")
				refused := strings.Contains(l.Msg, "ignored") || strings.Contains(l.Msg, "not supported") || strings.Contains(l.Msg, "no effect")
				if applied, known := config.OAuth2ProxyApplied(key); known && applied && refused {
					t.Errorf("an option we apply is warned as ignored: %s", l.Msg)
				}
			}
		})
	}
}
