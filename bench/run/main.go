// Command run is make bench: it loads zitadel-ext-authz and the bare floor
// server (bench/floor) with h2load sending pre-encoded gRPC Check frames,
// scenario by scenario, and prints req/s, p50, p99, server CPU and peak RSS,
// each scenario's ratio to the floor measured in the same run, and the
// memory checks (RSS after 100,000 unauthenticated redirects and after
// 1,000,000 distinct bearer tokens). It never fails on numbers: it reports.
//
// See BENCHMARKS.md for the method.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	server, floor string
	duration      time.Duration
	conc          []conc
	redirects     int
	tokens        int
	scenarios     string
	rounds        int
	hold          bool
	oauth2Proxy   string
	frontConns    int
	envoyOnly     bool
	withEnvoy     bool
	envoyVariants bool
	serveEcho     string
}

func run() error {
	var o options
	var concs string
	flag.StringVar(&o.server, "server", "bin/zitadel-ext-authz", "zitadel-ext-authz binary")
	flag.StringVar(&o.floor, "floor", "bin/floor", "floor server binary")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "load time per scenario and concurrency")
	flag.StringVar(&concs, "concurrency", "1,16,64,64/1", "concurrent streams, each over min(streams,4) connections or over /N")
	flag.IntVar(&o.redirects, "redirects", 1_000_000, "unauthenticated redirects before the RSS check (0 skips)")
	flag.IntVar(&o.tokens, "tokens", 1_000_000, "distinct bearer tokens before the RSS check (0 skips)")
	flag.StringVar(&o.scenarios, "scenarios", "", "comma-separated subset of scenarios (default: all)")
	flag.BoolVar(&o.hold, "hold", false, "keep the servers running after the run (for pprof)")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating floor/scenario rounds per cell; the median is reported")
	flag.StringVar(&o.oauth2Proxy, "oauth2-proxy", "bin/oauth2-proxy", "oauth2-proxy binary for the Envoy section's row (c); \"\" skips it")
	flag.IntVar(&o.frontConns, "front-connections", 16, "HTTP/1.1 connections in the Envoy section")
	flag.BoolVar(&o.envoyOnly, "envoy-only", false, "run only the Envoy section")
	flag.BoolVar(&o.withEnvoy, "envoy", true, "run the Envoy section after the gRPC one")
	flag.BoolVar(&o.envoyVariants, "envoy-variants", true, "in the Envoy section, also run (b) with one thing changed each (every request header sent; no identity assertion; the floor server in place of ours) and the floors (e) and (f): Envoy with ext_authz alone before a server that answers at once, over gRPC and HTTP")
	flag.StringVar(&o.serveEcho, "serve-echo", "", "internal: serve the echo upstream on this address")
	flag.Parse()
	if o.serveEcho != "" {
		return serveEcho(o.serveEcho)
	}
	if o.oauth2Proxy != "" {
		if _, err := os.Stat(o.oauth2Proxy); err != nil {
			fmt.Fprintf(os.Stderr, "oauth2-proxy not found at %s (make bench installs it): the Envoy section skips row (c)\n", o.oauth2Proxy)
			o.oauth2Proxy = ""
		}
	}
	for _, c := range strings.Split(concs, ",") {
		cc, err := parseConc(c)
		if err != nil {
			return err
		}
		o.conc = append(o.conc, cc)
	}
	if _, err := exec.LookPath("h2load"); err != nil {
		return errors.New("h2load not found: install it with `apt-get install -y nghttp2-client` (make bench does this when it runs as root)")
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	work, err := os.MkdirTemp("", "zitadel-ext-authz-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	pin := runtime.NumCPU() > 1
	fmt.Printf("machine: %d cores (%s), %s; server pinned to core 0, h2load to core 1: %v\n", runtime.NumCPU(), cpuModel(), runtime.Version(), pin)

	jwtApp := devidp.Client{ID: "api-jwt@bench", Secret: "api-secret", RedirectURIGlobs: []string{"http://127.0.0.1:*/oauth2/callback"}, JWTAccessTokens: true}
	// ZITADEL-sized: a web app with JWT access tokens, and a user whose
	// tokens carry several roles, a long name and e-mail.
	largeApp := devidp.DefaultClient()
	largeApp.ID, largeApp.JWTAccessTokens = "web-large@bench", true
	// One app of 50 on one server (the apps list), reached by its host.
	manyApp := devidp.DefaultClient()
	manyApp.ID, manyApp.RedirectURIGlobs = "app-many@bench", []string{"http://" + manyAppsHost + ":*/oauth2/callback"}
	idp, err := devidp.Start(devidp.Options{Clients: []devidp.Client{devidp.DefaultClient(), jwtApp, largeApp, manyApp}, Users: append(devidp.DefaultUsers(), largeUser)})
	if err != nil {
		return err
	}
	defer idp.Close()

	server, err := startProc(work, "server", o.server, pin, serverConfig(idp.Issuer, devidp.DefaultClient(), jwtApp.ID, 64<<20))
	if err != nil {
		return err
	}
	defer server.stop()
	noCache, err := startProc(work, "server-nocache", o.server, pin, serverConfig(idp.Issuer, devidp.DefaultClient(), jwtApp.ID, 0))
	if err != nil {
		return err
	}
	defer noCache.stop()
	// The same as server, without the signed identity assertion: what it
	// costs is the difference of the two session rows.
	noAssert, err := startProc(work, "server-noassert", o.server, pin, serverConfig(idp.Issuer, devidp.DefaultClient(), jwtApp.ID, 64<<20)+"identity_jwt_header = \"\"\n")
	if err != nil {
		return err
	}
	defer noAssert.stop()
	large, err := startProc(work, "server-large", o.server, pin, serverConfig(idp.Issuer, largeApp, jwtApp.ID, 64<<20))
	if err != nil {
		return err
	}
	defer large.stop()
	many, err := startProc(work, "server-50-apps", o.server, pin, serverConfig(idp.Issuer, devidp.DefaultClient(), jwtApp.ID, 64<<20)+appsConfig(manyApp))
	if err != nil {
		return err
	}
	defer many.stop()
	floor, err := startFloor(work, o.floor, pin)
	if err != nil {
		return err
	}
	defer floor.stop()

	// Log in once, through the real Envoy, as a browser does.
	front, err := startFrontSetup(server, pin, nil)
	if err != nil {
		return fmt.Errorf("envoy: %w", err)
	}
	defer front.stop()
	cookie, err := loginThrough(front.envoy.URL, "/", idp, "alice")
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	largeFront, err := startFrontSetup(large, pin, nil)
	if err != nil {
		return fmt.Errorf("envoy: %w", err)
	}
	defer largeFront.stop()
	largeCookie, err := loginThrough(largeFront.envoy.URL, "/", idp, largeUser.Username)
	if err != nil {
		return fmt.Errorf("login (large session): %w", err)
	}
	manyFront, err := startFrontSetup(many, pin, manyAppsEnvoy())
	if err != nil {
		return fmt.Errorf("envoy: %w", err)
	}
	manyURL, _ := url.Parse(manyFront.envoy.URL)
	defer manyFront.stop()
	manyCookie, err := loginAs(manyFront.envoy.URL, manyAppsHost+":"+manyURL.Port(), "/", idp, "alice")
	if err != nil {
		return fmt.Errorf("login (one of 50 apps): %w", err)
	}
	// The Envoy section's (b): the real-sized session, with and without
	// the identity assertion (the same cookie opens both servers).
	largeNoAssert, err := startProc(work, "server-large-noassert", o.server, pin, serverConfig(idp.Issuer, largeApp, jwtApp.ID, 64<<20)+"identity_jwt_header = \"\"\n")
	if err != nil {
		return err
	}
	defer largeNoAssert.stop()
	ours := ourSetup{front: largeFront, server: large, noAssert: largeNoAssert, floor: floor, user: largeUser.Username}
	// The floor answering Envoy's HTTP ext_authz: with the gRPC floor,
	// the Envoy section's lower bounds of what ext_authz itself costs.
	httpFloor, err := startFloor(work, o.floor, pin, "-http")
	if err != nil {
		return err
	}
	defer httpFloor.stop()
	ours.httpFloor = httpFloor
	if o.envoyOnly {
		return envoyBench(o, ours, idp, pin, work)
	}
	opaque, err := idp.Tokens(ctx, devidp.DefaultClient(), "alice", "alice-password")
	if err != nil {
		return err
	}
	jwt, err := idp.Tokens(ctx, jwtApp, "alice", "alice-password")
	if err != nil {
		return err
	}
	fmt.Printf("session cookie header: %d bytes (large session: %d); JWT access token: %d bytes; opaque token: %d bytes\n\n", len(cookie), len(largeCookie), len(jwt.AccessToken), len(opaque.AccessToken))

	// Logins and tokens expire during a long run: each row that has them
	// can get new ones (scenario.fresh).
	session := func(front, host, user string) func() (*authv3.CheckRequest, error) {
		return func() (*authv3.CheckRequest, error) {
			c, err := loginAs(front, host, "/", idp, user)
			return browserRequest(c, ""), err
		}
	}
	bearer := func(c devidp.Client) func() (*authv3.CheckRequest, error) {
		return func() (*authv3.CheckRequest, error) {
			t, err := idp.Tokens(ctx, c, "alice", "alice-password")
			if err != nil {
				return nil, err
			}
			return apiRequest("Bearer " + t.AccessToken), nil
		}
	}
	alice, zara := session(front.envoy.URL, "", "alice"), session(largeFront.envoy.URL, "", largeUser.Username)
	manyAlice := session(manyFront.envoy.URL, manyAppsHost+":"+manyURL.Port(), "alice")
	now := time.Now()
	all := []scenario{
		{name: "session (cache hit)", proc: server, req: browserRequest(cookie, ""), want: 0, renew: alice},
		{name: "session without identity assertion (cache hit)", proc: noAssert, req: browserRequest(cookie, ""), want: 0, renew: alice},
		{name: "large session (cache hit)", proc: large, req: browserRequest(largeCookie, ""), want: 0, renew: zara},
		// The same session on a server with 50 apps: its app is found by
		// an exact host among 50, and its cookie keys are that app's.
		{name: "session with 50 apps (cache hit)", proc: many, req: browserRequest(manyCookie, ""), want: 0, renew: manyAlice},
		{name: "session (no session cache)", proc: noCache, req: browserRequest(cookie, ""), want: 0, renew: alice},
		{name: "JWT bearer (cached)", proc: server, req: apiRequest("Bearer " + jwt.AccessToken), want: 0, renew: bearer(jwtApp)},
		{name: "opaque bearer (cached)", proc: server, req: apiRequest("Bearer " + opaque.AccessToken), want: 0, renew: bearer(devidp.DefaultClient())},
		{name: "unauthenticated browser (302)", proc: server, req: browserRequest("", ""), want: 302},
		{name: "unauthenticated API (401)", proc: server, req: apiRequest(""), want: 401},
	}
	for i := range all {
		all[i].file, all[i].since = filepath.Join(work, fmt.Sprintf("scenario-%d.bin", i)), now
	}
	var scenarios []scenario
	for _, s := range all {
		if o.scenarios == "" || strings.Contains(","+o.scenarios+",", ","+s.name+",") {
			scenarios = append(scenarios, s)
		}
	}
	for i := range scenarios {
		if err := scenarios[i].prepare(); err != nil {
			return err
		}
	}

	// Each scenario is measured right after the floor server answering the
	// very same request bytes, so the ratio compares like with like.
	results := map[string]map[conc][2]result{}
	for _, c := range o.conc {
		for i := range scenarios {
			s := &scenarios[i]
			if err := s.fresh(cellBudget(o.rounds, o.duration)); err != nil {
				return err
			}
			onFloor := *s
			onFloor.proc = floor
			// Alternate floor and scenario and keep the medians: this
			// machine's noise moves single runs by ±20 %.
			var frs, rs []result
			for range o.rounds {
				fr, err := load(onFloor, c, o.duration, pin, work)
				if err != nil {
					return fmt.Errorf("floor for %s c=%s: %w", s.name, c, err)
				}
				r, err := load(*s, c, o.duration, pin, work)
				if err != nil {
					return fmt.Errorf("%s c=%s: %w", s.name, c, err)
				}
				frs, rs = append(frs, fr), append(rs, r)
			}
			if err := s.verify(); err != nil {
				return fmt.Errorf("after the load at c=%s (the row measured another answer): %w", c, err)
			}
			fr, r := median(frs), median(rs)
			if results[s.name] == nil {
				results[s.name] = map[conc][2]result{}
			}
			results[s.name][c] = [2]result{fr, r}
			fmt.Fprintf(os.Stderr, "  %-32s c=%-4s %8.0f req/s (floor %8.0f)\n", s.name, c, r.rps, fr.rps)
		}
	}
	printTable(scenarios, o.conc, results)
	if i, j := scenarioIndex(scenarios, "session (cache hit)"), scenarioIndex(scenarios, "session with 50 apps (cache hit)"); i >= 0 && j >= 0 {
		// Longer runs than the table's: a 2 s run's warm-up and this
		// machine's jitter would drown a difference of a few percent.
		if err := paired("Apps: the session on 1 app of 50 (exact host) against a server with one app", "1 app", "1 of 50 apps",
			&scenarios[i], &scenarios[j], o.conc, 4, max(3*o.duration, 6*time.Second), pin, work); err != nil {
			return err
		}
	}
	if i, j := scenarioIndex(scenarios, "session without identity assertion (cache hit)"), scenarioIndex(scenarios, "session (cache hit)"); i >= 0 && j >= 0 {
		if err := paired("Identity assertion: the session with the assertion against without", "without", "with",
			&scenarios[i], &scenarios[j], o.conc, 4, max(3*o.duration, 6*time.Second), pin, work); err != nil {
			return err
		}
	}

	fmt.Println()
	if o.redirects > 0 {
		if err := redirectFlood(server, scenarios, o.redirects, pin, work); err != nil {
			return err
		}
	}
	if o.tokens > 0 {
		if err := tokenFlood(server, o.tokens); err != nil {
			return err
		}
	}
	if o.withEnvoy {
		if err := envoyBench(o, ours, idp, pin, work); err != nil {
			return err
		}
	}
	if o.hold {
		fmt.Println("holding: the servers stay up for pprof (ops addresses above); Ctrl-C to stop")
		select {}
	}
	return nil
}

// largeUser has ZITADEL-sized tokens: several roles, a long name and
// e-mail (with largeApp's JWT access token, a session cookie of ~3.5 KB).
var largeUser = devidp.User{
	ID: "user-zara-284729384729384", Username: "zara", Password: "zara-password",
	Email: "zara.nakamura@engineering.example.com",
	Name:  "Zara Nakamura",
	Roles: []string{"admin", "editor", "billing.viewer"},
}

func serverConfig(issuer string, c devidp.Client, jwtAudience string, sessionCache int64) string {
	return fmt.Sprintf(`provider = "oidc"
oidc_issuer_url = %q
client_id = %q
client_secret = %q
cookie_secret = "bench-cookie-secret-of-32-bytes!"
cookie_secure = false
email_domains = ["*"]
skip_provider_button = true
pass_access_token = true
skip_jwt_bearer_tokens = true
extra_jwt_audiences = [%q]
session_cache_max_bytes = %d
token_cache_max_bytes = 33554432
refresh_before_expiry = "0s"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
log_format = "json"
log_level = "info"
enable_pprof = true
`, issuer, c.ID, c.Secret, jwtAudience, sessionCache)
}

func scenarioIndex(list []scenario, name string) int {
	return slices.IndexFunc(list, func(s scenario) bool { return s.name == name })
}

// manyAppsHost is the host of the app the 50-app scenario's session
// belongs to: the :authority of the bench's requests.
const manyAppsHost = "app.example.com"

// manyAppsEnvoy is the shipped envoy.yaml with a virtual host for
// manyAppsHost that names its app, as README "Many apps" tells users to
// write one (the catch-all virtual host names the default app).
func manyAppsEnvoy() []byte {
	cfg, err := envoy.WithVirtualHosts(envoy.VirtualHost{Name: "many", Domains: []string{manyAppsHost, manyAppsHost + ":*"}, App: "app25"})
	if err != nil {
		panic(err) // envoy.yaml is embedded: its tests catch this first
	}
	return cfg
}

// appsConfig is an apps list of 50 apps on the same issuer, one of which
// (client c) serves manyAppsHost.
func appsConfig(c devidp.Client) string {
	var b strings.Builder
	for i := range 50 {
		host, id := fmt.Sprintf("app%d.example.com", i), fmt.Sprintf("app%d@bench", i)
		if i == 25 {
			host, id = manyAppsHost, c.ID
		}
		fmt.Fprintf(&b, "\n[[apps]]\nname = \"app%d\"\nhosts = [%q, \"*.app%d.example.org\"]\nclient_id = %q\nclient_secret = %q\n", i, host, i, id, c.Secret)
	}
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown cpu"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown cpu"
}
