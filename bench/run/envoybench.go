package main

import (
	"bufio"
	"debug/buildinfo"
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
	"time"

	// The oauth2 filter's config type, for the floor row's bootstrap.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
)

// The Envoy section of make bench (BENCHMARKS.md "Through Envoy"): HTTP
// requests with a valid session through four front setups, all on core 0
// with h2load on core 1, HTTP/1.1 (oauth2-proxy speaks nothing else
// without TLS), the same request headers everywhere but each setup's own
// session cookie:
//
//	(a) Envoy → echo, ext_authz disabled (the route /public/)
//	(b) Envoy + ext_authz gRPC → zitadel-ext-authz, valid session
//	(c) oauth2-proxy v7 as the reverse proxy in front of the echo
//	(d) Envoy's own envoy.filters.http.oauth2 filter, valid cookie
//
// CPU per request adds up every process of the setup (Envoy, our server or
// oauth2-proxy, the upstream) and is split by process. Each row is checked
// once to reach the echo page with the user's identity; under load the
// upstream answers a small fixed page (serveEcho).

// frontRow is one row of the table.
type frontRow struct {
	name   string
	url    string   // what h2load requests
	cookie string   // the session's Cookie header ("" for a)
	procs  []int    // pids whose CPU the row spends
	parts  []string // what each of procs is, for the CPU breakdown
	want   []string // the echo page must show these (identity reached the upstream)
}

// frontSetup is the shipped envoy.yaml's Envoy with its echo upstream,
// started by main: the gRPC scenarios log in through it too.
type frontSetup struct {
	envoy    *envoyproc.Proc
	version  string
	bin      string
	prefix   []string
	echo     *exec.Cmd
	echoAddr string
}

// startFrontSetup starts the echo and the real Envoy with the shipped
// envoy.yaml in front of server, pinned to core 0.
func startFrontSetup(server *proc, pin bool, config []byte) (*frontSetup, error) {
	bin, err := envoyproc.Find()
	if err != nil {
		return nil, err
	}
	f := &frontSetup{bin: bin}
	f.version, _ = envoyproc.BinaryVersion(bin)
	if pin {
		f.prefix = []string{"taskset", "-c", "0"}
	}
	if f.echo, f.echoAddr, err = startEcho(pin); err != nil {
		return nil, err
	}
	ops := "127.0.0.1:1" // the floor has no operations listener
	if server.server != nil {
		ops = server.server.HTTPAddr
	}
	f.envoy, err = envoyproc.Start(envoyproc.Options{Binary: bin, Config: config, Prefix: f.prefix, ExtAuthz: server.grpcAddr, OpsHTTP: ops, Echo: f.echoAddr})
	if err != nil {
		stopCmd(f.echo)
		return nil, err
	}
	return f, nil
}

func (f *frontSetup) stop() {
	f.envoy.Stop()
	stopCmd(f.echo)
}

// ourSetup is what row (b) and its variants run: the front Envoy (the
// shipped envoy.yaml) before the server with the real-sized session's app,
// the same server without the identity assertion, the floor servers, and
// the user who logs in.
type ourSetup struct {
	front            *frontSetup
	server, noAssert *proc
	// floor and httpFloor answer at once, over gRPC and over Envoy's
	// HTTP ext_authz (bench/floor).
	floor, httpFloor *proc
	user             string
}

// envoyBench runs the four rows (and with -envoy-variants the variants of
// (b), each changing one thing) and prints their table and the ratios.
func envoyBench(o options, ours ourSetup, idp *devidp.Server, pin bool, work string) error {
	f := ours.front
	bin, prefix, echoProc, echoAddr, front := f.bin, f.prefix, f.echo, f.echoAddr, f.envoy
	// A fresh session: an earlier one's access token may have expired.
	cookie, err := loginThrough(front.URL, "/", idp, ours.user)
	if err != nil {
		return fmt.Errorf("login for the Envoy section: %w", err)
	}

	// (d): Envoy's oauth2 filter in front of the same echo.
	filter, err := envoyproc.Start(envoyproc.Options{Binary: bin, Prefix: prefix, Config: []byte(oauth2FilterConfig(idp.Issuer)),
		Clusters: map[string]string{"echo": echoAddr, "idp": strings.TrimPrefix(idp.Issuer, "http://")}})
	if err != nil {
		return fmt.Errorf("envoy with the oauth2 filter: %w", err)
	}
	defer filter.Stop()
	theirs, err := loginThrough(filter.URL, "/dashboard", idp, ours.user)
	if err != nil {
		return fmt.Errorf("login through Envoy's oauth2 filter: %w", err)
	}

	withUs := []string{"Envoy", "zitadel-ext-authz", "echo"}
	rows := []frontRow{
		// (a) sends the same request as (b), cookie and all: the
		// difference is what ext_authz adds.
		{name: "(a) Envoy → echo, no auth", url: front.URL + "/public/dashboard", cookie: cookie, procs: []int{front.Cmd.Process.Pid, echoProc.Process.Pid}, parts: []string{"Envoy", "echo"}},
		{name: "(b) Envoy + ext_authz → zitadel-ext-authz", url: front.URL + "/dashboard", cookie: cookie,
			procs: []int{front.Cmd.Process.Pid, ours.server.pid(), echoProc.Process.Pid}, parts: withUs, want: []string{"x-forwarded-user", "user-", "x-forwarded-access-token"}},
	}
	// (c): oauth2-proxy, when make bench could install it.
	if o.oauth2Proxy != "" {
		op, err := startOAuth2Proxy(o.oauth2Proxy, idp, echoAddr, pin, work)
		if err != nil {
			return fmt.Errorf("oauth2-proxy: %w", err)
		}
		defer stopCmd(op.cmd)
		opCookie, err := loginThrough(op.url, "/dashboard", idp, ours.user)
		if err != nil {
			return fmt.Errorf("login through oauth2-proxy: %w", err)
		}
		rows = append(rows, frontRow{name: "(c) oauth2-proxy " + op.version + " → echo", url: op.url + "/dashboard", cookie: opCookie,
			procs: []int{op.cmd.Process.Pid, echoProc.Process.Pid}, parts: []string{"oauth2-proxy", "echo"}, want: []string{"x-forwarded-user", "user-", "x-forwarded-access-token"}})
	}
	rows = append(rows, frontRow{name: "(d) Envoy oauth2 filter → echo", url: filter.URL + "/dashboard", cookie: theirs,
		procs: []int{filter.Cmd.Process.Pid, echoProc.Process.Pid}, parts: []string{"Envoy", "echo"}, want: []string{"authorization", "Bearer "}})
	if o.envoyVariants {
		variants, stop, err := variantRows(ours, cookie, pin)
		defer stop()
		if err != nil {
			return err
		}
		rows = append(rows, variants...)
	}

	for _, r := range rows {
		if err := r.verify(); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	fmt.Printf("\nThrough Envoy %s (%s): HTTP/1.1, %d connections, one request each at a time; cookie headers: ours %d bytes, Envoy oauth2 filter %d bytes\n",
		f.version, bin, o.frontConns, len(cookie), len(theirs))
	results := map[string][]result{}
	for range o.rounds {
		for _, r := range rows {
			res, err := r.load(o.frontConns, o.duration, pin, work)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			results[r.name] = append(results[r.name], res)
			fmt.Fprintf(os.Stderr, "  %-45s %8.0f req/s\n", r.name, res.rps)
		}
	}
	printFrontTable(rows, results)
	return nil
}

// verify fetches the row's URL once: the echo page, with identity.
func (r frontRow) verify() error {
	req, _ := http.NewRequest(http.MethodGet, r.url+"?echo=1", nil)
	for k, v := range benchHeaders(r.cookie) {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got, err := echo.Parse(body)
	if resp.StatusCode != http.StatusOK || err != nil {
		return fmt.Errorf("want the echo page, got %d %.200s", resp.StatusCode, body)
	}
	for i := 0; i+1 < len(r.want); i += 2 {
		if !strings.Contains(got.Headers[r.want[i]], r.want[i+1]) {
			return fmt.Errorf("upstream %s = %.60q, want %q", r.want[i], got.Headers[r.want[i]], r.want[i+1])
		}
	}
	return nil
}

// benchHeaders are a browser's request headers, the same for every row.
func benchHeaders(cookie string) map[string]string {
	h := map[string]string{
		"accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"accept-language": "en-US,en;q=0.9,de;q=0.8",
		"user-agent":      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	}
	if cookie != "" {
		h["cookie"] = cookie
	}
	return h
}

// load runs h2load (HTTP/1.1) against the row for d; the result's
// perRequest splits the CPU per request by process (r.parts).
func (r frontRow) load(conns int, d time.Duration, pin bool, work string) (result, error) {
	logFile := filepath.Join(work, "h2load-front.log")
	args := []string{"--h1", "-D", strconv.Itoa(int(d.Seconds())), "--warm-up-time", "1", "-c", strconv.Itoa(conns), "-m", "1", "--log-file", logFile}
	for k, v := range benchHeaders(r.cookie) {
		args = append(args, "-H", k+": "+v)
	}
	args = append(args, r.url)
	before := cpuEach(r.procs)
	res, out, err := runH2load(pin, args, logFile, func() float64 { return cpuOf(r.procs) })
	if err != nil {
		return res, err
	}
	after := cpuEach(r.procs)
	var total float64
	for i := range after {
		total += after[i] - before[i]
	}
	for i := range after {
		res.perRequest = append(res.perRequest, (after[i]-before[i])/total*res.cpu/res.rps*1e6)
	}
	if st := statusCodes.FindStringSubmatch(out); st != nil && (st[2] != "0" || st[3] != "0" || st[4] != "0") {
		return res, fmt.Errorf("non-2xx answers under load: %s", st[0])
	}
	return res, nil
}

var statusCodes = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)

// cpuEach is the user+system CPU seconds of each of pids.
func cpuEach(pids []int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		out[i] = cpuSecondsOf(pid)
	}
	return out
}

// cpuOf adds up the user+system CPU seconds of pids.
func cpuOf(pids []int) float64 {
	var sum float64
	for _, pid := range pids {
		sum += cpuSecondsOf(pid)
	}
	return sum
}

// loginThrough logs alice in through a front (any of the three setups) as
// a browser does and returns the Cookie header it then sends.
func loginThrough(front, path string, idp *devidp.Server, user string) (string, error) {
	return loginAs(front, "", path, idp, user)
}

// loginAs is loginThrough with the front reached under host name host
// (sent as Host; "" keeps the front's address), as a browser reaches one
// app of several.
func loginAs(front, host, path string, idp *devidp.Server, user string) (string, error) {
	jar := map[string]*http.Cookie{}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	frontURL, _ := url.Parse(front)
	get := func(target string) (*http.Response, error) {
		if u, err := url.Parse(target); err == nil && host != "" && u.Host == host {
			u.Host = frontURL.Host
			target = u.String()
		}
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if host != "" && strings.HasPrefix(target, front) {
			req.Host = host
		}
		req.Header.Set("Accept", "text/html")
		if strings.HasPrefix(target, front) {
			for _, c := range jar {
				req.AddCookie(c)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if strings.HasPrefix(target, front) {
			for _, c := range resp.Cookies() {
				if c.MaxAge < 0 || c.Value == "" {
					delete(jar, c.Name)
				} else {
					jar[c.Name] = c
				}
			}
		}
		return resp, nil
	}
	target := front + path
	for range 8 {
		resp, err := get(target)
		if err != nil {
			return "", err
		}
		loc, err := resp.Location()
		if err != nil {
			break // not a redirect
		}
		if strings.HasPrefix(loc.String(), idp.Issuer) {
			cb, err := devidp.LoginForm(client, loc.String(), user, user+"-password")
			if err != nil {
				return "", err
			}
			loc = cb
		}
		if !strings.HasPrefix(loc.String(), "http") {
			base, _ := url.Parse(front)
			loc = base.ResolveReference(loc)
		}
		target = loc.String()
	}
	if len(jar) == 0 {
		return "", fmt.Errorf("no session cookie after the login")
	}
	var parts []string
	for _, c := range jar {
		parts = append(parts, c.Name+"="+c.Value)
	}
	// The app's own cookies ride along, as in a real browser.
	return "theme=dark; _ga=GA1.1.123456789.1700000000; " + strings.Join(parts, "; "), nil
}

// startEcho runs the echo upstream as its own process (this binary with
// -serve-echo), pinned to core 0 with the setups, so its CPU is counted.
func startEcho(pin bool) (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := command(pin, "0", self, "-serve-echo", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stopCmd(cmd)
		return nil, "", fmt.Errorf("echo: %w", err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "listening ")), nil
}

// serveEcho is the -serve-echo mode: the upstream of every row. A request
// with the query parameter echo gets the echo page (each row's check that
// the user's identity arrived); the load gets a small fixed page, as an
// app's page doesn't render every request header: with the echo page the
// upstream's CPU grew with the bytes of headers each setup forwards
// (html/template escaping them), which is not what the rows compare.
func serveEcho(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	page, echoPage := []byte("<!doctype html><title>Dashboard</title><p>Reports for 2026</p>\n"), echo.Handler()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("echo") {
			echoPage.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	return (&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)
}

func stopCmd(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// oauth2Proxy is a running oauth2-proxy.
type oauth2Proxy struct {
	cmd     *exec.Cmd
	url     string
	version string
}

// startOAuth2Proxy runs oauth2-proxy as the reverse proxy in front of the
// echo (upstreams), configured like ZITADEL's guide, against the dev IdP.
func startOAuth2Proxy(bin string, idp *devidp.Server, echoAddr string, pin bool, work string) (*oauth2Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	c := devidp.DefaultClient()
	cfg := fmt.Sprintf(`provider = "oidc"
provider_display_name = "ZITADEL"
oidc_issuer_url = %q
client_id = %q
client_secret = %q
redirect_url = "http://%s/oauth2/callback"
upstreams = ["http://%s/"]
email_domains = ["*"]
cookie_secret = "bench-cookie-secret-of-32-bytes!"
cookie_secure = false
skip_provider_button = true
pass_access_token = true
code_challenge_method = "S256"
http_address = %q
request_logging = false
standard_logging = false
auth_logging = false
`, idp.Issuer, c.ID, c.Secret, addr, echoAddr, addr)
	path := filepath.Join(work, "oauth2-proxy.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	version := "v7"
	if bi, err := buildinfo.ReadFile(bin); err == nil && bi.Main.Version != "" {
		version = bi.Main.Version // go install sets no -X version, the module has it
	}
	cmd := command(pin, "0", bin, "--config", path)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &oauth2Proxy{cmd: cmd, url: "http://" + addr, version: version}, nil
			}
		}
		if time.Now().After(deadline) {
			stopCmd(cmd)
			return nil, fmt.Errorf("not up within 20 s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling to a deadline
	}
}

// oauth2FilterConfig is an Envoy bootstrap with the oauth2 filter logging
// in at the dev IdP (client_secret_basic, as our client does) and passing
// the access token upstream (forward_bearer_token), like pass_access_token.
func oauth2FilterConfig(issuer string) string {
	c := devidp.DefaultClient()
	secrets := fmt.Sprintf(`  secrets:
  - name: token
    generic_secret: { secret: { inline_string: %q } }
  - name: hmac
    generic_secret: { secret: { inline_string: "bench-hmac-secret-of-32-bytes!!!" } }
`, c.Secret)
	filter := fmt.Sprintf(`          - name: envoy.filters.http.oauth2
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2
              config:
                token_endpoint: { cluster: idp, uri: "%s/oauth/token", timeout: 5s }
                authorization_endpoint: "%s/auth"
                redirect_uri: "%%REQ(x-forwarded-proto)%%://%%REQ(:authority)%%/oauth2/callback"
                redirect_path_matcher: { path: { exact: /oauth2/callback } }
                signout_path: { path: { exact: /oauth2/sign_out } }
                credentials:
                  client_id: %q
                  token_secret: { name: token }
                  hmac_secret: { name: hmac }
                auth_scopes: [openid, email, profile]
                auth_type: BASIC_AUTH
                forward_bearer_token: true
`, issuer, issuer, c.ID)
	return frontBootstrap(secrets, filter, cluster{name: "idp"})
}

// cluster is a cluster of a frontBootstrap besides the echo: its name and
// its protocol options ("" for none); envoyproc fills in its address.
type cluster struct{ name, options string }

// frontBootstrap is the Envoy of the Envoy section's own setups (d), (e)
// and (f): one HTTP filter (filter: its entry under http_filters) and the
// router before the echo, and nothing else of the shipped envoy.yaml (no
// path normalisation, header list, RBAC or access log). head goes under
// static_resources before the listener.
func frontBootstrap(head, filter string, clusters ...cluster) string {
	var b strings.Builder
	b.WriteString("static_resources:\n" + head + `  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: echo }
          http_filters:
` + filter + `          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
`)
	for _, c := range append([]cluster{{name: "echo"}}, clusters...) {
		fmt.Fprintf(&b, "  - name: %s\n    type: STATIC\n    connect_timeout: 1s\n%s", c.name, c.options)
		fmt.Fprintf(&b, "    load_assignment:\n      cluster_name: %s\n      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }]\n", c.name)
	}
	return b.String()
}
