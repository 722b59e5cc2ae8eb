package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A SIGKILLed run's directory (its process gone) is removed by the next
// run; a running process's directory stays.
func TestTempDirRemovesWhatKilledRunsLeft(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "zea-demo-"+strconv.Itoa(dead.Process.Pid)+"-123")
	live := filepath.Join(dir, "zea-demo-"+strconv.Itoa(os.Getpid())+"-456")
	other := filepath.Join(dir, "someone-else-1-789")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.toml"), []byte("client_secret = \"x\""), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveStale(dir, "zea-demo"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed run's directory is still there (%v)", err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}
