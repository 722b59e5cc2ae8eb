package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// redisProc is a redis-server with an append-only file (fsync always), so
// a kill and restart on the same port keeps every acknowledged write.
type redisProc struct {
	addr, dir string
	cmd       *exec.Cmd
}

func startRedis(dir string) (*redisProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &redisProc{addr: addr, dir: dir}
	return r, r.start()
}

func (r *redisProc) start() error {
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", r.dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no")
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("redis-server (apt-get install -y redis-server): %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if testkit.RedisPing(r.addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s doesn't answer", r.addr)
}

// kill ends redis-server by its PID, as a crash would.
func (r *redisProc) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

func (r *redisProc) stop() { r.kill() }

// echoServer is the upstream: it shows what it received.
type echoServer struct {
	addr string
	srv  *http.Server
}

func startEcho() (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echoServer{addr: ln.Addr().String(), srv: &http.Server{Handler: echo.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	go e.srv.Serve(ln)
	return e, nil
}

func (e *echoServer) Close() error { return e.srv.Close() }

// commandFor runs the server with a configuration file.
func commandFor(server, config string) *exec.Cmd {
	return exec.Command(server, "serve", "--config", config)
}
