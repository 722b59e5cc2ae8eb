package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// Every shipped deployment file sets only route keys zitadel-ext-authz
// knows, with values it can read (check-envoy's check; make test runs it
// on every file here and on the rendered chart).
func TestShippedFilesHaveOnlyKnownRouteKeys(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob("*/*.yaml")
	files = append(files, more...)
	files = append(files, "../docker-compose.yml")
	found := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		settings, err := RouteSettings(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range settings {
			found++
			if p := authz.CheckRouteKeys(s.Extensions, nil); p != nil {
				t.Errorf("%s: %s: %v", f, s.Where, p)
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d context_extensions in the shipped files; envoy.yaml alone has more", found)
	}
	for _, r := range renderChart(t, appsValues()) {
		settings, err := RouteSettings([]byte(r))
		if err != nil {
			t.Fatalf("rendered chart: %v", err)
		}
		for _, s := range settings {
			if p := authz.CheckRouteKeys(s.Extensions, nil); p != nil {
				t.Errorf("rendered chart: %s: %v", s.Where, p)
			}
		}
	}
}

// A typo in a copy of envoy.yaml is found, with where it is.
func TestRouteSettingsFindATypo(t *testing.T) {
	broken := strings.Replace(string(Config), "allowed_groups:", "allowed_group:", 1)
	if broken == string(Config) {
		t.Fatal("envoy.yaml has no allowed_groups to break")
	}
	settings, err := RouteSettings([]byte(broken))
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, s := range settings {
		for _, p := range authz.CheckRouteKeys(s.Extensions, nil) {
			problems = append(problems, s.Where+": "+p.String())
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], `unknown key "allowed_group" (did you mean allowed_groups?)`) || !strings.Contains(problems[0], "routes[") {
		t.Fatalf("problems: %q", problems)
	}
}

// renderChart renders the Helm chart with values as `helm install` would:
// each file's text.
func renderChart(t *testing.T, values map[string]any) []string {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "zitadel-ext-authz", Namespace: "zitadel-ext-authz", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for name, text := range out {
		if strings.HasSuffix(name, ".yaml") {
			texts = append(texts, text)
		}
	}
	if len(texts) == 0 {
		t.Fatal("the chart rendered nothing")
	}
	return texts
}
