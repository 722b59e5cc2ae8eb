package envoy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/pelletier/go-toml/v2"
)

// loadCompose loads docker-compose.yml the way `docker compose` does
// (compose-go, the library Docker Compose is built on), with the schema
// check on.
func loadCompose(t *testing.T, path string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithResolvedPaths(true),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func TestComposeStack(t *testing.T) {
	root, _ := filepath.Abs("..")
	p, err := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bootstrap", "db", "echo", "envoy", "zitadel", "zitadel-ext-authz"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Third-party images are pinned to a version.
	for _, name := range []string{"db", "zitadel", "envoy", "echo"} {
		img := svc(name).Image
		_, tag, ok := strings.Cut(img, ":")
		if !ok || tag == "" || strings.Contains(tag, "latest") {
			t.Errorf("%s: image %q is not pinned", name, img)
		}
	}
	if !strings.HasPrefix(svc("zitadel").Image, "ghcr.io/zitadel/zitadel:v") || !strings.HasPrefix(svc("envoy").Image, "envoyproxy/envoy:v") {
		t.Errorf("images: zitadel %q, envoy %q", svc("zitadel").Image, svc("envoy").Image)
	}

	// Healthchecks where something waits on health.
	for _, name := range []string{"db", "zitadel", "zitadel-ext-authz"} {
		hc := svc(name).HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
	}
	// ZITADEL's first start sets its database up (over a minute on small
	// machines): failing the healthcheck meanwhile stops the demo.
	if hc := svc("zitadel").HealthCheck; hc == nil || hc.StartPeriod == nil || time.Duration(*hc.StartPeriod) < 2*time.Minute {
		t.Errorf("zitadel healthcheck start_period %v, want at least 2m for a slow first start", hc)
	}
	if hc := svc("zitadel-ext-authz").HealthCheck.Test; !slices.Contains(hc, "healthcheck") {
		t.Errorf("zitadel-ext-authz healthcheck %v: the image has no shell, use the healthcheck subcommand", hc)
	}

	// Start order.
	deps := map[string]map[string]string{
		"zitadel":           {"db": types.ServiceConditionHealthy},
		"bootstrap":         {"zitadel": types.ServiceConditionHealthy},
		"zitadel-ext-authz": {"bootstrap": types.ServiceConditionCompletedSuccessfully, "zitadel": types.ServiceConditionHealthy},
		"envoy":             {"zitadel-ext-authz": types.ServiceConditionHealthy, "echo": types.ServiceConditionStarted},
	}
	for name, want := range deps {
		for dep, cond := range want {
			if got, ok := svc(name).DependsOn[dep]; !ok || got.Condition != cond {
				t.Errorf("%s depends on %s: %+v, want condition %s", name, dep, got, cond)
			}
		}
	}

	// Login v1 (no login container) and the PAT for the bootstrap.
	env := svc("zitadel").Environment
	if v := env["ZITADEL_DEFAULTINSTANCE_FEATURES_LOGINV2_REQUIRED"]; v == nil || *v != "false" {
		t.Error("ZITADEL must use login v1 (LOGINV2_REQUIRED=false): the stack has no login container")
	}
	patPath := *env["ZITADEL_FIRSTINSTANCE_PATPATH"]
	bootstrapArgs := flagsOf(svc("bootstrap").Command)
	if bootstrapArgs["pat-file"] != patPath {
		t.Errorf("bootstrap reads the PAT at %q, ZITADEL writes it to %q", bootstrapArgs["pat-file"], patPath)
	}
	if !sharesVolume(svc("zitadel"), svc("bootstrap"), filepath.Dir(patPath)) {
		t.Error("zitadel and bootstrap don't share the PAT volume")
	}
	issuer := "http://" + *env["ZITADEL_EXTERNALDOMAIN"] + ":" + *env["ZITADEL_EXTERNALPORT"]
	if bootstrapArgs["issuer"] != issuer {
		t.Errorf("bootstrap --issuer %q, ZITADEL's external URL %q", bootstrapArgs["issuer"], issuer)
	}

	// Mounts: every bind source exists in the repository.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
				}
			}
		}
	}
	if m := mountAt(svc("envoy"), "/etc/envoy/envoy.yaml"); m == nil || m.Source != filepath.Join(root, "envoy", "envoy.yaml") || !m.ReadOnly {
		t.Errorf("envoy does not mount envoy/envoy.yaml read-only: %+v", m)
	}

	// The bootstrap's output is what the server reads, through one volume.
	out := bootstrapArgs["out"]
	serveArgs := flagsOf(svc("zitadel-ext-authz").Command)
	if serveArgs["config"] != out || !sharesVolume(svc("bootstrap"), svc("zitadel-ext-authz"), filepath.Dir(out)) {
		t.Errorf("server reads %q, bootstrap writes %q (shared volume needed)", serveArgs["config"], out)
	}
	if !svc("zitadel-ext-authz").ReadOnly {
		t.Error("the server's root filesystem should be read-only")
	}

	// The template agrees with the stack: issuer = ZITADEL's external URL,
	// dialled at the zitadel service; gRPC port = envoy.yaml's ext_authz
	// cluster; redirect through Envoy's published port.
	tmplMount := mountAt(svc("bootstrap"), bootstrapArgs["config-template"])
	if tmplMount == nil {
		t.Fatalf("bootstrap template %s not mounted", bootstrapArgs["config-template"])
	}
	data, err := os.ReadFile(tmplMount.Source)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := toml.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl["oidc_issuer_url"] != issuer || tmpl["oidc_issuer_dial_address"] != "zitadel:8080" || bootstrapArgs["dial"] != "zitadel:8080" {
		t.Errorf("template issuer %v dial %v, bootstrap dial %v", tmpl["oidc_issuer_url"], tmpl["oidc_issuer_dial_address"], bootstrapArgs["dial"])
	}
	b, err := Decode(Config)
	if err != nil {
		t.Fatal(err)
	}
	clusters := map[string]string{}
	for _, c := range b.StaticResources.Clusters {
		a := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress()
		clusters[c.Name] = a.Address + ":" + strconv.Itoa(int(a.GetPortValue()))
	}
	if clusters["ext_authz"] != "zitadel-ext-authz:"+portOf(tmpl["grpc_address"]) {
		t.Errorf("envoy.yaml ext_authz cluster %s, server listens on %v", clusters["ext_authz"], tmpl["grpc_address"])
	}
	if clusters["echo"] != "echo:"+*svc("echo").Environment["HTTP_PORT"] {
		t.Errorf("envoy.yaml echo cluster %s, echo listens on %s", clusters["echo"], *svc("echo").Environment["HTTP_PORT"])
	}
	if !strings.HasPrefix(tmpl["redirect_url"].(string), bootstrapArgs["app-url"]+"/") || !publishes(svc("envoy"), 8000) {
		t.Errorf("redirect_url %v, app URL %s: Envoy must publish the port users open", tmpl["redirect_url"], bootstrapArgs["app-url"])
	}
}

func TestComposeRejectsMistakes(t *testing.T) {
	root, _ := filepath.Abs("..")
	orig, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ old, new string }{
		{"healthcheck:\n      test: [\"CMD\", \"/app/zitadel\"", "helthcheck:\n      test: [\"CMD\", \"/app/zitadel\""},
		{"condition: service_completed_successfully", "condition: service_finished"},
		{"read_only: true", "readonly: true"},
		{"      bootstrap:\n        condition", "      bootstrapp:\n        condition"},
	}
	for _, tc := range cases {
		t.Run(tc.new, func(t *testing.T) {
			bad := strings.Replace(string(orig), tc.old, tc.new, 1)
			if bad == string(orig) {
				t.Fatalf("test setup: %q not found", tc.old)
			}
			// Same directory, so the relative bind mounts still resolve.
			path := filepath.Join(root, ".compose-broken-"+strings.NewReplacer(" ", "", ":", "", "\"", "", "\n", "").Replace(tc.new)[:8]+".yml")
			if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			if _, err := loadCompose(t, path); err == nil {
				t.Error("compose-go accepted the broken file")
			}
		})
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// flagsOf reads --name=value arguments.
func flagsOf(cmd types.ShellCommand) map[string]string {
	m := map[string]string{}
	for i, a := range cmd {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			m[k] = v
		} else if strings.HasPrefix(a, "--") && i+1 < len(cmd) {
			m[strings.TrimPrefix(a, "--")] = cmd[i+1]
		}
	}
	return m
}

func mountAt(s types.ServiceConfig, target string) *types.ServiceVolumeConfig {
	for i, v := range s.Volumes {
		if v.Target == target {
			return &s.Volumes[i]
		}
	}
	return nil
}

func sharesVolume(a, b types.ServiceConfig, target string) bool {
	va, vb := mountAt(a, target), mountAt(b, target)
	return va != nil && vb != nil && va.Type == types.VolumeTypeVolume && va.Source == vb.Source
}

func publishes(s types.ServiceConfig, port uint32) bool {
	for _, p := range s.Ports {
		if p.Target == port && p.Published != "" {
			return true
		}
	}
	return false
}

func portOf(addr any) string {
	s, _ := addr.(string)
	_, port, _ := strings.Cut(s, ":")
	return port
}
