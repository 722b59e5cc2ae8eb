package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// buildAccess: who passes and what the upstream is told, as oauth2-proxy's
// keys of the same names say (skip_auth_preflight, trusted_ips with
// reverse_proxy and real_client_ip_header, authenticated_emails_file,
// prefer_email_to_user, pass_basic_auth and basic_auth_password).
func (r *resolver) buildAccess(c *Config) {
	a := &c.Authz
	a.SkipAuthPreflight = r.boolean("skip_auth_preflight")
	for _, e := range r.list("trusted_ips") {
		p, err := parsePrefix(e)
		if err != nil {
			r.fail("trusted_ips", "entry %q: want an IP address or a CIDR range (10.0.0.0/8)", e)
			continue
		}
		a.TrustedIPs = append(a.TrustedIPs, p)
	}
	a.ReverseProxy = r.boolean("reverse_proxy")
	a.RealClientIPHeader = strings.ToLower(r.str("real_client_ip_header"))
	a.TrustedProxyHops = int(r.integer("trusted_proxy_hops"))
	if a.TrustedProxyHops < 1 || a.TrustedProxyHops > 16 {
		r.fail("trusted_proxy_hops", "want 1 to 16 (the number of trusted proxies that append the client's address to real_client_ip_header), got %d", a.TrustedProxyHops)
	}
	if len(a.TrustedIPs) > 0 && a.ReverseProxy {
		r.warnings = append(r.warnings, r.where+"trusted_ips: with reverse_proxy the client's address is taken from "+a.RealClientIPHeader+"; make sure the proxy before Envoy sets it and Envoy doesn't pass a client's own")
	}
	for _, o := range r.list("csrf_allowed_origins") {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			r.fail("csrf_allowed_origins", "entry %q: want an origin such as https://admin.example.com or https://*.example.com (scheme and host, no path)", o)
			continue
		}
		a.CSRFAllowedOrigins = append(a.CSRFAllowedOrigins, strings.TrimSuffix(o, "/"))
	}
	for _, k := range r.list("ignored_route_keys") {
		if slices.ContainsFunc(authz.RouteKeys(), func(rk authz.RouteKey) bool { return rk.Name == k }) {
			r.fail("ignored_route_keys", "%q is a route key of ours: it can't be ignored", k)
		}
		a.IgnoredRouteKeys = append(a.IgnoredRouteKeys, k)
	}
	if path := r.str("authenticated_emails_file"); path != "" {
		if data, ok := r.readFile(c, "authenticated_emails_file", path); ok {
			a.AuthenticatedEmails = map[string]bool{}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				e := strings.ToLower(strings.TrimSpace(sc.Text()))
				if e == "" || strings.HasPrefix(e, "#") {
					continue
				}
				if !authz.ValidAddress(e) {
					r.warnings = append(r.warnings, fmt.Sprintf("%sauthenticated_emails_file: %q is not one e-mail address (exactly one '@', a name and a domain); ignored", r.where, e))
					continue
				}
				a.AuthenticatedEmails[e] = true
			}
		}
	}
	a.PreferEmailToUser = r.boolean("prefer_email_to_user")
	a.PassBasicAuth, a.BasicAuthPassword = r.boolean("pass_basic_auth"), r.str("basic_auth_password")
	if a.PassBasicAuth && a.PassAuthorizationHeader {
		r.fail("pass_basic_auth", "pass_basic_auth and pass_authorization_header (or set_authorization_header) both set the Authorization header: choose one")
	}
}

// parsePrefix reads "10.1.2.3" (that address) or "10.0.0.0/8".
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
