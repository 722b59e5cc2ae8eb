package authz

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// inAnyGroup: an entry matches a group or role name, or a ZITADEL role
// with the organization that granted it ("role@orgId"). Groups that look
// like e-mail addresses (Google groups) still match as names.
func (u user) inAnyGroup(allowed []string) bool {
	return slices.ContainsFunc(allowed, func(a string) bool {
		// An empty entry is no group (oauth2-proxy #3365): it must not
		// match a user whose IdP sent an empty group name.
		if a == "" {
			return false
		}
		if slices.Contains(u.groups, a) || slices.Contains(u.roleGrants, a) {
			return true
		}
		role, org, ok := strings.Cut(a, "@")
		return ok && u.roleOrg != "" && org == u.roleOrg && slices.Contains(u.groups, role)
	})
}

// authorize checks a logged-in user against the organization,
// email_domains and allowed_groups. It returns a reason label, or "" when
// allowed.
func (s *Server) authorize(u user) Reason {
	cfg := s.conf() // one policy for the whole decision
	if (cfg.OrganizationID != "" && u.orgID != cfg.OrganizationID) ||
		(cfg.OrganizationDomain != "" && !strings.EqualFold(u.orgDomain, cfg.OrganizationDomain)) {
		return ReasonWrongOrg
	}
	// An e-mail claim that isn't one address (mallory@evil.example@corp.example)
	// belongs to no domain, whatever email_domains says (oauth2-proxy's
	// GHSA-c5c4-8r6x-56w3 let such addresses through).
	if u.email != "" && !ValidAddress(u.email) {
		return ReasonEmailDomain
	}
	if !emailAllowed(cfg.EmailDomains, u.email) && !cfg.AuthenticatedEmails[strings.ToLower(u.email)] {
		return ReasonEmailDomain
	}
	// An address the IdP says it hasn't verified is no one's, whatever the
	// domains ("*" too: it would reach the upstream as x-forwarded-email),
	// as in oauth2-proxy. Where a domain list decides who gets in, an
	// address without email_verified doesn't count either.
	if u.email != "" && !u.emailVerified && !cfg.AllowUnverifiedEmail && (u.emailUnverified || !slices.Contains(cfg.EmailDomains, "*")) {
		return ReasonEmailUnverified
	}
	if len(cfg.AllowedGroups) > 0 && !u.inAnyGroup(cfg.AllowedGroups) {
		return ReasonNotInGroup
	}
	return ""
}

// emailAllowed applies email_domains to an address (ValidAddress: the
// caller checked it): "*" is anyone; "example.com" matches that domain
// exactly; ".example.com" matches it and its subdomains. An empty list
// allows nobody, and so does an empty address.
func emailAllowed(domains []string, email string) bool {
	if slices.Contains(domains, "*") {
		return true
	}
	at := strings.IndexByte(email, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(email[at+1:])
	for _, d := range domains {
		if domainMatch(domain, strings.ToLower(d)) {
			return true
		}
	}
	return false
}

// ValidAddress reports whether email is one address: exactly one '@', with
// a local part before it and a domain after it that is no empty label
// ("a@", "a@.x", "a@x." and "a@x..y" are not addresses of x). The
// configuration checks authenticated_emails_file with it too.
func ValidAddress(email string) bool {
	at := strings.IndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || strings.IndexByte(email[at+1:], '@') >= 0 {
		return false
	}
	domain := email[at+1:]
	return domain[0] != '.' && domain[len(domain)-1] != '.' && !strings.Contains(domain, "..")
}

// domainMatch: "example.com" matches only itself; ".example.com" matches
// example.com and every subdomain (oauth2-proxy's convention).
func domainMatch(host, pattern string) bool {
	if strings.HasPrefix(pattern, ".") {
		return host == pattern[1:] || strings.HasSuffix(host, pattern)
	}
	return host == pattern
}

// whitelistMatch reads a whitelist_domains host as oauth2-proxy does:
// "*.example.com" is any subdomain (not example.com itself),
// ".example.com" is example.com and its subdomains, else the host exactly.
func whitelistMatch(host, pattern string) bool {
	if sub, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+sub)
	}
	return domainMatch(host, pattern)
}

// skipAuth reports whether a skip_auth_routes entry lets the request through
// without login. Paths with dot segments, doubled or encoded slashes never
// match: "/public/../admin" must not reach /admin unauthenticated.
func (s *Server) skipAuth(r *Request) bool {
	routes := s.conf().SkipAuthRoutes
	if len(routes) == 0 || !canonicalPath(r.Path) {
		return false
	}
	for _, rt := range routes {
		if (rt.Method == "" || rt.Method == r.Method) && rt.Path.MatchString(r.Path) != rt.Negate {
			return true
		}
	}
	return false
}

// canonicalPath: no doubled slash, backslash or '#' (Envoy refuses a
// fragment in :path; a fragment-looking tail must not satisfy a pattern,
// oauth2-proxy GHSA-pxq7-h93f-9jrg), no encoded dot or slash, and no dot
// segment, also with parameters ("..;x", which Tomcat and Jetty resolve
// as "..": Envoy CVE-2026-73551).
func canonicalPath(p string) bool {
	if strings.Contains(p, "//") || strings.ContainsAny(p, "\\#") {
		return false
	}
	// Encoded dot or slash (%2e, %2f, %5c) in any case, and dot segments,
	// without allocating: skipAuth runs on every Check.
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			if i+2 < len(p) {
				if enc := p[i+1 : i+3]; strings.EqualFold(enc, "2e") || strings.EqualFold(enc, "2f") || strings.EqualFold(enc, "5c") {
					return false
				}
			}
		case '.':
			start := i == 0 || p[i-1] == '/'
			end := i+1 == len(p) || p[i+1] == '/' || p[i+1] == ';' || (p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/' || p[i+2] == ';'))
			if start && end {
				return false
			}
		}
	}
	return true
}

// returnURL validates a post-login or post-logout target: a local path
// ("/x", never "//x" or "/\x"), or an absolute http(s) URL on the request's
// own host or a whitelist_domains host. It returns the absolute URL, or
// false when the target would leave for a foreign host.
func (s *Server) returnURL(r *Request, rd string) (string, bool) {
	// Not UTF-8 (rd=%2F%FF): the state that carries it couldn't be sealed.
	if rd == "" || len(rd) > 4096 || !utf8.ValidString(rd) || strings.ContainsFunc(rd, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "", false
	}
	if strings.HasPrefix(rd, "/") {
		if strings.HasPrefix(rd, "//") {
			return "", false
		}
		u, err := url.Parse(rd)
		// Decoded, "/%2f%2fevil" is "//evil": an app that redirects to
		// its own path would send the browser off-site (oauth2-proxy
		// GHSA-5m6c-jp6f-2vcv).
		if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") {
			return "", false
		}
		return r.Scheme + "://" + r.Host + rd, true
	}
	u, err := url.Parse(rd)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" {
		return "", false
	}
	if strings.EqualFold(u.Host, r.Host) || s.whitelisted(u.Host) {
		return u.String(), true
	}
	return "", false
}

// whitelisted applies whitelist_domains: "example.com" (that host, default
// port), ".example.com" (and subdomains), optionally with ":port" or ":*".
func (s *Server) whitelisted(hostport string) bool {
	host, port := splitHostPort(strings.ToLower(hostport))
	for _, w := range s.conf().WhitelistDomains {
		wh, wp := splitHostPort(strings.ToLower(w))
		if wp != "*" && wp != port {
			continue
		}
		if whitelistMatch(host, wh) {
			return true
		}
	}
	return false
}

// fromRight is the nth comma-separated entry of list counted from the
// right (1: the last), or "" when it has fewer.
func fromRight(list string, n int) string {
	for ; n > 1; n-- {
		i := strings.LastIndexByte(list, ',')
		if i < 0 {
			return ""
		}
		list = list[:i]
	}
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		list = list[i+1:]
	}
	return list
}

func splitHostPort(hp string) (string, string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), ""
}

// trusted reports whether the client's address is in trusted_ips: the
// CheckRequest's source address (the peer Envoy saw), or with
// reverse_proxy the entry of real_client_ip_header trusted_proxy_hops from
// the right. Every proxy appends the address it saw (Envoy with
// use_remote_address), and repeated header lines reach us joined with ','
// in order, so the entries further left are whatever the client wrote.
func (s *Server) trusted(set *settings, r *Request) bool {
	ip, err := netip.ParseAddr(strings.TrimSpace(s.clientAddress(set, r)))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range set.TrustedIPs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
