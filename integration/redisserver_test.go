package integration_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// redisServer is a real redis-server on a free 127.0.0.1 port, with an
// append-only file so a restart keeps its data.
type redisServer struct {
	t        *testing.T
	addr     string
	dir      string
	cmd      *exec.Cmd
	password string   // requirepass (and masterauth), when set
	tlsFiles []string // cert, key, CA: TLS only, when set
	extra    []string // more redis-server arguments (cluster, replication)
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	return startRedisWith(t, func(*redisServer) {})
}

func startRedisWith(t *testing.T, setup func(*redisServer)) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &redisServer{t: t, addr: addr, dir: t.TempDir()}
	setup(r)
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"}
	if r.password != "" {
		args = append(args, "--requirepass", r.password, "--masterauth", r.password)
	}
	if r.tlsFiles != nil {
		args[3] = "0" // no plain-text port
		args = append(args, "--tls-port", port, "--tls-cert-file", r.tlsFiles[0], "--tls-key-file", r.tlsFiles[1],
			"--tls-ca-cert-file", r.tlsFiles[2], "--tls-auth-clients", "no", "--tls-replication", "yes", "--tls-cluster", "yes")
	}
	r.cmd = exec.Command("redis-server", append(args, r.extra...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	testkit.Eventually(r.t, 10*time.Second, "redis-server to answer PING", func() bool {
		return r.tlsFiles != nil && r.tlsListening() || r.ping()
	})
}

// tlsListening reports whether the TLS port accepts connections.
func (r *redisServer) tlsListening() bool {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (r *redisServer) ping() bool { return testkit.RedisPing(r.addr) }

// cli runs redis-cli against this server (with its password and TLS) and
// returns what it printed.
func (r *redisServer) cli(args ...string) (string, error) {
	return redisCLI(r.addr, r.password, r.tlsFiles, args)
}

// redisCLI runs redis-cli against addr, with password and TLS when set,
// for at most 30 seconds.
func redisCLI(addr, password string, tlsFiles []string, args []string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	all := []string{"-h", host, "-p", port}
	if password != "" {
		all = append(all, "-a", password, "--no-auth-warning")
	}
	if tlsFiles != nil {
		all = append(all, "--tls", "--cacert", tlsFiles[2])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append(all, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (r *redisServer) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// writeTLSFiles makes a CA and a certificate for 127.0.0.1 signed by it,
// for servers and clients alike (a cluster's bus always checks the peer's).
func writeTLSFiles(t *testing.T, dir string) (cert, key, ca string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}
