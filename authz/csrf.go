package authz

import (
	"net/url"
	"strings"
)

// Cross-site request forgery for cookie sessions: a browser attaches the
// session cookie to a form POST or a fetch from any site (SameSite=Lax
// lets top-level POST navigations through within two minutes in some
// browsers, and =None everywhere). So a state-changing request carried by
// the cookie must come from the app's own origin or one of
// csrf_allowed_origins. The browser says so itself in Sec-Fetch-Site
// (Fetch Metadata; a forbidden header name, so no page can forge it):
// same-origin passes, and so does none (the user's own navigation). Where
// a browser sends none, its Origin header decides, or without one its
// Referer's origin (RFC 6454 §7, OWASP's "verifying origin with standard
// headers", as Envoy's CSRF filter and Envoy Gateway do). "Origin: null"
// (a sandboxed or privacy-stripped origin) is refused, not read from the
// Referer; a request with neither header is refused, as Envoy's filter
// refuses it. Sec-Fetch-Site first matters: a page with Referrer-Policy
// no-referrer makes browsers send "Origin: null" and no Referer even on
// same-origin POSTs. Bearer-token requests carry no ambient credential and
// are not checked; GET and HEAD cost nothing.

// unsafeMethod: the methods that may change state (RFC 9110 §9.2.1).
func unsafeMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return false
	}
	return true
}

// sameOrigin reports whether a state-changing request came from the app's
// own host (the request's :authority) or an allowed origin.
func (s *Server) sameOrigin(r *Request) bool {
	source := r.Headers["origin"]
	switch r.Headers["sec-fetch-site"] {
	case "same-origin", "none":
		return true
	case "same-site", "cross-site":
		if source == "" {
			return false // another site: only an allowed Origin passes
		}
	}
	if source == "" {
		source = r.Headers["referer"] // its scheme and host are the origin
	}
	// "null" parses to no host: refused, and never read from the Referer.
	o, err := url.Parse(source)
	if err != nil || o.Host == "" || (o.Scheme != "http" && o.Scheme != "https") || o.User != nil {
		return false
	}
	// The host (and port) decides, not the scheme, as in Envoy's CSRF
	// filter: behind a load balancer that ends TLS Envoy sees http while
	// the browser's origin is https.
	host := originHost(o.Scheme, o.Host)
	if own := strings.ToLower(r.Host); host == own || host == originHost("https", own) || host == originHost("http", own) {
		return true
	}
	for _, allowed := range s.conf().CSRFAllowedOrigins {
		if originMatch(strings.ToLower(o.Scheme), host, allowed) {
			return true
		}
	}
	return false
}

// originHost is host[:port] in lower case without the scheme's default
// port, so https://app.example.com and app.example.com:443 compare equal.
func originHost(scheme, hostport string) string {
	h := strings.ToLower(hostport)
	switch {
	case scheme == "https" && strings.HasSuffix(h, ":443"):
		return h[:len(h)-4]
	case scheme == "http" && strings.HasSuffix(h, ":80"):
		return h[:len(h)-3]
	}
	return h
}

// originMatch applies one csrf_allowed_origins entry: an origin
// ("https://admin.example.com", "http://localhost:3000") or one with a
// wildcard for any subdomain ("https://*.example.com").
func originMatch(scheme, host, allowed string) bool {
	a, err := url.Parse(strings.ToLower(allowed))
	if err != nil || a.Scheme != scheme {
		return false
	}
	want := originHost(a.Scheme, a.Host)
	if sub, ok := strings.CutPrefix(want, "*."); ok {
		return strings.HasSuffix(host, "."+sub)
	}
	return host == want
}
