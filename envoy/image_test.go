package envoy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what can be checked without Docker: the final
// stage is scratch with CA certificates and a non-root user, and the build
// command the Dockerfile runs gives a static binary that starts.
func TestDockerfile(t *testing.T) {
	root, _ := filepath.Abs("..")
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) != 2 || stages[1][1] != "scratch" {
		t.Fatalf("stages %v, want a build stage and a scratch final stage", stages)
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	if !strings.Contains(final, "/etc/ssl/certs/ca-certificates.crt") {
		t.Error("final stage lacks CA certificates (https issuers need them)")
	}
	user := regexp.MustCompile(`(?m)^USER (\d+):(\d+)$`).FindStringSubmatch(final)
	if user == nil || user[1] == "0" {
		t.Errorf("final stage USER %v: want a numeric non-root uid:gid", user)
	}
	if !strings.Contains(final, `ENTRYPOINT ["/zitadel-ext-authz"]`) {
		t.Error("ENTRYPOINT is not the binary")
	}
	if !strings.Contains(final, `"healthcheck"`) {
		t.Error("HEALTHCHECK must use the healthcheck subcommand (no shell in scratch)")
	}

	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no `RUN CGO_ENABLED=0 go build` line")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(build[1], "/out/", out+"/"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=image-test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build[1], err, b)
	}
	bin := filepath.Join(out, "zitadel-ext-authz")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary is dynamically linked (%v): it won't run in a scratch image", p.Type)
		}
	}
	v, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "zitadel-ext-authz image-test" {
		t.Errorf("version: %q, %v", v, err)
	}
	if fi, _ := os.Stat(bin); fi != nil {
		t.Logf("static binary: %.1f MB", float64(fi.Size())/1e6)
	}
}
