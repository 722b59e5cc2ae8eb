package integration_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// redisCluster is a real Redis Cluster of three masters (no replicas) on
// free 127.0.0.1 ports, made with redis-cli --cluster create, each node
// with its own append-only file and nodes.conf so a killed node restarts
// into the cluster with its data.
type redisCluster struct {
	t     *testing.T
	Nodes []*redisServer
}

func startRedisCluster(t *testing.T, password string, tlsFiles []string) *redisCluster {
	t.Helper()
	c := &redisCluster{t: t}
	for range 3 {
		bus, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, startRedisWith(t, func(r *redisServer) {
			r.password, r.tlsFiles = password, tlsFiles
			// The bus port is chosen too: the default, port+10000, may be taken.
			r.extra = []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(bus)}
		}))
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.addr)
	}
	if out, err := c.Nodes[0].cli(append(args, "--cluster-replicas", "0", "--cluster-yes")...); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitState("ok")
	return c
}

// Addrs is what redis_cluster_addresses lists.
func (c *redisCluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.addr)
	}
	return out
}

// waitState waits until every running node reports cluster_state:want.
func (c *redisCluster) waitState(want string) {
	c.t.Helper()
	testkit.Eventually(c.t, 20*time.Second, "cluster_state:"+want+" on every running node", func() bool {
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			if out, err := n.cli("cluster", "info"); err != nil || !strings.Contains(out, "cluster_state:"+want) {
				return false
			}
		}
		return true
	})
}

// keysOn counts the keys matching pattern that node i holds.
func keysOn(t *testing.T, n *redisServer, pattern string) int {
	t.Helper()
	out, err := n.cli("--scan", "--pattern", pattern)
	if err != nil {
		t.Fatalf("redis-cli --scan on %s: %v\n%s", n.addr, err, out)
	}
	if out == "" {
		return 0
	}
	return len(strings.Split(out, "\n"))
}

// redisSentinel is a real master, one replica of it and one Sentinel
// watching them (quorum 1), on free 127.0.0.1 ports.
type redisSentinel struct {
	t                *testing.T
	Master, Replica  *redisServer
	Sentinel         *exec.Cmd
	SentinelAddr     string
	SentinelPassword string
	tlsFiles         []string
	name             string
}

func startRedisSentinel(t *testing.T, password, sentinelPassword string, tlsFiles []string) *redisSentinel {
	t.Helper()
	s := &redisSentinel{t: t, SentinelPassword: sentinelPassword, tlsFiles: tlsFiles, name: "mymaster"}
	s.Master = startRedisWith(t, func(r *redisServer) { r.password, r.tlsFiles = password, tlsFiles })
	s.Replica = startRedisWith(t, func(r *redisServer) {
		r.password, r.tlsFiles = password, tlsFiles
		host, port, _ := strings.Cut(s.Master.addr, ":")
		r.extra = []string{"--replicaof", host, port}
	})
	testkit.Eventually(t, 10*time.Second, "the replica to sync with the master", func() bool {
		out, _ := s.Replica.cli("info", "replication")
		return strings.Contains(out, "master_link_status:up")
	})

	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.SentinelAddr = fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	host, mport, _ := strings.Cut(s.Master.addr, ":")
	conf := []string{"bind 127.0.0.1", "dir " + dir,
		fmt.Sprintf("sentinel monitor %s %s %s 1", s.name, host, mport),
		"sentinel down-after-milliseconds " + s.name + " 1000",
		"sentinel failover-timeout " + s.name + " 10000"}
	if tlsFiles != nil {
		conf = append(conf, "port 0", "tls-port "+strconv.Itoa(port), "tls-cert-file "+tlsFiles[0], "tls-key-file "+tlsFiles[1],
			"tls-ca-cert-file "+tlsFiles[2], "tls-auth-clients no", "tls-replication yes")
	} else {
		conf = append(conf, "port "+strconv.Itoa(port))
	}
	if password != "" {
		conf = append(conf, "sentinel auth-pass "+s.name+" "+password)
	}
	if sentinelPassword != "" {
		conf = append(conf, "requirepass "+sentinelPassword)
	}
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Sentinel = exec.Command("redis-server", path, "--sentinel")
	if err := s.Sentinel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Sentinel.Process.Kill()
		s.Sentinel.Wait()
	})
	testkit.Eventually(t, 15*time.Second, "the Sentinel to know the master and its replica", func() bool {
		out, _ := s.cli("sentinel", "replicas", s.name)
		return strings.Contains(out, s.Replica.addr[strings.IndexByte(s.Replica.addr, ':')+1:]) && !strings.Contains(out, "s_down")
	})
	return s
}

// cli runs redis-cli against the Sentinel.
func (s *redisSentinel) cli(args ...string) (string, error) {
	return redisCLI(s.SentinelAddr, s.SentinelPassword, s.tlsFiles, args)
}

// MasterAddr is the master the Sentinel names now.
func (s *redisSentinel) MasterAddr() string {
	out, _ := s.cli("sentinel", "get-master-addr-by-name", s.name)
	if lines := strings.Fields(out); len(lines) == 2 {
		return lines[0] + ":" + lines[1]
	}
	return ""
}

// Failover makes the Sentinel promote the replica, once it has every
// write (replication is asynchronous: see README, "Several replicas"), and
// waits until the Sentinel names it and the old master follows it.
func (s *redisSentinel) Failover() {
	s.t.Helper()
	testkit.Eventually(s.t, 10*time.Second, "the replica to have every write", func() bool {
		return replOffset(s.Master, "master_repl_offset") == replOffset(s.Replica, "slave_repl_offset")
	})
	if out, err := s.cli("sentinel", "failover", s.name); err != nil || !strings.Contains(out, "OK") {
		s.t.Fatalf("SENTINEL FAILOVER: %v %s", err, out)
	}
	testkit.Eventually(s.t, 20*time.Second, "the Sentinel to name the replica as master", func() bool {
		return s.MasterAddr() == s.Replica.addr
	})
	s.Master, s.Replica = s.Replica, s.Master
	s.waitFollows(s.Replica)
}

// waitFollows waits until replica follows the master and the master
// counts it: the replica's link is up and a WAIT on the master (what a
// write with redis_min_replicas waits on) finds one replica. The link is
// up a moment before the master puts a freshly synced replica online.
func (s *redisSentinel) waitFollows(replica *redisServer) {
	s.t.Helper()
	testkit.Eventually(s.t, 30*time.Second, "the old master to follow the new one", func() bool {
		out, _ := replica.cli("info", "replication")
		if !strings.Contains(out, "role:slave") || !strings.Contains(out, "master_link_status:up") {
			return false
		}
		acked, _ := s.Master.cli("wait", "1", "100")
		return strings.TrimSpace(acked) == "1"
	})
}

func replOffset(r *redisServer, field string) int64 {
	out, _ := r.cli("info", "replication")
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}
