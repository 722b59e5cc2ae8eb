package envoy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1 "istio.io/api/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
)

// manifests is what envoy/istio/ decodes to.
type manifests struct {
	mesh        *meshv1alpha1.MeshConfig
	policies    []*securityv1.AuthorizationPolicy
	policyMeta  []metav1.ObjectMeta
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	deployments []*appsv1.Deployment
	services    []*corev1.Service
}

// decodeManifests decodes every YAML document of files strictly, as the
// API server (Kubernetes types) and istiod (Istio protos) would: unknown
// fields and wrong types fail.
func decodeManifests(files map[string][]byte) (*manifests, error) {
	m := &manifests{}
	return m, eachDocument(files, m.add)
}

// documentSeparator splits a multi-document YAML file.
var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// eachDocument hands every non-empty YAML document of files to add as
// JSON; an error names the file and the document.
func eachDocument(files map[string][]byte, add func(js []byte) error) error {
	for name, data := range files {
		for i, doc := range documentSeparator.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err == nil {
				err = add(js)
			}
			if err != nil {
				return fmt.Errorf("%s document %d: %w", name, i+1, err)
			}
		}
	}
	return nil
}

// decodeInto decodes js strictly into a new T and appends it to list.
func decodeInto[T any](js []byte, list *[]*T) error {
	v := new(T)
	if err := strict(js, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// strict decodes as the Kubernetes API server does: case-sensitive field
// names, unknown and duplicate fields refused.
func strict(js []byte, v any) error {
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func (m *manifests) add(js []byte) error {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		return strict(js, &corev1.Namespace{})
	case "v1 ConfigMap":
		cm := &corev1.ConfigMap{}
		if err := strict(js, cm); err != nil {
			return err
		}
		if cm.Name == "istio" && cm.Namespace == "istio-system" {
			mjs, err := yaml.YAMLToJSON([]byte(cm.Data["mesh"]))
			if err != nil {
				return fmt.Errorf("mesh: %w", err)
			}
			m.mesh = &meshv1alpha1.MeshConfig{}
			if err := protojson.Unmarshal(mjs, m.mesh); err != nil {
				return fmt.Errorf("mesh: %w", err)
			}
			return nil
		}
		m.configMaps = append(m.configMaps, cm)
	case "v1 Secret":
		s := &corev1.Secret{}
		if err := strict(js, s); err != nil {
			return err
		}
		m.secrets = append(m.secrets, s)
	case "apps/v1 Deployment":
		d := &appsv1.Deployment{}
		if err := strict(js, d); err != nil {
			return err
		}
		m.deployments = append(m.deployments, d)
	case "v1 Service":
		s := &corev1.Service{}
		if err := strict(js, s); err != nil {
			return err
		}
		m.services = append(m.services, s)
	case "security.istio.io/v1 AuthorizationPolicy":
		var env struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        metav1.ObjectMeta `json:"metadata"`
			Spec            json.RawMessage   `json:"spec"`
		}
		if err := strict(js, &env); err != nil {
			return err
		}
		p := &securityv1.AuthorizationPolicy{}
		if err := protojson.Unmarshal(env.Spec, p); err != nil {
			return fmt.Errorf("AuthorizationPolicy spec: %w", err)
		}
		m.policies = append(m.policies, p)
		m.policyMeta = append(m.policyMeta, env.Metadata)
	default:
		return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
	}
	return nil
}

func readIstio(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	paths, _ := filepath.Glob("istio/*.yaml")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	if len(files) != 3 {
		t.Fatalf("istio/: %d files, want mesh-config.yaml, authorization-policy.yaml, zitadel-ext-authz.yaml", len(files))
	}
	return files
}

func TestIstioManifestsDecodeStrictlyAndFitTogether(t *testing.T) {
	m, err := decodeManifests(readIstio(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.mesh == nil || len(m.mesh.ExtensionProviders) != 1 || len(m.policies) != 4 || len(m.deployments) != 1 || len(m.services) != 1 || len(m.secrets) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("decoded %+v", m)
	}
	provider := m.mesh.ExtensionProviders[0]
	grpc := provider.GetEnvoyExtAuthzGrpc()
	if grpc == nil {
		t.Fatal("extension provider is not envoyExtAuthzGrpc")
	}
	if d := grpc.GetTimeout().AsDuration(); d < time.Second || d > 10*time.Second {
		t.Errorf("provider timeout %v: must be explicit (Istio's default is 600 s) and cover a code exchange", d)
	}
	if grpc.FailOpen || grpc.StatusOnError != "503" {
		t.Errorf("failOpen %v, statusOnError %q: want fail closed with 503", grpc.FailOpen, grpc.StatusOnError)
	}

	// Both CUSTOM AuthorizationPolicies (two apps, two namespaces) name the
	// one provider, and each workload has a DENY guard beside it: only its
	// own hosts (the app is chosen by host, so another host would be judged
	// by another app), and no identity header spelled with underscores.
	customs := 0
	for i, pol := range m.policies {
		switch pol.GetAction().String() {
		case "CUSTOM":
			customs++
			if pol.GetProvider().GetName() != provider.Name {
				t.Errorf("policy %s provider %q, want %q", m.policyMeta[i].Namespace, pol.GetProvider().GetName(), provider.Name)
			}
			guarded := false
			for j, g := range m.policies {
				if g.GetAction().String() == "DENY" && m.policyMeta[j].Namespace == m.policyMeta[i].Namespace &&
					maps.Equal(g.GetSelector().GetMatchLabels(), pol.GetSelector().GetMatchLabels()) {
					guarded = guardsHostsAndUnderscores(t, g)
					// A host the CUSTOM rule leaves out (blog.example.com:443
					// where it lists blog.example.com) would get neither the
					// Check nor the guard: the guard lets through exactly the
					// hosts the Check covers.
					hosts, through := operationHosts(pol, (*securityv1.Operation).GetHosts), operationHosts(g, (*securityv1.Operation).GetNotHosts)
					if hosts != nil && !slices.Equal(through, hosts) {
						t.Errorf("policy %s: the guard lets %v through, the Check covers %v: a host between them reaches the pods unchecked", m.policyMeta[i].Namespace, through, hosts)
					}
				}
			}
			if !guarded {
				t.Errorf("policy %s: no DENY guard for foreign hosts and underscore identity headers", m.policyMeta[i].Namespace)
			}
		case "DENY":
		default:
			t.Errorf("policy %s: action %v", m.policyMeta[i].Namespace, pol.GetAction())
		}
	}
	if customs != 2 {
		t.Errorf("%d CUSTOM policies, want 2", customs)
	}

	// The provider's service:port is our Service's port named grpc.
	svc := m.services[0]
	if want := svc.Name + "." + svc.Namespace + ".svc.cluster.local"; grpc.Service != want {
		t.Errorf("provider service %q, want %q", grpc.Service, want)
	}
	var grpcPort *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if p.Name == "grpc" {
			grpcPort = &svc.Spec.Ports[i]
		}
	}
	if grpcPort == nil || uint32(grpcPort.Port) != grpc.Port {
		t.Fatalf("Service ports %+v: want one named grpc on port %d", svc.Spec.Ports, grpc.Port)
	}

	// The Deployment: selected by the Service, probes on the ops port,
	// non-root, read-only root filesystem, resource requests.
	d := m.deployments[0]
	pod := d.Spec.Template.Spec
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s doesn't select the pods", k, v)
		}
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if grpcPort.TargetPort.String() != "grpc" || ports["grpc"] == 0 {
		t.Errorf("Service grpc targetPort %v, container ports %v", grpcPort.TargetPort.String(), ports)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %+v liveness %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod must run as non-root")
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("container must have a read-only root filesystem and no privilege escalation")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("container needs cpu and memory requests")
	}

	// The ConfigMap's config.toml plus the Secret's values (as the env the
	// Deployment sets) is a configuration the server loads, listening on
	// the ports the Deployment declares.
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	// The Secret volume's files, where the Deployment mounts them (moved
	// under dir, as the config's paths are).
	text := m.configMaps[0].Data["config.toml"]
	for _, mount := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != mount.Name || v.Secret == nil {
				continue
			}
			if v.Secret.SecretName != m.secrets[0].Name {
				t.Errorf("volume %s mounts secret %q", v.Name, v.Secret.SecretName)
			}
			local := filepath.Join(dir, filepath.Base(mount.MountPath))
			os.MkdirAll(local, 0o700)
			for _, item := range v.Secret.Items {
				val, ok := m.secrets[0].StringData[item.Key]
				if !ok {
					t.Errorf("volume %s: the Secret has no key %s", v.Name, item.Key)
				}
				os.WriteFile(filepath.Join(local, item.Path), []byte(val), 0o600)
			}
			text = strings.ReplaceAll(text, mount.MountPath+"/", local+"/")
		}
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	envs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			if _, ok := m.secrets[0].StringData[e.ValueFrom.SecretKeyRef.Key]; !ok || e.ValueFrom.SecretKeyRef.Name != m.secrets[0].Name {
				t.Errorf("env %s refers to a missing secret key %v", e.Name, e.ValueFrom.SecretKeyRef)
			}
			envs[e.Name] = "0123456789abcdef0123456789abcdef" // a valid stand-in for CHANGE ME
		}
	}
	if want := c.VolumeMounts[0].MountPath + "/config.toml"; len(c.Args) != 3 || c.Args[0] != "serve" || c.Args[2] != want {
		t.Errorf("args %v, want serve --config %s (the mounted ConfigMap)", c.Args, want)
	}
	cfg, _, err := config.Load([]string{"--config", path}, func(k string) string { return envs[k] })
	if err != nil {
		t.Fatalf("ConfigMap config.toml: %v", err)
	}
	// Istio sends no context_extensions: every app must be chosen by host,
	// and the blog policy covers the blog app's hosts.
	if len(cfg.Apps) != 1 || !cfg.HasDefaultApp() {
		t.Fatalf("apps: %d, default %v; want the default app and one entry", len(cfg.Apps), cfg.HasDefaultApp())
	}
	for _, a := range cfg.Apps {
		if len(a.Hosts) == 0 {
			t.Errorf("apps[%s] has no hosts: unreachable through Istio", a.Name)
		}
		if a.OIDC.ClientSecret == "" || strings.Contains(text, a.OIDC.ClientSecret) {
			t.Errorf("apps[%s]: client secret not read from the mounted Secret", a.Name)
		}
		covered := false
		for _, pol := range m.policies {
			for _, r := range pol.GetRules() {
				for _, to := range r.GetTo() {
					if slices.Equal(to.GetOperation().GetHosts(), a.Hosts) {
						covered = true
					}
				}
			}
		}
		if !covered {
			t.Errorf("no AuthorizationPolicy covers apps[%s]'s hosts %v", a.Name, a.Hosts)
		}
	}
	if !strings.HasSuffix(cfg.GRPCAddress, fmt.Sprint(":", ports["grpc"])) || !strings.HasSuffix(cfg.HTTPAddress, fmt.Sprint(":", ports["http"])) {
		t.Errorf("server listens on %s and %s, Deployment declares %v", cfg.GRPCAddress, cfg.HTTPAddress, ports)
	}
	if c.ReadinessProbe.HTTPGet.Port.String() != "http" {
		t.Errorf("probes use port %v, want the ops port named http", c.ReadinessProbe.HTTPGet.Port.String())
	}
}

// operationHosts collects one host list of every operation of p's rules:
// (*Operation).GetHosts for a CUSTOM rule (nil: every host), GetNotHosts
// for a DENY guard (the hosts it lets through).
func operationHosts(p *securityv1.AuthorizationPolicy, list func(*securityv1.Operation) []string) []string {
	var hosts []string
	for _, r := range p.GetRules() {
		for _, to := range r.GetTo() {
			hosts = append(hosts, list(to.GetOperation())...)
		}
	}
	return hosts
}

// guardsHostsAndUnderscores: g refuses hosts but the workload's own
// (notHosts) and every identity header of CONTRACT.md §3 spelled with '_'.
func guardsHostsAndUnderscores(t *testing.T, g *securityv1.AuthorizationPolicy) bool {
	t.Helper()
	hosts := false
	refused := map[string]bool{}
	for _, r := range g.GetRules() {
		for _, to := range r.GetTo() {
			if len(to.GetOperation().GetNotHosts()) > 0 {
				hosts = true
			}
		}
		for _, c := range r.GetWhen() {
			if name, ok := strings.CutPrefix(c.GetKey(), "request.headers["); ok && slices.Equal(c.GetValues(), []string{"*"}) {
				refused[strings.TrimSuffix(name, "]")] = true
			}
		}
	}
	for _, h := range []string{"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username", "x-forwarded-access-token",
		"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-preferred-username", "x-auth-request-access-token"} {
		if u := strings.ReplaceAll(h, "-", "_"); !refused[u] {
			t.Errorf("the DENY guard lets %s through", u)
			return false
		}
	}
	return hosts
}

func TestIstioManifestsRejectMistakes(t *testing.T) {
	cases := []struct{ file, old, new string }{
		{"mesh-config.yaml", "envoyExtAuthzGrpc:", "envoyExtAuthzGRPC:"},
		{"mesh-config.yaml", "timeout: 6s", "timeout: six seconds"},
		// An HTTP-provider-only field on the gRPC provider (envoy-ext-authz.md §5).
		{"mesh-config.yaml", "failOpen: false", "includeRequestHeadersInCheck: [cookie]"},
		{"authorization-policy.yaml", "notPaths:", "notPath:"},
		{"authorization-policy.yaml", "action: CUSTOM", "action: CUSTOMIZED"},
		{"authorization-policy.yaml", "hosts: [\"blog", "host: [\"blog"},
		{"authorization-policy.yaml", "notHosts: [", "notHost: ["},
		{"authorization-policy.yaml", "action: DENY", "action: REFUSE"},
		{"zitadel-ext-authz.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"},
		{"zitadel-ext-authz.yaml", "containerPort: 9001", "containerPort: grpc9001"},
		{"zitadel-ext-authz.yaml", "  ports:\n  # Named", "  portz:\n  # Named"},
		{"zitadel-ext-authz.yaml", "memory: 64Mi", "memory: lots"},
	}
	for _, tc := range cases {
		t.Run(tc.file+": "+tc.new, func(t *testing.T) {
			files := readIstio(t)
			bad := strings.Replace(string(files[tc.file]), tc.old, tc.new, 1)
			if bad == string(files[tc.file]) {
				t.Fatalf("test setup: %q not in %s", tc.old, tc.file)
			}
			files[tc.file] = []byte(bad)
			if _, err := decodeManifests(files); err == nil {
				t.Errorf("a broken copy of %s decoded without error", tc.file)
			}
		})
	}
}
