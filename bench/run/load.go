package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

type scenario struct {
	name string
	proc *proc
	req  *authv3.CheckRequest
	want int // 0 = OK, else the denied HTTP status
	file string
	// renew logs in or gets a token again, for a request with new
	// credentials (nil: the row has none that expire); since is when
	// req's were got.
	renew func() (*authv3.CheckRequest, error)
	since time.Time
	// reason is the answer's reason when prepared (dynamic metadata):
	// verify holds later answers to it.
	reason string
}

type result struct {
	rps, p50, p99, cpu, peakRSS float64
	failed                      int
	perRequest                  []float64 // the Envoy section: CPU µs per request of each process
}

// envoyRequest is a CheckRequest as Envoy sends a browser's request: about
// 15 headers (envoy-ext-authz.md §1).
func envoyRequest(extra map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "app.example.com", ":method": "GET", ":path": "/dashboard/reports?year=2026&sort=desc", ":scheme": "https",
		"accept-encoding":          "gzip, deflate, br, zstd",
		"accept-language":          "en-US,en;q=0.9,de;q=0.8",
		"user-agent":               "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"referer":                  "https://app.example.com/dashboard",
		"x-forwarded-for":          "203.0.113.7",
		"x-forwarded-proto":        "https",
		"x-request-id":             "5f2c3c9e-8d7a-4d5e-9a51-7f0c1b2d3e4f",
		"x-envoy-external-address": "203.0.113.7",
	}
	for k, v := range extra {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Id: "12345", Method: "GET", Path: h[":path"], Host: h[":authority"], Scheme: "https", Headers: h, Protocol: "HTTP/1.1",
	}}}}
}

func browserRequest(cookie, _ string) *authv3.CheckRequest {
	extra := map[string]string{
		"accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"sec-fetch-dest":            "document",
		"sec-fetch-mode":            "navigate",
		"sec-fetch-site":            "same-origin",
		"upgrade-insecure-requests": "1",
	}
	if cookie != "" {
		extra["cookie"] = cookie
	}
	return envoyRequest(extra)
}

func apiRequest(authorization string) *authv3.CheckRequest {
	extra := map[string]string{"accept": "application/json", "content-type": "application/json", "x-client-version": "2.4.1"}
	if authorization != "" {
		extra["authorization"] = authorization
	}
	return envoyRequest(extra)
}

// write writes the scenario's pre-encoded gRPC frame for h2load.
func (s *scenario) write() error {
	msg, err := proto.Marshal(s.req)
	if err != nil {
		return err
	}
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	return os.WriteFile(s.file, frame, 0o600)
}

var finished = regexp.MustCompile(`finished in ([0-9.]+)(m?s), ([0-9.]+) req/s`)
var succeeded = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)

// conc is a load's concurrency: streams in flight over conns HTTP/2
// connections ("64" spreads 64 streams over min(64, 4) connections, "64/1"
// puts them on one, as one Envoy worker does).
type conc struct{ streams, conns int }

func (c conc) String() string {
	if c.conns == 0 {
		return strconv.Itoa(c.streams)
	}
	return fmt.Sprintf("%d/%d", c.streams, c.conns)
}

func parseConc(s string) (conc, error) {
	streams, conns, one := strings.Cut(strings.TrimSpace(s), "/")
	var c conc
	var err error
	if c.streams, err = strconv.Atoi(streams); err != nil || c.streams < 1 {
		return c, fmt.Errorf("-concurrency: %q", s)
	}
	if one {
		if c.conns, err = strconv.Atoi(conns); err != nil || c.conns < 1 {
			return c, fmt.Errorf("-concurrency: %q", s)
		}
	}
	return c, nil
}

func h2loadArgs(s scenario, c conc, logFile string) []string {
	clients := c.conns
	if clients == 0 {
		clients = min(c.streams, 4)
	}
	return []string{
		"-c", strconv.Itoa(clients), "-m", strconv.Itoa((c.streams + clients - 1) / clients),
		"-H", "content-type: application/grpc", "-H", "te: trailers",
		"-d", s.file, "--log-file", logFile,
		"http://" + s.proc.grpcAddr + "/envoy.service.auth.v3.Authorization/Check",
	}
}

// load runs h2load against one scenario for d at concurrency conc.
func load(s scenario, conc conc, d time.Duration, pin bool, work string) (result, error) {
	logFile := filepath.Join(work, "h2load.log")
	args := append([]string{"-D", strconv.Itoa(int(d.Seconds())), "--warm-up-time", "1"}, h2loadArgs(s, conc, logFile)...)
	s.proc.resetPeak()
	r, _, err := runH2load(pin, args, logFile, s.proc.cpuSeconds)
	_, r.peakRSS = s.proc.memory()
	return r, err
}

// runH2load runs h2load on core 1 (when pinned) and reads its req/s,
// failures, latency percentiles (from logFile) and the CPU cpu() counted
// meanwhile; out is h2load's output.
func runH2load(pin bool, args []string, logFile string, cpu func() float64) (r result, out string, err error) {
	cpu0, wall0 := cpu(), time.Now()
	raw, err := command(pin, "1", "h2load", args...).CombinedOutput()
	cpu1, wall := cpu(), time.Since(wall0).Seconds()
	out = string(raw)
	if err != nil {
		return r, out, fmt.Errorf("h2load: %v\n%s", err, out)
	}
	m := finished.FindStringSubmatch(out)
	if m == nil {
		return r, out, fmt.Errorf("h2load output not understood:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[3], 64)
	if c := succeeded.FindStringSubmatch(out); c != nil {
		ok, _ := strconv.Atoi(c[4])
		total, _ := strconv.Atoi(c[1])
		r.failed = total - ok
	}
	r.cpu = (cpu1 - cpu0) / wall
	r.p50, r.p99, err = percentiles(logFile)
	return r, out, err
}

// percentiles reads h2load's per-request log: start, status, duration (µs).
func percentiles(path string) (p50, p99 float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var lat []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(fields[2], 64)
		if err == nil {
			lat = append(lat, v)
		}
	}
	if len(lat) == 0 {
		return 0, 0, nil
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return lat[int(math.Min(float64(len(lat)-1), q*float64(len(lat))))] / 1000 }
	return at(0.50), at(0.99), nil
}

func printTable(scenarios []scenario, concs []conc, results map[string]map[conc][2]result) {
	fmt.Println("| scenario | c | req/s | floor req/s | ratio | p50 ms | p99 ms | floor p99 ms | p99 ratio | CPU (cores) | peak RSS MB |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range concs {
		for _, s := range scenarios {
			fl, r := results[s.name][c][0], results[s.name][c][1]
			note := ""
			if r.failed > 0 {
				note = fmt.Sprintf(" (%d failed)", r.failed)
			}
			fmt.Printf("| %s%s | %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f |\n",
				s.name, note, c, r.rps, fl.rps, r.rps/fl.rps, r.p50, r.p99, fl.p99, r.p99/fl.p99, r.cpu, r.peakRSS)
		}
	}
}

// redirectFlood sends n unauthenticated browser Checks and reports RSS:
// the login redirect keeps no server-side state.
func redirectFlood(p *proc, scenarios []scenario, n int, pin bool, work string) error {
	var s scenario
	for _, sc := range scenarios {
		if sc.want == 302 {
			s = sc
		}
	}
	if s.file == "" {
		return nil
	}
	// Ten steps, RSS after each: flat means no state per redirect.
	step := max(n/10, 1)
	var after []string
	for done := 0; done < n; done += step {
		args := append([]string{"-n", strconv.Itoa(min(step, n-done))}, h2loadArgs(s, conc{streams: 64}, filepath.Join(work, "flood.log"))...)
		if out, err := command(pin, "1", "h2load", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("h2load: %v\n%s", err, out)
		}
		rss, _ := p.memory()
		after = append(after, fmt.Sprintf("%.1f", rss))
	}
	rss, peak := p.memory()
	fmt.Printf("RSS after %d unauthenticated redirects: %.1f MB (peak %.1f MB); target ≤ 64 MB and flat; after each %d: %s MB\n", n, rss, peak, step, strings.Join(after, ", "))
	return nil
}

// tokenFlood sends n Checks with distinct random bearer tokens and reports
// RSS against the configured token cache bound (32 MiB).
func tokenFlood(p *proc, n int) error {
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"bench-unknown"}`))
	var next atomic.Int64
	var wrong atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			buf := make([]byte, 96)
			for next.Add(1) <= int64(n) {
				rand.Read(buf)
				tok := header + "." + base64.RawURLEncoding.EncodeToString(buf[:48]) + "." + base64.RawURLEncoding.EncodeToString(buf[48:])
				resp, err := client.Check(context.Background(), apiRequest("Bearer "+tok))
				if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	rss, peak := p.memory()
	fmt.Printf("RSS after %d distinct bearer tokens (%.0f/s, %d not 401): %.1f MB (peak %.1f MB); target ≤ 64 MB + 32 MB token cache bound\n",
		n, float64(n)/time.Since(start).Seconds(), wrong.Load(), rss, peak)
	return nil
}

// median takes the median of each field over rounds.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := result{
		rps:     pick(func(r result) float64 { return r.rps }),
		p50:     pick(func(r result) float64 { return r.p50 }),
		p99:     pick(func(r result) float64 { return r.p99 }),
		cpu:     pick(func(r result) float64 { return r.cpu }),
		peakRSS: pick(func(r result) float64 { return r.peakRSS }),
	}
	for _, r := range rs {
		out.failed += r.failed
	}
	for i := range rs[0].perRequest {
		out.perRequest = append(out.perRequest, pick(func(r result) float64 { return r.perRequest[i] }))
	}
	return out
}
