// Package serverproc runs the zitadel-ext-authz binary as a child process
// for the end-to-end tests, the local demo and make bench: it starts the
// command, copies its (JSON) log lines to a writer, learns the real
// listener addresses from the "listening" line (so configs can use port 0),
// polls /readyz, and stops it with SIGTERM. The child is killed when its
// parent dies (Pdeathsig). Product code never imports it.
package serverproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a running server.
type Proc struct {
	Cmd      *exec.Cmd
	GRPCAddr string
	HTTPAddr string

	exited chan struct{}
	err    error
}

// Start runs cmd, which must log JSON (log_format = "json"), writes each
// log line to logs (nil: discard), and returns once the server logged its
// listener addresses, or with an error if it exited or took longer than within.
func Start(cmd *exec.Cmd, logs io.Writer, within time.Duration) (*Proc, error) {
	if logs == nil {
		logs = io.Discard
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		// Killed with the process that started it, however that one dies, so
		// a test run or make demo never leaves a server holding its ports.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, exited: make(chan struct{})}
	listening := make(chan map[string]any, 1)
	var tailMu sync.Mutex
	var tail []string // the last lines, for the error when it exits early
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logs.Write(append(line, '\n'))
			tailMu.Lock()
			tail = append(tail[max(0, len(tail)-4):], string(line))
			tailMu.Unlock()
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "listening" {
				select {
				case listening <- rec:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case rec := <-listening:
		p.GRPCAddr, _ = rec["grpc_address"].(string)
		p.HTTPAddr, _ = rec["http_address"].(string)
		return p, nil
	case <-p.exited:
		tailMu.Lock()
		defer tailMu.Unlock()
		return nil, fmt.Errorf("server exited before listening (%v):\n  %s", p.err, strings.Join(tail, "\n  "))
	case <-time.After(within):
		_ = cmd.Process.Kill()
		return nil, errors.New("server did not start listening in time")
	}
}

// WaitReady polls /readyz until it answers 200 or within has passed.
func (p *Proc) WaitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + p.HTTPAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready within %s (last error: %v)", p.HTTPAddr, within, err)
		}
		time.Sleep(20 * time.Millisecond) // polling to a deadline
	}
}

// Exited is closed once the process has exited; Err is its exit error then.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error, valid after Exited is closed.
func (p *Proc) Err() error { return p.err }

// Stop sends SIGTERM and waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
	return p.err
}
