package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// redisProc is a redis-server with an append-only file (fsync always), so
// a kill and restart on the same port keeps every acknowledged write.
type redisProc struct {
	addr, dir string
	extra     []string // more redis-server arguments (--replicaof)
	cmd       *exec.Cmd
}

func startRedis(dir string, extra ...string) (*redisProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &redisProc{addr: addr, dir: dir, extra: extra}
	return r, r.start()
}

func (r *redisProc) start() error {
	_, port, _ := net.SplitHostPort(r.addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--dir", r.dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"}
	r.cmd = exec.Command("redis-server", append(args, r.extra...)...)
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

// sentinelSet is a master, its replica and a Sentinel watching them
// (quorum 1): the soak's faults are then SENTINEL FAILOVERs.
type sentinelSet struct {
	master, replica *redisProc
	addr            string // the Sentinel's
	cmd             *exec.Cmd
}

const masterName = "soak"

func startSentinelSet(dir string) (*sentinelSet, error) {
	m, err := startRedis(dir + "/master")
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(m.addr)
	rep, err := startRedis(dir+"/replica", "--replicaof", host, port)
	if err != nil {
		m.stop()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sentinelSet{master: m, replica: rep, addr: ln.Addr().String()}
	ln.Close()
	_, sport, _ := net.SplitHostPort(s.addr)
	conf := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\n",
		sport, dir, masterName, host, port, masterName, masterName)
	path := dir + "/sentinel.conf"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command("redis-server", path, "--sentinel")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	_, rport, _ := net.SplitHostPort(rep.addr)
	if !waitUntil(15*time.Second, func() bool {
		out, _ := cli(s.addr, "sentinel", "replicas", masterName)
		return strings.Contains(out, rport) && !strings.Contains(out, "s_down")
	}) {
		s.stop()
		return nil, errors.New("the Sentinel doesn't see the replica")
	}
	return s, nil
}

// failover promotes the replica once it has every write, and waits until
// the Sentinel names it and the old master follows it.
func (s *sentinelSet) failover() error {
	waitUntil(5*time.Second, func() bool {
		return replOffset(s.master, "master_repl_offset") == replOffset(s.replica, "slave_repl_offset")
	})
	if out, err := cli(s.addr, "sentinel", "failover", masterName); err != nil || !strings.Contains(out, "OK") {
		return fmt.Errorf("SENTINEL FAILOVER: %v %s", err, out)
	}
	if !waitUntil(20*time.Second, func() bool {
		out, _ := cli(s.addr, "sentinel", "get-master-addr-by-name", masterName)
		return strings.Join(strings.Fields(out), ":") == s.replica.addr
	}) {
		return errors.New("the Sentinel didn't promote the replica")
	}
	s.master, s.replica = s.replica, s.master
	if !waitUntil(20*time.Second, func() bool {
		out, _ := cli(s.replica.addr, "info", "replication")
		return strings.Contains(out, "role:slave") && strings.Contains(out, "master_link_status:up")
	}) {
		return errors.New("the old master doesn't follow the new one")
	}
	return nil
}

func (s *sentinelSet) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	s.master.stop()
	s.replica.stop()
}

func replOffset(r *redisProc, field string) int64 {
	out, _ := cli(r.addr, "info", "replication")
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// cli runs redis-cli against addr.
func cli(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
