package main

import (
	"fmt"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// variantRows are row (b) with one thing changed each (-envoy-variants),
// measured in the same rounds as (b), so their difference to it is what
// that one thing costs: Envoy sending every request header (the shipped
// envoy.yaml without its allowed_headers), our answer without the
// identity assertion, and a server that answers OK at once (the floor)
// in place of ours. Rows (e) and (f) are the least any ext_authz server
// can cost through Envoy: an Envoy with nothing but ext_authz and the
// router before the floor, over gRPC and over Envoy's HTTP ext_authz.
// stop ends the Envoy processes they started. The first is left out
// when envoy.yaml has no allowed_headers list.
func variantRows(ours ourSetup, cookie string, pin bool) (rows []frontRow, stop func(), err error) {
	var fronts []*frontSetup
	stop = func() {
		for _, f := range fronts {
			f.stop()
		}
	}
	user := []string{"x-forwarded-user", "user-"}
	floorUser := []string{"x-forwarded-user", "floor"}
	variant := func(name string, server *proc, config []byte, want []string) error {
		f, err := startFrontSetup(server, pin, config)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fronts = append(fronts, f)
		parts := []string{"Envoy", "zitadel-ext-authz", "echo"}
		if server.server == nil {
			parts[1] = "floor"
		}
		rows = append(rows, frontRow{name: name, url: f.envoy.URL + "/dashboard", cookie: cookie,
			procs: []int{f.envoy.Cmd.Process.Pid, server.pid(), f.echo.Process.Pid}, parts: parts, want: want})
		return nil
	}
	if all, err := envoy.AllowAllHeaders(envoy.Config); err == nil {
		if err := variant("(b) with every request header sent", ours.server, all, user); err != nil {
			return rows, stop, err
		}
	}
	for _, v := range []struct {
		name   string
		server *proc
		config []byte
		want   []string
	}{
		{"(b) without the identity assertion", ours.noAssert, nil, user},
		{"(b) with the floor server in place of ours", ours.floor, nil, floorUser},
		{"(e) Envoy with ext_authz alone, gRPC → floor", ours.floor, []byte(extAuthzOnlyConfig(false)), floorUser},
		{"(f) Envoy with ext_authz alone, HTTP → floor", ours.httpFloor, []byte(extAuthzOnlyConfig(true)), floorUser},
	} {
		if err := variant(v.name, v.server, v.config, v.want); err != nil {
			return rows, stop, err
		}
	}
	return rows, stop, nil
}

// extAuthzOnlyConfig is an Envoy with nothing but the ext_authz filter
// (gRPC, or Envoy's HTTP ext_authz with http) and the router before the
// echo.
func extAuthzOnlyConfig(http bool) string {
	service := "grpc_service: { envoy_grpc: { cluster_name: ext_authz }, timeout: 6s }"
	authz := cluster{name: "ext_authz", options: `    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
`}
	if http {
		service = `http_service:
                server_uri: { uri: "http://ext_authz", cluster: ext_authz, timeout: 6s }
                authorization_response:
                  allowed_upstream_headers: { patterns: [{ exact: x-forwarded-user }] }`
		authz.options = ""
	}
	return frontBootstrap("", `          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              `+service+"\n", authz)
}

// printFrontTable prints the Envoy section's table: req/s, latency, the CPU
// per request of the whole setup and of each of its processes, and the
// ratios the targets are stated in (BENCHMARKS.md "Through Envoy").
func printFrontTable(rows []frontRow, results map[string][]result) {
	fmt.Println("| setup | req/s | p50 ms | p99 ms | CPU µs/request | of which Envoy | ours / floor / oauth2-proxy | echo | failed |")
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
		envoyCPU, server := "–", parts["zitadel-ext-authz"]+parts["floor"]+parts["oauth2-proxy"]
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
	if perReq["(e)"] > 0 && perReq["(f)"] > 0 {
		fmt.Printf("the least any ext_authz server costs through Envoy (a server that answers at once): CPU per request (e)/(d) = %.2f over gRPC, (f)/(d) = %.2f over HTTP; req/s (e)/(d) = %.2f, (f)/(d) = %.2f\n",
			perReq["(e)"]/perReq["(d)"], perReq["(f)"]/perReq["(d)"], med["(e)"].rps/d.rps, med["(f)"].rps/d.rps)
	}
}
