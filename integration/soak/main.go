// Command soak runs two replicas of the server on one Redis (append-only
// file) behind the real Envoy, with the dev IdP, and drives them with
// clients that log in, make requests, refresh (cookie_refresh), sign out,
// are logged out by back-channel and call with bearer tokens, while Redis
// is killed and restarted and the IdP stopped and resumed on a schedule.
// It prints one line of what it measured and exits 1 when a target is
// missed: a session allowed after its acknowledged sign-out or logout
// (beyond redis_l1_ttl + 1 s), a live session sent to log in, a Check
// Envoy had to answer itself (past its deadline), a replica that exited,
// availability of live sessions outside fault windows under 99.9 %, or
// RSS growth in the second half over 20 MB.
//
//	go build -o bin/soak ./integration/soak && bin/soak --server bin/zitadel-ext-authz --duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/serverproc"
)

type options struct {
	server                string
	duration              time.Duration
	clients               int
	redisEvery, redisDown time.Duration
	redisMode             string // kill (one redis-server) or sentinel (failovers)
	idpEvery, idpDown     time.Duration
	l1TTL                 time.Duration
	verbose               bool
	keep                  bool
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "bin/zitadel-ext-authz", "the server binary")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to run")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients")
	flag.DurationVar(&o.redisEvery, "redis-every", 15*time.Second, "kill Redis this often")
	flag.DurationVar(&o.redisDown, "redis-down", 3*time.Second, "for this long")
	flag.StringVar(&o.redisMode, "redis", "kill", "kill: one redis-server, killed and restarted; sentinel: a master, a replica and a Sentinel, with a SENTINEL FAILOVER instead")
	flag.DurationVar(&o.idpEvery, "idp-every", 20*time.Second, "stop the IdP this often")
	flag.DurationVar(&o.idpDown, "idp-down", 3*time.Second, "for this long")
	flag.BoolVar(&o.verbose, "v", false, "print every violation as it happens")
	flag.BoolVar(&o.keep, "keep", false, "keep the servers' logs (their directory is printed)")
	flag.Parse()
	o.l1TTL = 2 * time.Second
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the example IdP logs every request
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	fmt.Println(res.line())
	if !res.ok() {
		for _, d := range res.details {
			fmt.Fprintln(os.Stderr, "  ", d)
		}
		os.Exit(1)
	}
}

// result is what the soak measured.
type result struct {
	seconds                               float64
	logins, checks, refreshes             int64
	redisFaults, idpFaults                int
	violations, lost, pastDeadline, exits int64
	ended, endedProbes                    int64 // acknowledged ends, and Checks of them after the limit
	liveOK, liveTotal                     int64 // live-session Checks outside fault windows
	rssStart, rssHalf, rssEnd             int64 // kB, summed over the replicas
	details                               []string
	mode                                  string // "sentinel failovers, " or ""
}

func (r *result) availability() float64 {
	if r.liveTotal == 0 {
		return 0
	}
	return 100 * float64(r.liveOK) / float64(r.liveTotal)
}

func (r *result) line() string {
	return fmt.Sprintf("soak: %s%.0fs, %d logins, %d refreshes, %.0f checks/s, faults %d (redis %d, idp %d), security violations %d (%d ended sessions, %d probes past 3 s), lost sessions %d, checks past deadline %d, exits %d, availability %.3f%% outside faults, rss growth %+.1f MB (second half %+.1f MB)",
		r.mode, r.seconds, r.logins, r.refreshes, float64(r.checks)/r.seconds, r.redisFaults+r.idpFaults, r.redisFaults, r.idpFaults,
		r.violations, r.ended, r.endedProbes, r.lost, r.pastDeadline, r.exits, r.availability(), float64(r.rssEnd-r.rssStart)/1024, float64(r.rssEnd-r.rssHalf)/1024)
}

func (r *result) ok() bool {
	// No ended session to probe would make "no violations" say nothing.
	return r.violations == 0 && r.ended > 0 && r.lost == 0 && r.pastDeadline == 0 && r.exits == 0 && r.availability() >= 99.9 && r.rssEnd-r.rssHalf < 20*1024
}

// rig is everything the soak runs.
type rig struct {
	o        options
	idp      *devidp.Server
	redis    *redisProc   // --redis kill
	sentinel *sentinelSet // --redis sentinel
	servers  []*serverproc.Proc
	envoys   []*envoyproc.Proc
	faults   faultLog
	res      result
	mu       sync.Mutex // res.details
	ended    endedSessions
}

func run(o options) (*result, error) {
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "soak: logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	r := &rig{o: o}
	switch o.redisMode {
	case "kill":
		if r.redis, err = startRedis(filepath.Join(dir, "redis")); err != nil {
			return nil, err
		}
		defer r.redis.stop()
	case "sentinel":
		if r.sentinel, err = startSentinelSet(filepath.Join(dir, "redis")); err != nil {
			return nil, err
		}
		defer r.sentinel.stop()
	default:
		return nil, fmt.Errorf("--redis %q: want kill or sentinel", o.redisMode)
	}
	var users []devidp.User
	for i := range o.clients {
		users = append(users, devidp.User{ID: fmt.Sprint("user-", i), Username: fmt.Sprint("user", i), Password: fmt.Sprint("pw-", i),
			Email: fmt.Sprintf("user%d@example.com", i), Name: "Soak User", Roles: []string{"reader"}})
	}
	if r.idp, err = devidp.Start(devidp.Options{Users: users}); err != nil {
		return nil, err
	}
	defer r.idp.Close()
	upstream, err := startEcho()
	if err != nil {
		return nil, err
	}
	defer upstream.Close()
	for i := range 2 {
		srv, err := r.startServer(filepath.Join(dir, fmt.Sprint("server", i)))
		if err != nil {
			return nil, err
		}
		defer srv.Stop(10 * time.Second)
		env, err := envoyproc.Start(envoyproc.Options{ExtAuthz: srv.GRPCAddr, OpsHTTP: srv.HTTPAddr, Echo: upstream.addr, Timeout: 2 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("envoy: %w", err)
		}
		defer env.Stop()
		r.servers, r.envoys = append(r.servers, srv), append(r.envoys, env)
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { r.injectRedisFaults(ctx) })
	wg.Go(func() { r.injectIdPFaults(ctx) })
	wg.Go(func() { r.probeEnded(ctx) })
	for i := range o.clients {
		wg.Go(func() { r.client(ctx, i, users[i]) })
	}
	// RSS: after a warm-up, at half time, at the end.
	wg.Go(func() {
		sample := func(at time.Duration) int64 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(start.Add(at))):
			}
			return r.rss()
		}
		r.res.rssStart = sample(5 * time.Second)
		r.res.rssHalf = sample(o.duration / 2)
	})
	wg.Wait()
	r.res.rssEnd = r.rss()
	r.res.seconds = time.Since(start).Seconds()
	if r.sentinel != nil {
		r.res.mode = "sentinel failovers, "
	}
	r.res.refreshes = r.refreshCount()
	for i, env := range r.envoys {
		n, err := env.Stat("http.ingress.ext_authz.error")
		if err == nil && n > 0 {
			r.res.pastDeadline += n
			r.detail(fmt.Sprintf("envoy %d answered %d Checks itself (ext_authz.error)", i, n))
		}
	}
	for i, srv := range r.servers {
		select {
		case <-srv.Exited():
			r.res.exits++
			r.detail(fmt.Sprintf("replica %d exited: %v", i, srv.Err()))
		default:
		}
	}
	return &r.res, nil
}

// debugf prints with -v: why a login didn't happen (faults make many).
func (r *rig) debugf(format string, a ...any) {
	if r.o.verbose {
		fmt.Fprintf(os.Stderr, "soak: "+format+"\n", a...)
	}
}

func (r *rig) detail(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.res.details) < 50 {
		r.res.details = append(r.res.details, s)
	}
	if r.o.verbose {
		fmt.Fprintln(os.Stderr, "soak:", s)
	}
}

func (r *rig) startServer(dir string) (*serverproc.Proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := devidp.DefaultClient()
	cfg := fmt.Sprintf(`provider = "oidc"
oidc_issuer_url = %q
client_id = %q
client_secret = %q
cookie_secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
cookie_secure = false
email_domains = ["*"]
skip_provider_button = true
session_store_type = "redis"
%s
redis_l1_ttl = %q
cookie_refresh = "15s"
skip_jwt_bearer_tokens = true
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
log_format = "json"
`, r.idp.Issuer, c.ID, c.Secret, r.redisKeys(), r.o.l1TTL.String())
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	srv, err := serverproc.Start(commandFor(r.o.server, path), logs, 20*time.Second)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := srv.WaitReady(20 * time.Second); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return srv, nil
}

// rss is the servers' resident memory, in kB.
func (r *rig) rss() int64 {
	var total int64
	for _, srv := range r.servers {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.Cmd.Process.Pid))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				total += n
			}
		}
	}
	return total
}

// faultLog records when parts were down, so answers within a fault (and
// a second after it, for reconnects) don't count against availability.
type faultLog struct {
	mu      sync.Mutex
	windows [][2]time.Time
}

func (f *faultLog) add(from, to time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows = append(f.windows, [2]time.Time{from, to.Add(time.Second)})
}

// during reports whether t falls in a fault window (an open one counts).
func (f *faultLog) during(from, to time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.windows {
		if from.Before(w[1]) && to.After(w[0]) {
			return true
		}
	}
	return false
}

func (r *rig) injectRedisFaults(ctx context.Context) {
	if r.sentinel != nil {
		r.injectFaults(ctx, r.o.redisEvery, 0, &r.res.redisFaults, func() {}, r.sentinel.failover, "sentinel failover")
		return
	}
	r.injectFaults(ctx, r.o.redisEvery, r.o.redisDown, &r.res.redisFaults, r.redis.kill, r.redis.start, "redis restart")
}

// redisKeys is how the servers reach Redis.
func (r *rig) redisKeys() string {
	if r.sentinel != nil {
		return fmt.Sprintf("redis_sentinel_addresses = [%q]\nredis_sentinel_master_name = %q", r.sentinel.addr, masterName)
	}
	return fmt.Sprintf("redis_url = \"redis://%s\"", r.redis.addr)
}

func (r *rig) injectIdPFaults(ctx context.Context) {
	r.injectFaults(ctx, r.o.idpEvery, r.o.idpDown, &r.res.idpFaults, func() { r.idp.Stop() }, r.idp.Resume, "idp resume")
}

// injectFaults takes a part away every period for down, recording the
// window, until ctx ends.
func (r *rig) injectFaults(ctx context.Context, every, down time.Duration, count *int, stop func(), back func() error, what string) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		from := time.Now()
		r.faults.add(from, from.Add(down+10*time.Second)) // open until closed below
		stop()
		*count++
		sleep(ctx, down)
		if err := back(); err != nil {
			r.detail(what + ": " + err.Error())
		}
		r.faults.close(from, time.Now())
	}
}

// close ends the window opened at from.
func (f *faultLog) close(from, to time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.windows {
		if w[0].Equal(from) {
			f.windows[i][1] = to.Add(time.Second)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// newClient is a cookie-keeping HTTP client that doesn't follow redirects.
func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (r *rig) front(i int) string { return r.envoys[i%len(r.envoys)].URL }

// refreshCount sums the replicas' zitadel_ext_authz_refreshes_total{outcome="ok"}.
func (r *rig) refreshCount() int64 {
	var total int64
	for _, srv := range r.servers {
		resp, err := http.Get("http://" + srv.HTTPAddr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for line := range strings.SplitSeq(string(body), "\n") {
			if strings.HasPrefix(line, "zitadel_ext_authz_refreshes_total{") && strings.Contains(line, `outcome="ok"`) {
				f := strings.Fields(line)
				n, _ := strconv.ParseFloat(f[len(f)-1], 64)
				total += int64(n)
			}
		}
	}
	return total
}
