package main

import (
	"fmt"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// variantRows are row (b) with one thing changed each (-envoy-variants),
// measured in the same rounds as (b), so their difference to it is what
// that one thing costs: Envoy sending every request header (the shipped
// envoy.yaml without its allowed_headers), and our answer without the
// identity assertion. stop ends the Envoy processes they started. The
// first is left out when envoy.yaml has no allowed_headers list.
func variantRows(ours ourSetup, cookie string, pin bool) (rows []frontRow, stop func(), err error) {
	var fronts []*frontSetup
	stop = func() {
		for _, f := range fronts {
			f.stop()
		}
	}
	variant := func(name string, server *proc, config []byte) error {
		f, err := startFrontSetup(server, pin, config)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fronts = append(fronts, f)
		rows = append(rows, frontRow{name: name, url: f.envoy.URL + "/dashboard", cookie: cookie,
			procs: []int{f.envoy.Cmd.Process.Pid, server.pid(), f.echo.Process.Pid}, parts: []string{"Envoy", "zitadel-ext-authz", "echo"},
			want: []string{"x-forwarded-user", "user-"}})
		return nil
	}
	if all, err := envoy.AllowAllHeaders(envoy.Config); err == nil {
		if err := variant("(b) with every request header sent", ours.server, all); err != nil {
			return rows, stop, err
		}
	}
	if err := variant("(b) without the identity assertion", ours.noAssert, nil); err != nil {
		return rows, stop, err
	}
	return rows, stop, nil
}

// printFrontTable prints the Envoy section's table: req/s, latency, the CPU
// per request of the whole setup and of each of its processes, and the
// ratios the targets are stated in (BENCHMARKS.md "Through Envoy").
func printFrontTable(rows []frontRow, results map[string][]result) {
	fmt.Println("| setup | req/s | p50 ms | p99 ms | CPU µs/request | of which Envoy | ours / oauth2-proxy | echo | failed |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	med := map[string]result{}
	perReq := map[string]float64{}
	for _, r := range rows {
		m := median(results[r.name])
		parts := map[string]float64{}
		var total float64
		for i, p := range r.parts {
			parts[p] += m.perRequest[i]
			total += m.perRequest[i]
		}
		envoyCPU, server := "–", parts["zitadel-ext-authz"]+parts["oauth2-proxy"]
		if v, ok := parts["Envoy"]; ok {
			envoyCPU = fmt.Sprintf("%.0f", v)
		}
		fmt.Printf("| %s | %.0f | %.3f | %.3f | %.0f | %s | %.0f | %.0f | %d |\n", r.name, m.rps, m.p50, m.p99, total, envoyCPU, server, parts["echo"], m.failed)
		if len(r.name) >= 3 && r.name[0] == '(' && r.name[2] == ')' {
			if _, seen := med[r.name[:3]]; !seen {
				med[r.name[:3]], perReq[r.name[:3]] = m, total
			}
		}
	}
	b, c, d := med["(b)"], med["(c)"], med["(d)"]
	fmt.Println()
	if c.rps > 0 {
		fmt.Printf("req/s (b)/(c) = %.2f (target ≥ 1.5)\n", b.rps/c.rps)
	} else {
		fmt.Println("req/s (b)/(c): oauth2-proxy not run (make bench installs it with go install)")
	}
	fmt.Printf("req/s (b)/(d) = %.2f (target ≥ 0.9); CPU per request (b)/(d) = %.2f (target ≤ 1.1)\n", b.rps/d.rps, perReq["(b)"]/perReq["(d)"])
	fmt.Printf("CPU per request ext_authz adds over (a): %.0f µs; p99 (b)/(d) = %.2f\n", perReq["(b)"]-perReq["(a)"], b.p99/d.p99)
}
