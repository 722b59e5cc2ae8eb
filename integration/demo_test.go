package integration_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// make demo's processes never outlive it: killed with SIGKILL, the demo
// takes the server and Envoy with it; and when make (its parent) is killed,
// the demo ends itself and them too.
func TestDemoLeavesNoOrphans(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "./demo").CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	args := []string{"--server", serverBin, "--proxy", "envoy", "--addr", "127.0.0.1:0", "--idp", "127.0.0.1:0",
		"--upstream", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--ops", "127.0.0.1:0"}

	t.Run("demo killed", func(t *testing.T) {
		cmd := exec.Command(demo, args...)
		demoPID := startAndWaitRunning(t, cmd)
		kids := childrenOf(demoPID)
		if len(kids) < 2 {
			t.Fatalf("demo started %d child processes, want the server and Envoy", len(kids))
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		waitGone(t, kids)
		// SIGKILLed, it couldn't remove its directories (a configuration
		// with secrets, a private key, Envoy's bootstrap): the next run
		// does, before it makes its own.
		left := func() []string {
			var dirs []string
			for _, prefix := range []string{"zitadel-ext-authz-demo", "envoyproc"} {
				m, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d-*", prefix, demoPID)))
				dirs = append(dirs, m...)
			}
			return dirs
		}
		if len(left()) != 2 {
			t.Fatalf("the killed demo's directories: %v, want its own and Envoy's left behind", left())
		}
		next, err := testkit.TempDir("zitadel-ext-authz-demo") // what the next demo does first
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(next)
		if err := testkit.RemoveStale(os.TempDir(), "envoyproc"); err != nil { // and its Envoy
			t.Fatal(err)
		}
		if dirs := left(); len(dirs) != 0 {
			t.Fatalf("after the next run the killed demo's directories are still there: %v", dirs)
		}
	})
	t.Run("its parent (make) killed", func(t *testing.T) {
		cmd := exec.Command("sh", append([]string{"-c", `"$0" "$@"; echo demo ended`, demo}, args...)...)
		shPID := startAndWaitRunning(t, cmd)
		demos := childrenOf(shPID)
		if len(demos) != 1 {
			t.Fatalf("sh has %d children, want the demo", len(demos))
		}
		procs := append(demos, childrenOf(demos[0])...)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		waitGone(t, procs)
	})
}

// startAndWaitRunning starts cmd and waits for the demo's "is running".
func startAndWaitRunning(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	pid, _ := startDemo(t, cmd)
	return pid
}

// startDemo starts cmd and returns once the demo has printed everything
// up to "Press Ctrl-C", with those lines.
func startDemo(t *testing.T, cmd *exec.Cmd) (pid int, printed []string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	running := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "Press Ctrl-C") {
				running <- lines
			}
		}
	}()
	select {
	case printed = <-running:
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not start")
	}
	return cmd.Process.Pid, printed
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	var kids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids
}

// waitGone polls to a deadline until none of pids is alive (zombies count
// as gone: they hold no ports).
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var alive []int
		for _, pid := range pids {
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				continue
			}
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 0 && fields[0] != "Z" {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range alive {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes %v outlived the demo", alive)
		}
		time.Sleep(20 * time.Millisecond) // polling to a deadline
	}
}

// make demo serves its two apps beside the default one, each logging in
// with its own client, at the URLs it prints.
func TestDemoServesTwoApps(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "./demo").CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	cmd := exec.Command(demo, "--server", serverBin, "--proxy", "envoy", "--addr", "127.0.0.1:0", "--idp", "127.0.0.1:0",
		"--upstream", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--ops", "127.0.0.1:0")
	_, printed := startDemo(t, cmd)
	var urls []string
	for _, line := range printed {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "http://app") {
				urls = append(urls, f)
			}
		}
	}
	if len(urls) != 2 || !strings.HasPrefix(urls[0], "http://app1.localhost:") || !strings.HasPrefix(urls[1], "http://app2.localhost:") {
		t.Fatalf("the demo printed app URLs %v", urls)
	}
	for i, u := range urls {
		b := newBrowser(t, "alice", "alice-password")
		want := "app" + strconv.Itoa(i+1) + "@zitadel-ext-authz"
		r := b.get(u)
		if r.StatusCode != 200 || !strings.Contains(r.Body, "ZITADEL (app"+strconv.Itoa(i+1)+")") {
			t.Fatalf("%s: want app%d's sign-in page, got %s", u, i+1, describe(r))
		}
		start := b.get(strings.TrimSuffix(u, "/") + "/oauth2/start?rd=/")
		if loginClient(t, start) != want {
			t.Fatalf("%s logs in with client %q, want %q", u, loginClient(t, start), want)
		}
		resp, _ := b.follow(strings.TrimSuffix(u, "/") + "/oauth2/start?rd=/")
		if saw := upstreamSaw(t, resp); saw.Headers["x-forwarded-user"] != "user-alice" {
			t.Fatalf("%s: upstream saw %+v", u, saw)
		}
	}
}
