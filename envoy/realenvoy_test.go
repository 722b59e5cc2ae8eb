package envoy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
)

// The real Envoy (the pinned release) accepts envoy.yaml exactly as shipped,
// and refuses broken copies: the schema test above is a proxy for this one.
func TestRealEnvoyValidatesTheShippedFile(t *testing.T) {
	bin, err := envoyproc.Find()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := envoyproc.BinaryVersion(bin); err != nil || v != envoyproc.Version {
		t.Fatalf("envoy at %s is %q (%v), want the pinned %s; %s", bin, v, err, envoyproc.Version, envoyproc.InstallHint)
	}
	validate := func(cfg []byte) (string, error) {
		path := filepath.Join(t.TempDir(), "envoy.yaml")
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--mode", "validate", "-c", path, "--log-level", "error").CombinedOutput()
		return string(out), err
	}
	if out, err := validate(envoy.Config); err != nil {
		t.Fatalf("envoy --mode validate envoy.yaml: %v\n%s", err, out)
	}
	for name, tc := range map[string]struct{ old, new string }{
		"typo in a field":      {"failure_mode_allow: false", "failure_mode_alow: false"},
		"unknown typed_config": {"ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthzz\n"},
		"unknown cluster":      {"route: { cluster: echo }", "route: { cluster: nowhere }"},
	} {
		bad := strings.Replace(string(envoy.Config), tc.old, tc.new, 1)
		if bad == string(envoy.Config) {
			t.Fatalf("test setup: %q not found in envoy.yaml", tc.old)
		}
		if out, err := validate([]byte(bad)); err == nil {
			t.Errorf("%s: the real Envoy accepted the broken copy:\n%s", name, out)
		}
	}
}

// One Envoy release everywhere: the pin make tools installs, the image
// docker compose runs, and the version the launcher expects.
func TestOneEnvoyVersion(t *testing.T) {
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(makefile), "\nENVOY_VERSION := "+envoyproc.Version+"\n") {
		t.Errorf("Makefile's ENVOY_VERSION is not %s", envoyproc.Version)
	}
	compose, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), "image: envoyproxy/envoy:v"+envoyproc.Version+"\n") {
		t.Errorf("docker-compose.yml does not run envoyproxy/envoy:v%s", envoyproc.Version)
	}
}

// The Kubernetes manifest pins the release tag make image builds, never
// :latest.
func TestManifestPinsTheReleaseImage(t *testing.T) {
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	release := regexp.MustCompile(`(?m)^RELEASE\s+\?=\s+(v\d+\.\d+\.\d+)$`).FindSubmatch(makefile)
	image := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)$`).FindSubmatch(makefile)
	if release == nil || image == nil {
		t.Fatal("Makefile lacks RELEASE ?= vX.Y.Z or IMAGE ?= …")
	}
	manifest, err := os.ReadFile("istio/zitadel-ext-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s+image: (\S+)`).FindAllSubmatch(manifest, -1)
	if len(images) != 1 {
		t.Fatalf("want one image in the manifest, got %d", len(images))
	}
	if want := string(image[1]) + ":" + string(release[1]); string(images[0][1]) != want {
		t.Errorf("manifest image %s, want %s (make image's tag)", images[0][1], want)
	}
}
