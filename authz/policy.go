package authz

import (
	"net/netip"
	"time"
	"unicode/utf8"

	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// Reasons for a forbidden user, bounded for logs and metrics.
const (
	reasonNotInGroup   = "not_in_group"
	reasonEmailDomain  = "email_domain"
	reasonUnverifiedEm = "email_unverified"
	reasonWrongOrg     = "wrong_organization"
)

// user is what the policy reads of a session or a bearer token.
type user struct {
	email         string
	emailVerified bool
	groups        []string // group names and role keys
	roleGrants    []string // ZITADEL "role@orgId"
	roleOrg       string   // ZITADEL: the organization that granted every role (roleGrants empty)
	orgID         string
	orgDomain     string
	authTime      time.Time
	amr           []string
}

func sessionUser(s *sessionpb.Session) user {
	u := user{email: s.GetEmail(), emailVerified: s.GetEmailVerified(), groups: s.GetGroups(), roleGrants: s.GetRoleGrants(),
		roleOrg: s.GetRoleOrg(), orgID: s.GetOrgId(), orgDomain: s.GetOrgDomain(), amr: s.GetAmr()}
	if t := s.GetAuthTime(); t > 0 {
		u.authTime = time.Unix(t, 0)
	}
	return u
}

func identityUser(id oidcflow.Identity) user {
	return user{email: id.Email, emailVerified: id.EmailVerified, groups: id.Groups, roleGrants: id.RoleGrants,
		orgID: id.OrgID, orgDomain: id.OrgDomain, authTime: id.AuthTime, amr: id.AMR}
}

// inAnyGroup: an entry matches a group or role name, or a ZITADEL role
// with the organization that granted it ("role@orgId"). Groups that look
// like e-mail addresses (Google groups) still match as names.
func (u user) inAnyGroup(allowed []string) bool {
	return slices.ContainsFunc(allowed, func(a string) bool {
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
func (s *Server) authorize(u user) string {
	cfg := s.conf() // one policy for the whole decision
	if (cfg.OrganizationID != "" && u.orgID != cfg.OrganizationID) ||
		(cfg.OrganizationDomain != "" && !strings.EqualFold(u.orgDomain, cfg.OrganizationDomain)) {
		return reasonWrongOrg
	}
	if !emailAllowed(cfg.EmailDomains, u.email) && !cfg.AuthenticatedEmails[strings.ToLower(u.email)] {
		return reasonEmailDomain
	}
	if !u.emailVerified && !cfg.AllowUnverifiedEmail && !slices.Contains(cfg.EmailDomains, "*") {
		return reasonUnverifiedEm
	}
	if len(cfg.AllowedGroups) > 0 && !u.inAnyGroup(cfg.AllowedGroups) {
		return reasonNotInGroup
	}
	return ""
}

// emailAllowed applies email_domains: "*" is anyone; "example.com" matches
// that domain exactly; ".example.com" matches it and its subdomains. An empty
// list allows nobody.
func emailAllowed(domains []string, email string) bool {
	if slices.Contains(domains, "*") {
		return true
	}
	at := strings.LastIndexByte(email, '@')
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

func canonicalPath(p string) bool {
	if strings.Contains(p, "//") || strings.Contains(p, "\\") {
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
			end := i+1 == len(p) || p[i+1] == '/' || (p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/'))
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
		if err != nil || u.Host != "" || u.Scheme != "" {
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

func splitHostPort(hp string) (string, string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), ""
}

// trusted reports whether the client's address is in trusted_ips: the
// CheckRequest's source address (the peer Envoy saw), or with
// reverse_proxy the address in real_client_ip_header (x-forwarded-for:
// its first entry), which only a proxy in front of Envoy should set.
func (s *Server) trusted(set *settings, r *Request) bool {
	addr := r.sourceAddress()
	if set.ReverseProxy {
		addr = r.Headers[set.RealClientIPHeader]
		if set.RealClientIPHeader == "x-forwarded-for" {
			addr, _, _ = strings.Cut(addr, ",")
		}
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(addr))
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
