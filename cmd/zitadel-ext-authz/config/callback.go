package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CallbackProblems names each app whose redirect_url points at one of our
// own listeners (http_address, grpc_address, metrics_address). ZITADEL's
// oauth2-proxy guide sets redirect_url to oauth2-proxy's own address
// (http://127.0.0.1:4180/oauth2/callback, with http_address
// 127.0.0.1:4180); here 4180 is the operations listener, which answers the
// callback 404: nobody could ever sign in. The login is finished inside
// the Check, so the callback must come through Envoy.
func (c *Config) CallbackProblems() []string {
	listeners := []struct{ key, addr, what string }{
		{"http_address", c.HTTPAddress, "operations listener (/healthz, /readyz, /metrics)"},
		{"grpc_address", c.GRPCAddress, "gRPC listener (the one Envoy calls)"},
		{"metrics_address", c.MetricsAddress, "metrics listener"},
	}
	var out []string
	for _, a := range c.AllApps() {
		u, err := url.Parse(a.Authz.RedirectURL)
		if err != nil || !u.IsAbs() || u.Host == "" {
			continue // a path: resolved against each request's host, through Envoy
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		for _, l := range listeners {
			if l.addr == "" || !sameListener(host, port, l.addr) {
				continue
			}
			where := ""
			if a.Name != DefaultAppName {
				where = "app " + a.Name + ": "
			}
			out = append(out, fmt.Sprintf("%sredirect_url %s is our own %s (%s = %s), which can't finish a sign-in: the callback must come through Envoy. "+
				"Set redirect_url to Envoy's external URL, e.g. %s://%s/oauth2/callback (Envoy's listener), or to the path /oauth2/callback (resolved against each request's host)",
				where, a.Authz.RedirectURL, l.what, l.key, l.addr, u.Scheme, envoyExample(host)))
		}
	}
	return out
}

// sameListener: host:port reaches a listener bound to addr on this
// machine (loopback names for a loopback or unspecified bind address).
func sameListener(host, port, addr string) bool {
	lh, lp, err := net.SplitHostPort(addr)
	if err != nil || lp != port {
		return false
	}
	loopback := func(h string) bool {
		if strings.EqualFold(h, "localhost") {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	switch {
	case strings.EqualFold(lh, host):
		return true
	case lh == "" || lh == "0.0.0.0" || lh == "::":
		return loopback(host)
	default:
		return loopback(lh) && loopback(host)
	}
}

// envoyExample is host with the port of the shipped envoy.yaml's listener.
func envoyExample(host string) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":8000"
}
