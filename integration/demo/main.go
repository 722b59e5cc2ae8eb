// Command demo runs the whole stack on 127.0.0.1 for a person with a
// browser, with no Docker: the dev IdP (zitadel/oidc's OpenID Provider with
// ZITADEL-shaped role claims), the zitadel-ext-authz binary, the real Envoy
// with envoy/envoy.yaml (or, where Envoy is not installed, the Envoy
// emulator configured from the same file) and the echo upstream. It prints
// the URL and the test users, and runs until Ctrl-C.
//
// When a part can't start (a port in use is the usual case) it prints that
// part's own error and the flag that moves it. Everything it starts ends
// with it, also when it is killed with SIGKILL: its children carry
// Pdeathsig, and it ends itself when make (its parent) goes.
//
//	go build -o bin/zitadel-ext-authz ./cmd/zitadel-ext-authz
//	go run ./integration/demo --server bin/zitadel-ext-authz
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyemu"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/serverproc"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

func main() {
	// End with the parent (make): a SIGKILLed make must not leave us, and so
	// our children, holding the demo's ports.
	if os.Getppid() == 1 {
		// Started detached (setsid -f, nohup … &): there is no parent to
		// follow, so run until told to stop, and say how.
		fmt.Fprintf(os.Stderr, "demo: running detached (pid %d); stop it with: kill %d\n", os.Getpid(), os.Getpid())
	} else {
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// options are the demo's flags.
type options struct {
	server, front, idp, upstream, grpc, ops, proxy string
	verbose                                        bool
}

func run() error {
	var o options
	flag.StringVar(&o.server, "server", "bin/zitadel-ext-authz", "path of the zitadel-ext-authz binary")
	flag.StringVar(&o.front, "addr", "127.0.0.1:8000", "address of the front proxy (what you open in the browser)")
	flag.StringVar(&o.idp, "idp", "127.0.0.1:9998", "address of the dev IdP")
	flag.StringVar(&o.upstream, "upstream", "127.0.0.1:8081", "address of the echo upstream")
	flag.StringVar(&o.grpc, "grpc", "127.0.0.1:9001", "address of zitadel-ext-authz's ext_authz gRPC listener")
	flag.StringVar(&o.ops, "ops", "127.0.0.1:4180", "address of zitadel-ext-authz's operations listener")
	flag.StringVar(&o.proxy, "proxy", "auto", "front proxy: envoy (the real Envoy), emulator, or auto (Envoy when installed)")
	flag.BoolVar(&o.verbose, "v", false, "show the server's logs")
	otpUser := flag.String("otp", "", "print USER's current one-time code for the dev IdP's second step, and exit")
	flag.Parse()
	if *otpUser != "" {
		fmt.Println(devidp.OTPCode(devidp.OTPSecret(*otpUser), time.Now()))
		return nil
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the example IdP logs every request

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// One client per app: the top-level keys' app and the two apps of the
	// apps list (README "Many apps").
	// Plus one web app per ZITADEL authentication method, to try
	// client_auth_method with (README "Client authentication").
	// And an API client whose access tokens are JWTs, for the bearer-only
	// /api/ route (skip_jwt_bearer_tokens).
	clients := []devidp.Client{devidp.DefaultClient(), devidp.AppClient("app1"), devidp.AppClient("app2"), devidp.JWTClient()}
	for _, m := range []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone, oidc.AuthMethodPrivateKeyJWT} {
		clients = append(clients, devidp.MethodClient(m))
	}
	idp, err := devidp.Start(devidp.Options{Addr: o.idp, Clients: clients})
	if err != nil {
		return partError("dev IdP", err, "--idp")
	}
	defer idp.Close()

	upLn, err := net.Listen("tcp", o.upstream)
	if err != nil {
		return partError("echo upstream", err, "--upstream")
	}
	o.upstream = upLn.Addr().String() // the real port when asked for port 0
	upstream := &http.Server{Handler: echo.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(upLn) }()
	defer upstream.Close()

	dir, err := testkit.TempDir("zitadel-ext-authz-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	jwtClient := devidp.MethodClient(oidc.AuthMethodPrivateKeyJWT)
	keyJSON, err := devidp.KeyFile(jwtClient)
	if err != nil {
		return err
	}
	keyPath := filepath.Join(dir, "web-private_key_jwt-key.json")
	if err := os.WriteFile(keyPath, keyJSON, 0o600); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(serverConfig(idp.Issuer, o)), 0o600); err != nil {
		return err
	}
	srv, err := serverproc.Start(exec.Command(o.server, "serve", "--config", cfgPath), logRelay{verbose: o.verbose}, 20*time.Second)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("zitadel-ext-authz: %w (run make build first, or pass --server)", err)
		}
		flagName := "--grpc or --ops"
		if strings.Contains(err.Error(), "http_address:") {
			flagName = "--ops"
		} else if strings.Contains(err.Error(), "grpc_address:") {
			flagName = "--grpc"
		}
		return partError("zitadel-ext-authz", err, flagName)
	}
	defer srv.Stop(10 * time.Second)
	if err := srv.WaitReady(20 * time.Second); err != nil {
		return fmt.Errorf("zitadel-ext-authz: %w", err)
	}

	front, frontName, closeFront, err := startFront(o, srv)
	if err != nil {
		return err
	}
	defer closeFront()

	_, port, _ := net.SplitHostPort(front)
	fmt.Printf(`
zitadel-ext-authz demo is running.

  Open:      http://%s/
  Apps:      http://app1.localhost:%s/   (app1: its own ZITADEL client and session; its virtual host names it, app=app1)
             http://app2.localhost:%s/   (app2: chosen by the route's context_extensions app=app2)
  Users:     alice / alice-password   (roles admin, reader; second factor: a one-time code, see below)
             bob   / bob-password     (role reader)
             pat   / pat-password     (role admin; password only, offered to add a second factor on /admin/)
             eve   / eve-password     (no roles; another organization)
             olga  / olga-password    (role reader granted by another organization; second factor)
  Codes:     the dev IdP asks alice and olga for a one-time code (TOTP) after the password:
             add alice's key `+devidp.OTPSecret("alice")+` to an authenticator app, or run
             bin/demo --otp alice   (prints the current code)
  Admin:     http://%s/admin/   (role admin and a second factor: alice gets in, pat is asked to add one)
  Billing:   http://%s/billing/   (a sign-in within 5 minutes, else sign in again)
  Reports:   http://%s/reports/   (Envoy's RBAC filter on our verdict: role reader only)
  Sign out:  http://%s/oauth2/sign_out
  Public:    http://%s/public/anything   (ext_authz disabled on this route)

  Front:     %s
  Parts:     dev IdP %s · ext_authz gRPC %s · ops http://%s/metrics · upstream echo %s
  Config:    %s   (client %s, client_auth_method basic: ZITADEL's "Code")
  Clients:   one per authentication method, for client_auth_method (README "Client authentication"):
             basic  %s / %s
             post   %s / %s
             none   %s (no secret)
             private_key_jwt  %s, key file %s
  Rules:     named CEL rules in the config's [rules]; app2 lets in role reader with an @example.com address only
             (deny_if outsiders, allow_if readers). Dry-run a request (cases: integration/demo/policy-cases.json):
             bin/zitadel-ext-authz check-policy --config %s --url http://%s/users/bob/ --ext allow_if=owner_or_admin --user bob

Press Ctrl-C to stop.
`, front, port, port, front, front, front, front, front, frontName, idp.Issuer, srv.GRPCAddr, srv.HTTPAddr, o.upstream, cfgPath, devidp.DefaultClient().ID,
		clients[4].ID, clients[4].Secret, clients[5].ID, clients[5].Secret, clients[6].ID, jwtClient.ID, keyPath, cfgPath, front)

	select {
	case <-ctx.Done():
	case <-srv.Exited():
		return fmt.Errorf("zitadel-ext-authz exited: %v", srv.Err())
	}
	fmt.Println("\nstopping…")
	return nil
}

func serverConfig(issuer string, o options) string {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	client := devidp.DefaultClient()
	return fmt.Sprintf(`# generated by make demo
provider = "oidc"
provider_display_name = "ZITADEL (dev IdP)"
oidc_issuer_url = %q
client_id = %q
client_secret = %q
cookie_secret = %q
cookie_secure = false
email_domains = ["*"]
skip_provider_button = false
pass_access_token = true
set_xauthrequest = true
skip_auth_routes = ["GET=^/favicon.ico$"]
grpc_address = %q
http_address = %q
log_format = "json"
# API callers with a JWT access token of the dev IdP's API client (the
# bearer-only /api/ route of envoy.yaml).
skip_jwt_bearer_tokens = true
extra_jwt_audiences = [%q]
`, issuer, client.ID, client.Secret, base64.RawURLEncoding.EncodeToString(secret), o.grpc, o.ops, devidp.JWTClient().ID) + demoRules + `
# Two more apps on the same server, each with its own ZITADEL client and
# cookie keys; keys not set here are the top level's.
` + appEntries()
}

// demoRules are the demo's named CEL rules (README "Rules in CEL"):
// routes name them in their context_extensions, and app2 runs two on every
// route. integration/demo/policy-cases.json asks check-policy and a live
// Check about them (integration/checkpolicy_test.go).
const demoRules = `
# Named CEL rules: a route names them in its context_extensions (allow_if,
# deny_if); app2 below runs outsiders and readers on every route.
[rules]
owner_or_admin = '"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")'
readers = '"reader" in user.roles'
outsiders = '!user.email.endsWith("@example.com")'
team_blue = 'request.query["team"] == "blue"'
`

// demoApps are the apps list's entries: each app's name (its dev IdP
// client is devidp.AppClient(name)) and keys of its own.
var demoApps = []struct{ name, keys string }{
	{"app1", ""},
	{"app2", "deny_if = [\"outsiders\"]\nallow_if = [\"readers\"]\n"},
}

// appEntries are the apps list's entries for the dev IdP's app clients.
func appEntries() string {
	var b strings.Builder
	for _, a := range demoApps {
		c := devidp.AppClient(a.name)
		fmt.Fprintf(&b, "\n[[apps]]\nname = %q\nhosts = [\"%s.localhost\"]\nclient_id = %q\nclient_secret = %q\nprovider_display_name = \"ZITADEL (%s)\"\n%s", a.name, a.name, c.ID, c.Secret, a.name, a.keys)
	}
	return b.String()
}

// startFront starts the real Envoy with envoy/envoy.yaml, or the emulator
// when Envoy is not installed (or --proxy=emulator).
func startFront(o options, srv *serverproc.Proc) (addr, name string, stop func(), err error) {
	bin, findErr := envoyproc.Find()
	useEnvoy := o.proxy == "envoy" || o.proxy == "auto" && findErr == nil
	if o.proxy == "envoy" && findErr != nil {
		return "", "", nil, fmt.Errorf("envoy: %w", findErr)
	}
	if useEnvoy {
		version, _ := envoyproc.BinaryVersion(bin)
		p, err := envoyproc.Start(envoyproc.Options{Binary: bin, Listen: o.front, ExtAuthz: srv.GRPCAddr, OpsHTTP: srv.HTTPAddr, Echo: o.upstream})
		if err != nil {
			return "", "", nil, partError("envoy", err, "--addr")
		}
		return p.Addr, fmt.Sprintf("Envoy %s (%s) with envoy/envoy.yaml, admin %s", version, bin, p.AdminURL), p.Stop, nil
	}
	settings, err := envoyemu.ShippedSettings()
	if err != nil {
		return "", "", nil, err
	}
	up, _ := url.Parse("http://" + o.upstream)
	proxy, err := envoyemu.New(settings, srv.GRPCAddr, up)
	if err != nil {
		return "", "", nil, err
	}
	proxy.AddCluster("zitadel-ext-authz-http", &url.URL{Scheme: "http", Host: srv.HTTPAddr}) // back-channel logout
	ln, err := net.Listen("tcp", o.front)
	if err != nil {
		proxy.Close()
		return "", "", nil, partError("front proxy (Envoy emulator)", err, "--addr")
	}
	hs := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	why := "--proxy=emulator"
	if findErr != nil {
		why = "Envoy is not installed: make tools"
	}
	return ln.Addr().String(), "the Envoy emulator (" + why + ")", func() { hs.Close(); proxy.Close() }, nil
}

// partError names the part that failed, its own error, and what to change.
func partError(part string, err error, flagName string) error {
	msg := err.Error()
	hint := ""
	if strings.Contains(msg, "address already in use") {
		hint = fmt.Sprintf("\n  a port is in use (another make demo still running?); stop that or pick another with %s", flagName)
	}
	return fmt.Errorf("%s did not start: %s%s", part, msg, hint)
}

// logRelay shows the server's warnings and errors (everything with -v).
type logRelay struct{ verbose bool }

func (l logRelay) Write(line []byte) (int, error) {
	if l.verbose || bytes.Contains(line, []byte(`"level":"ERROR"`)) || bytes.Contains(line, []byte(`"level":"WARN"`)) {
		fmt.Fprint(os.Stderr, "[zitadel-ext-authz] ", string(line))
	}
	return len(line), nil
}
