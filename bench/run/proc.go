package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/serverproc"
)

// proc is a server process under load.
type proc struct {
	name     string
	cmd      *exec.Cmd
	grpcAddr string
	server   *serverproc.Proc // nil for the floor
}

// command runs bin (pinned to core with taskset when pin), killed when the
// bench dies however it dies.
func command(pin bool, core string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	if pin {
		cmd = exec.Command("taskset", append([]string{"-c", core, bin}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func startProc(work, name, bin string, pin bool, config string) (*proc, error) {
	cfg := filepath.Join(work, name+".toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return nil, err
	}
	sp, err := serverproc.Start(command(pin, "0", bin, "serve", "--config", cfg), nil, 20*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s (run make build): %w", name, err)
	}
	if err := sp.WaitReady(20 * time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: grpc %s, ops http://%s\n", name, sp.GRPCAddr, sp.HTTPAddr)
	return &proc{name: name, cmd: sp.Cmd, grpcAddr: sp.GRPCAddr, server: sp}, nil
}

// startFloor starts the floor server (bench/floor) with args added to
// its own (-http: Envoy's HTTP ext_authz instead of gRPC).
func startFloor(work, bin string, pin bool, args ...string) (*proc, error) {
	p := &proc{name: "floor", cmd: command(pin, "0", bin, append([]string{"--addr", "127.0.0.1:0"}, args...)...)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (run make build)", bin, err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, err
	}
	p.grpcAddr = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	return p, nil
}

func (p *proc) stop() {
	if p.server != nil {
		_ = p.server.Stop(10 * time.Second)
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// pid is the server's pid (taskset execs it, so the pid is the same).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// cpuSeconds is the process's user+system CPU time so far.
func (p *proc) cpuSeconds() float64 { return cpuSecondsOf(p.pid()) }

// cpuSecondsOf is a process's user+system CPU time so far.
func cpuSecondsOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// resetPeak resets the peak RSS (VmHWM) counter (Linux clear_refs "5").
func (p *proc) resetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid()), []byte("5"), 0)
}

// memory returns current and peak RSS in MB.
func (p *proc) memory() (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}
