package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process under load.
type proc struct {
	name     string
	cmd      *exec.Cmd
	grpcAddr string
}

func command(pin bool, core string, bin string, args ...string) *exec.Cmd {
	if pin {
		return exec.Command("taskset", append([]string{"-c", core, bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func startProc(work, name, bin string, pin bool, config string) (*proc, error) {
	cfg := filepath.Join(work, name+".toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: command(pin, "0", bin, "serve", "--config", cfg)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (run make build)", bin, err)
	}
	var httpAddr string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
			p.grpcAddr, _ = rec["grpc_address"].(string)
			httpAddr, _ = rec["http_address"].(string)
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if p.grpcAddr == "" {
		return nil, fmt.Errorf("%s did not start", name)
	}
	fmt.Fprintf(os.Stderr, "%s: grpc %s, ops http://%s\n", name, p.grpcAddr, httpAddr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startFloor(work, bin string, pin bool) (*proc, error) {
	p := &proc{name: "floor", cmd: command(pin, "0", bin, "--addr", "127.0.0.1:0")}
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
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// pid is the server's pid (taskset execs it, so the pid is the same).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// cpuSeconds is the process's user+system CPU time so far.
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
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
