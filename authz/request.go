package authz

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/checkwire"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Request is a CheckRequest parsed once: everything the decision reads.
// Nothing downstream touches proto getters.
type Request struct {
	ID       string // x-request-id, for logs
	Method   string
	Scheme   string
	Host     string // :authority, as sent
	Path     string // without the query
	RawQuery string
	Headers  map[string]string // lower-case keys, as Envoy sends them
	// Cookies reads the Cookie header on demand (first value of each name);
	// no map is built per Check.
	Cookies session.Cookies
	cookies cookieHeader
	// ContextExtensions are the per-route check_settings.context_extensions.
	ContextExtensions map[string]string
	attrs             *authv3.AttributeContext // for the source address, read on demand
}

// sourceAddress is the address of the peer Envoy saw (the CheckRequest's
// source), read only when a policy needs it (trusted_ips).
func (r *Request) sourceAddress() string { return checkwire.SourceAddress(r.attrs) }

// errMalformed: the CheckRequest lacks the HTTP attributes we need.
var errMalformed = errors.New("malformed check request")

// undecodable: the codec couldn't decode the CheckRequest, for this cause
// (checkwire.Undecodable).
type undecodable checkwire.Cause

func (u undecodable) Error() string {
	if checkwire.Cause(u) == checkwire.CauseInvalidUTF8 {
		return "undecodable check request: a string field isn't UTF-8"
	}
	return "undecodable check request: malformed"
}

// maxCookieHeaderBytes bounds the Cookie header we parse at all.
const maxCookieHeaderBytes = 64 << 10

// ParseRequest reads a CheckRequest as Envoy builds it
// (envoy-ext-authz.md §1): lower-case header keys, pseudo-headers,
// http.path with the query, http.host = :authority; header_map when Envoy
// was configured with encode_raw_headers.
func ParseRequest(req *authv3.CheckRequest) (*Request, error) {
	if why, bad := checkwire.Undecodable(req); bad {
		return nil, undecodable(why)
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return nil, errMalformed
	}
	headers := h.GetHeaders()
	if hm := h.GetHeaderMap(); len(headers) == 0 && hm != nil {
		headers = joinHeaderMap(hm.GetHeaders())
	}
	if headers == nil {
		headers = map[string]string{}
	}
	r := &Request{
		ID:                headers["x-request-id"],
		Method:            first(h.GetMethod(), headers[":method"]),
		Scheme:            first(h.GetScheme(), headers[":scheme"], headers["x-forwarded-proto"], "http"),
		Host:              first(h.GetHost(), headers[":authority"], headers["host"]),
		Headers:           headers,
		ContextExtensions: req.GetAttributes().GetContextExtensions(),
		attrs:             req.GetAttributes(),
	}
	p := first(h.GetPath(), headers[":path"])
	if p == "" || r.Host == "" || r.Method == "" {
		return nil, errMalformed
	}
	r.Path, r.RawQuery, _ = strings.Cut(p, "?")
	if r.Path == "" || r.Path[0] != '/' {
		return nil, errMalformed
	}
	if r.Scheme != "http" && r.Scheme != "https" {
		// Schemes are case-insensitive (RFC 3986 §3.1; Envoy
		// CVE-2023-35944): "HTTPS" is https, anything else http.
		if strings.EqualFold(r.Scheme, "https") {
			r.Scheme = "https"
		} else {
			r.Scheme = "http"
		}
	}
	r.cookies = newCookieHeader(headers["cookie"])
	r.Cookies = &r.cookies
	return r, nil
}

// joinHeaderMap reads header_map (encode_raw_headers): keys lower-cased,
// the values of a repeated header joined with ',' as Envoy joins them in
// headers. Each header is joined once, in time linear in its values
// (joining one value at a time copied the growing string each time:
// 20,000 repeats took seconds).
func joinHeaderMap(kvs []*corev3.HeaderValue) map[string]string {
	headers := make(map[string]string, len(kvs))
	var repeated map[string][]string
	for _, kv := range kvs {
		k := strings.ToLower(kv.GetKey())
		v := kv.GetValue()
		if v == "" {
			v = string(kv.GetRawValue())
		}
		old, seen := headers[k]
		if !seen {
			headers[k] = v
			continue
		}
		if repeated == nil {
			repeated = map[string][]string{}
		}
		if repeated[k] == nil {
			repeated[k] = []string{old}
		}
		repeated[k] = append(repeated[k], v)
	}
	for k, vs := range repeated {
		headers[k] = strings.Join(vs, ",")
	}
	return headers
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// cookieHeader reads a Cookie header. Envoy joins repeated cookie headers
// with ',' (envoy-ext-authz.md §1), and RFC 6265 cookie values never contain
// ',' or ';', so both separate pairs. The first value of a name wins;
// quotes around a value are dropped. A header over maxCookieHeaderBytes
// carries no cookies.
type cookieHeader struct {
	header string
	commas bool
}

func newCookieHeader(header string) cookieHeader {
	if len(header) > maxCookieHeaderBytes {
		header = ""
	}
	return cookieHeader{header: header, commas: strings.IndexByte(header, ',') >= 0}
}

// next returns the first well-formed pair of rest and what follows it.
func (c *cookieHeader) next(rest string) (name, value, remainder string, ok bool) {
	for rest != "" {
		var pair string
		pair, rest = nextCookie(rest, c.commas)
		name, value, found := strings.Cut(pair, "=")
		if !found || name == "" {
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		return name, value, rest, true
	}
	return "", "", "", false
}

// Get implements session.Cookies.
func (c *cookieHeader) Get(name string) (string, bool) {
	for rest := c.header; ; {
		n, v, r, ok := c.next(rest)
		if !ok {
			return "", false
		}
		if n == name {
			return v, true
		}
		rest = r
	}
}

// AppendAll implements session.Cookies: each name once, with its first
// value.
func (c *cookieHeader) AppendAll(dst []session.Cookie) []session.Cookie {
	start := len(dst)
	for rest := c.header; ; {
		n, v, r, ok := c.next(rest)
		if !ok {
			return dst
		}
		rest = r
		if !slices.ContainsFunc(dst[start:], func(c session.Cookie) bool { return c.Name == n }) {
			dst = append(dst, session.Cookie{Name: n, Value: v})
		}
	}
}

// nextCookie splits the first name=value pair (trimmed) off a Cookie
// header. It uses the vectorised IndexByte unless the header has commas
// (Envoy's join of repeated headers); it runs on every Check.
func nextCookie(rest string, commas bool) (pair, remainder string) {
	var i int
	if commas {
		i = strings.IndexAny(rest, ";,")
	} else {
		i = strings.IndexByte(rest, ';')
	}
	if i < 0 {
		return strings.TrimSpace(rest), ""
	}
	return strings.TrimSpace(rest[:i]), rest[i+1:]
}

// Query parses the query string (only the routes that need it call this).
func (r *Request) Query() url.Values {
	q, _ := url.ParseQuery(r.RawQuery)
	return q
}

// URL is the absolute URL of the request.
func (r *Request) URL() string {
	u := r.Scheme + "://" + r.Host + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	return u
}

// RequestURI is the path and query.
func (r *Request) RequestURI() string {
	if r.RawQuery == "" {
		return r.Path
	}
	return r.Path + "?" + r.RawQuery
}

// isAPI reports whether an unauthenticated caller should get 401 rather than
// a login redirect: an api_routes match, a non-GET/HEAD method, an XHR, or an
// Accept header that doesn't ask for HTML.
func (s *Server) isAPI(r *Request) bool {
	if r.Method != "GET" && r.Method != "HEAD" {
		return true
	}
	if strings.EqualFold(r.Headers["x-requested-with"], "XMLHttpRequest") {
		return true
	}
	for _, re := range s.conf().APIRoutes {
		if re.MatchString(r.Path) {
			return true
		}
	}
	// Browsers navigating always ask for text/html; fetch() and curl send */*.
	return !strings.Contains(r.Headers["accept"], "text/html")
}
