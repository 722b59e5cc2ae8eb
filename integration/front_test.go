package integration_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyemu"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
)

// frontKind is the front proxy a test runs behind.
type frontKind string

const (
	realEnvoy frontKind = "envoy"    // the official Envoy binary with envoy/envoy.yaml
	emulator  frontKind = "emulator" // integration/envoyemu, for comparison only
)

// defaultFront is the front proxy of the end-to-end suite: the real Envoy,
// unless E2E_FRONT=emulator.
func defaultFront() frontKind {
	if frontKind(os.Getenv("E2E_FRONT")) == emulator {
		return emulator
	}
	return realEnvoy
}

// frontOptions say what a front proxy sends where.
type frontOptions struct {
	kind     frontKind
	grpcAddr string        // our ext_authz gRPC listener
	opsAddr  string        // our operations listener (back-channel logout route)
	upstream string        // the echo app, http://host:port
	timeout  time.Duration // overrides the ext_authz filter's timeout when > 0
	config   []byte        // the bootstrap (the emulator's settings too); nil: envoy/envoy.yaml as shipped
}

// front is a running front proxy: what a browser talks to.
type front struct {
	URL     string
	Kind    frontKind
	Timeout time.Duration // the ext_authz filter's timeout in force
	envoy   *envoyproc.Proc
	emu     *envoyemu.Proxy
}

// startFront starts the front proxy of o.kind (defaultFront when unset) and
// stops it when the test ends; a failing test shows Envoy's log.
func startFront(t *testing.T, o frontOptions) *front {
	t.Helper()
	if o.kind == "" {
		o.kind = defaultFront()
	}
	if o.opsAddr == "" {
		o.opsAddr = "127.0.0.1:1"
	}
	up, err := url.Parse(o.upstream)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := envoyemu.ShippedSettings()
	if o.config != nil {
		settings, err = emulatorSettings(o.config)
	}
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout > 0 {
		settings.Timeout = o.timeout
	}
	f := &front{Kind: o.kind, Timeout: settings.Timeout}
	switch o.kind {
	case emulator:
		f.emu, err = envoyemu.New(settings, o.grpcAddr, up)
		if err != nil {
			t.Fatal(err)
		}
		f.emu.AddCluster("zitadel-ext-authz-http", &url.URL{Scheme: "http", Host: o.opsAddr})
		t.Cleanup(func() { f.emu.Close() })
		srv := httptest.NewUnstartedServer(f.emu)
		// HTTP/1.1 and cleartext HTTP/2 (prior knowledge), as Envoy's
		// listener with codec_type AUTO.
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		t.Cleanup(srv.Close)
		f.URL = srv.URL
	default:
		p, err := envoyproc.Start(envoyproc.Options{
			ExtAuthz: o.grpcAddr, OpsHTTP: o.opsAddr, Echo: up.Host, Timeout: o.timeout, Config: o.config,
			LogLevel: os.Getenv("E2E_ENVOY_LOG_LEVEL"), // e.g. debug; default warning
		})
		if err != nil {
			t.Fatal(err)
		}
		f.envoy = p
		t.Cleanup(func() {
			p.Stop()
			if t.Failed() {
				if logs := strings.TrimSpace(p.Logs()); logs != "" {
					t.Logf("envoy log:\n%s", logs)
				}
			}
		})
		f.URL = p.URL
	}
	return f
}

// emulatorSettings are the emulator's settings from a bootstrap.
func emulatorSettings(cfg []byte) (envoyemu.Settings, error) {
	b, err := envoy.Decode(cfg)
	if err != nil {
		return envoyemu.Settings{}, err
	}
	return envoyemu.SettingsFromBootstrap(b)
}

// Logs is what the real Envoy wrote (its log and its stdout access log);
// "" for the emulator.
func (f *front) Logs() string {
	if f.envoy == nil {
		return ""
	}
	return f.envoy.Logs()
}

// Checks is how many Check calls the front proxy has made.
func (f *front) Checks(t *testing.T) int64 {
	t.Helper()
	if f.emu != nil {
		return f.emu.Checks.Load()
	}
	var n int64
	for _, s := range []string{"ok", "denied", "error", "failure_mode_allowed"} {
		v, err := f.envoy.Stat("http.ingress.ext_authz." + s)
		if err != nil {
			t.Fatal(err)
		}
		n += v
	}
	return n
}
