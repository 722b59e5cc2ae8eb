package envoy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
)

// The Helm chart (charts/zitadel-ext-authz), rendered with Helm's own
// engine as `helm install` would, in three value sets: every document
// decodes strictly into its Kubernetes type, the configuration it renders
// loads in our config loader, and the Istio and Envoy Gateway examples
// point at its Service.

const chartDir = "../charts/zitadel-ext-authz"

// rendered is a chart render, decoded.
type rendered struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
	monitors    []map[string]any // ServiceMonitor: no Go type here; checked by shape
	notes       string
}

func render(t *testing.T, ch *chart.Chart, values map[string]any, apis ...string) (*rendered, error) {
	t.Helper()
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(caps.APIVersions, apis...)
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "zitadel-ext-authz", Namespace: "zitadel-ext-authz", IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	r := &rendered{}
	for name, text := range out {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = text
			continue
		}
		if strings.HasSuffix(name, ".tpl") {
			continue
		}
		if err := eachDocument(map[string][]byte{name: []byte(text)}, r.add); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *rendered) add(js []byte) error {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		return decodeInto(js, &r.deployments)
	case "v1 Service":
		return decodeInto(js, &r.services)
	case "v1 ConfigMap":
		return decodeInto(js, &r.configMaps)
	case "v1 Secret":
		return decodeInto(js, &r.secrets)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(js, &r.pdbs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(js, &r.hpas)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(js, &r.policies)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return err
		}
		r.monitors = append(r.monitors, m)
		return nil
	}
	return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
}

// check says what of a render doesn't hold together: the Deployment's
// Secret, ports, probes and security; the configuration the server would
// load from the ConfigMap and the Secret.
func (r *rendered) check(t *testing.T, secretValues map[string]string) error {
	if len(r.deployments) != 1 || len(r.services) != 1 || len(r.configMaps) != 1 {
		return fmt.Errorf("want one Deployment, Service and ConfigMap; got %d %d %d", len(r.deployments), len(r.services), len(r.configMaps))
	}
	d, svc := r.deployments[0], r.services[0]
	pod := d.Spec.Template.Spec
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			return fmt.Errorf("the Service's selector %s=%s doesn't select the pods", k, v)
		}
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] == 0 || ports["http"] == 0 || servicePort(svc, "grpc") == 0 {
		return fmt.Errorf("ports: container %v, service %v", ports, svc.Spec.Ports)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		return fmt.Errorf("probes: %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		return fmt.Errorf("the pod must run as non-root with a read-only root filesystem")
	}
	cfg, err := r.serverConfig(t, secretValues)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(cfg.GRPCAddress, fmt.Sprint(":", ports["grpc"])) || !strings.HasSuffix(cfg.HTTPAddress, fmt.Sprint(":", ports["http"])) {
		return fmt.Errorf("server listens on %s and %s, the Deployment declares %v", cfg.GRPCAddress, cfg.HTTPAddress, ports)
	}
	return nil
}

// serverConfig is the configuration the server would load: config.toml,
// plus the Secret's values as the environment variables the Deployment
// sets, plus its files.
func (r *rendered) serverConfig(t *testing.T, secretValues map[string]string) (*config.Config, error) {
	c := r.deployments[0].Spec.Template.Spec.Containers[0]
	dir := t.TempDir()
	text := r.configMaps[0].Data["config.toml"]
	secretsDir := filepath.Join(dir, "secrets")
	os.MkdirAll(secretsDir, 0o700)
	for k, v := range secretValues {
		os.WriteFile(filepath.Join(secretsDir, k), []byte(v), 0o600)
	}
	text = strings.ReplaceAll(text, "/etc/zitadel-ext-authz-secrets/", secretsDir+"/")
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(text), 0o600)
	env := map[string]string{}
	for _, e := range c.Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			v, ok := secretValues[ref.SecretKeyRef.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: the Secret has no key %s", e.Name, ref.SecretKeyRef.Key)
			}
			env[e.Name] = v
		}
	}
	cfg, _, err := config.Load([]string{"--config", path}, func(k string) string { return env[k] })
	if err != nil {
		return nil, fmt.Errorf("the rendered configuration: %w\n%s", err, text)
	}
	return cfg, nil
}

// validSecrets are what a Secret for the chart holds (stand-ins).
var validSecrets = map[string]string{"client-secret": "s3cret", "cookie-secret": "0123456789abcdef0123456789abcdef"}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// The two non-default value sets.
func appsValues() map[string]any {
	return map[string]any{
		"replicaCount": 3,
		"config": map[string]any{
			"oidc_issuer_url": "https://acme.zitadel.cloud", "client_id": "111@acme", "email_domains": []any{"*"},
			"session_store_type": "redis", "redis_url": "redis://redis:6379",
			"apps": []any{map[string]any{"name": "blog", "hosts": []any{"blog.example.com"}, "client_id": "222@acme",
				"client_secret_file": "/etc/zitadel-ext-authz-secrets/blog-client-secret"}},
		},
		"secrets":        map[string]any{"existingSecret": "", "clientSecret": "s3cret", "cookieSecret": "0123456789abcdef0123456789abcdef", "extraFiles": map[string]any{"blog-client-secret": "b1og"}},
		"autoscaling":    map[string]any{"enabled": true},
		"serviceMonitor": map[string]any{"enabled": true},
	}
}

func leanValues() map[string]any {
	return map[string]any{
		"image":               map[string]any{"repository": "registry.example.com/zea", "tag": "v9.9.9"},
		"config":              map[string]any{"log_level": "debug", "skip_jwt_bearer_tokens": true, "grpc_address": "ignored:1"},
		"service":             map[string]any{"grpcPort": 19001},
		"podDisruptionBudget": map[string]any{"enabled": false},
		"networkPolicy":       map[string]any{"enabled": false},
	}
}

func TestHelmChartRendersInThreeValueSets(t *testing.T) {
	ch := loadChart(t)
	if want := releaseVersion(t); ch.Metadata.AppVersion != want {
		t.Errorf("Chart.yaml appVersion %q, the Makefile releases %q", ch.Metadata.AppVersion, want)
	}
	changelog, err := os.ReadFile("../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^## (v\S+)`).FindStringSubmatch(string(changelog)); m == nil || m[1] != releaseVersion(t) {
		t.Errorf("CHANGELOG.md's newest release %v is not the Makefile's %s", m, releaseVersion(t))
	}
	// helm lint, through the library.
	for _, m := range lint.All(chartDir, nil, "zitadel-ext-authz", false).Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m.Error())
		}
	}

	def, err := render(t, ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := def.check(t, validSecrets); err != nil {
		t.Fatal(err)
	}
	if len(def.secrets) != 0 || len(def.pdbs) != 1 || len(def.policies) != 1 || len(def.hpas) != 0 || len(def.monitors) != 0 {
		t.Errorf("defaults: %d secrets, %d PDBs, %d NetworkPolicies, %d HPAs, %d ServiceMonitors; want 0 1 1 0 0", len(def.secrets), len(def.pdbs), len(def.policies), len(def.hpas), len(def.monitors))
	}
	img := def.deployments[0].Spec.Template.Spec.Containers[0].Image
	if !strings.HasSuffix(img, ":"+ch.Metadata.AppVersion) {
		t.Errorf("image %s: want the appVersion tag", img)
	}
	// The Istio provider and the Envoy Gateway policy point at this Service.
	svc := def.services[0]
	istio, err := decodeManifests(readIstio(t))
	if err != nil {
		t.Fatal(err)
	}
	grpc := istio.mesh.ExtensionProviders[0].GetEnvoyExtAuthzGrpc()
	if grpc.Service != svc.Name+"."+svc.Namespace+".svc.cluster.local" || grpc.Port != uint32(servicePort(svc, "grpc")) {
		t.Errorf("Istio's provider %s:%d is not the chart's Service", grpc.Service, grpc.Port)
	}
	gw, err := decodeGateway(readGateway(t))
	if err != nil {
		t.Fatal(err)
	}
	be := gw.policies[0].Spec.ExtAuth.GRPC.BackendRefs[0]
	if string(be.Name) != svc.Name || string(*be.Namespace) != svc.Namespace || int32(*be.Port) != servicePort(svc, "grpc") {
		t.Errorf("Envoy Gateway's backend %v is not the chart's Service", be.BackendObjectReference)
	}

	apps, err := render(t, ch, appsValues(), "monitoring.coreos.com/v1/ServiceMonitor")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for k, v := range apps.secrets[0].StringData {
		secrets[k] = v
	}
	if err := apps.check(t, secrets); err != nil {
		t.Fatal(err)
	}
	if len(apps.hpas) != 1 || apps.deployments[0].Spec.Replicas != nil || len(apps.monitors) != 1 {
		t.Errorf("autoscaling and ServiceMonitor: %d HPAs, replicas %v, %d monitors", len(apps.hpas), apps.deployments[0].Spec.Replicas, len(apps.monitors))
	}
	// Without the CRD, no ServiceMonitor even when enabled.
	if noCRD, err := render(t, ch, appsValues()); err != nil || len(noCRD.monitors) != 0 {
		t.Errorf("ServiceMonitor without its CRD: %v, %d", err, len(noCRD.monitors))
	}

	lean, err := render(t, ch, leanValues())
	if err != nil {
		t.Fatal(err)
	}
	if err := lean.check(t, validSecrets); err != nil {
		t.Fatal(err)
	}
	if len(lean.pdbs) != 0 || len(lean.policies) != 0 || lean.deployments[0].Spec.Template.Spec.Containers[0].Image != "registry.example.com/zea:v9.9.9" {
		t.Errorf("lean values: %d PDBs, %d NetworkPolicies, image %s", len(lean.pdbs), len(lean.policies), lean.deployments[0].Spec.Template.Spec.Containers[0].Image)
	}
}

func TestHelmChartRejectsMistakes(t *testing.T) {
	ch := loadChart(t)
	for name, values := range map[string]map[string]any{
		"a typo in a top-level value":      {"replicas": 3},
		"a port that isn't a number":       {"service": map[string]any{"grpcPort": "grpc"}},
		"a secret in config":               {"config": map[string]any{"client_secret": "x"}},
		"a created Secret without secrets": {"secrets": map[string]any{"existingSecret": ""}},
		"a bad app name":                   {"config": map[string]any{"apps": []any{map[string]any{"name": "Blog!"}}}},
	} {
		if _, err := render(t, ch, values); err == nil {
			t.Errorf("%s: rendered without error", name)
		}
	}
	// A broken template: the rendered Deployment no longer decodes.
	broken := loadChart(t)
	for _, f := range broken.Templates {
		if f.Name == "templates/deployment.yaml" {
			f.Data = []byte(strings.Replace(string(f.Data), "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1))
		}
	}
	if _, err := render(t, broken, nil); err == nil {
		t.Error("a Deployment with a misspelt field decoded")
	}
	// A config value the server refuses: the render loads, the check fails.
	bad, err := render(t, ch, map[string]any{"config": map[string]any{"cookie_samesite": "sometimes"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.check(t, validSecrets); err == nil || !strings.Contains(err.Error(), "cookie_samesite") {
		t.Errorf("a configuration the server refuses passed: %v", err)
	}
}

// releaseVersion is the Makefile's RELEASE.
func releaseVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RELEASE\s*\?=\s*(\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("no RELEASE in the Makefile")
	}
	return m[1]
}
