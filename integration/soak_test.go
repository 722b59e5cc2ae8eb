package integration_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The soak (make soak) for 60 s, in both Redis modes: two replicas on one
// Redis behind the real Envoy, Redis killed every 15 s (or a Sentinel
// failover) and the IdP stopped every 20 s; no session allowed on any
// replica more than 3 s after its acknowledged sign-out or logout (every
// ended session is probed until the run ends), none lost, no Check past
// Envoy's deadline, no exit, ≥ 99.9 % of live sessions answered outside
// faults, < 20 MB RSS growth in the second half.
func TestSoak(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "soak")
	if out, err := exec.Command("go", "build", "-o", bin, "./soak").CombinedOutput(); err != nil {
		t.Fatalf("build the soak: %v\n%s", err, out)
	}
	for _, mode := range []string{"kill", "sentinel"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(bin, "--server", serverBin, "--duration", "60s", "--redis", mode)
			cmd.Env = os.Environ()
			out, err := cmd.CombinedOutput()
			line := ""
			for l := range strings.SplitSeq(string(out), "\n") {
				if strings.HasPrefix(l, "soak: ") {
					line = l
				}
			}
			t.Log(line)
			if err != nil {
				t.Fatalf("the soak missed a target: %v\n%s", err, out)
			}
		})
	}
}
