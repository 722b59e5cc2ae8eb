package authz

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// HeaderNeed is one request header Check reads under a configuration,
// and why. Envoy sends Check only the headers its ext_authz
// allowed_headers lets through (Envoy Gateway: headersToExtAuth); a
// header left out is simply absent, so the feature that reads it fails
// quietly: no cookie is a login loop, no client-sent identity header to
// remove is a spoofing hole. README "Headers Envoy sends to Check".
type HeaderNeed struct {
	Name string // lower case, as Envoy sends it; AllHeaders: every header
	Why  string
}

// AllHeaders is the Name of the need for every request header: a rule
// reads request.headers by a key computed at run time (or as a whole),
// so no allowed_headers list is wide enough but none at all.
const AllHeaders = "*"

// Why Check reads each header (check-config prints them).
const (
	whyCookie   = "the session and login-state cookies; without it every browser request is a new login (a loop)"
	whyAccept   = "a browser navigation (text/html) gets the login redirect, another caller a 401"
	whyXHR      = "XMLHttpRequest callers get a 401, not the login redirect"
	whyCSRF     = "the CSRF check of POST, PUT, DELETE… with the session cookie (sec-fetch-site, else origin, else referer); without them all are refused"
	whyID       = "request_id of our log lines, which matches Envoy's access log"
	whyBearer   = "bearer tokens of API callers (skip_jwt_bearer_tokens)"
	whyStripped = "identity header: a client's copy is removed, and Check removes only what it is sent"
	whyUnder    = "read as %s by CGI, WSGI, PHP and Rails: a client's copy is removed, and Check removes only what it is sent"
)

// RequestHeaders lists the request headers Check reads under conf, each
// once, with why: those every configuration reads, then those of its
// keys (skip_jwt_bearer_tokens: bearer; claim_headers, id_token_header,
// identity_jwt_header; trusted_ips with reverse_proxy; rules). A rule
// that may read any header adds AllHeaders.
func RequestHeaders(conf Config, bearer bool) []HeaderNeed {
	var out headerNeeds
	out.add("cookie", whyCookie)
	out.add("accept", whyAccept)
	out.add("x-requested-with", whyXHR)
	out.add("sec-fetch-site", whyCSRF)
	out.add("origin", whyCSRF)
	out.add("referer", whyCSRF)
	out.add("x-request-id", whyID)
	if bearer {
		out.add("authorization", whyBearer)
	}
	for _, name := range identityHeaders {
		out.stripped(name, "")
	}
	for _, h := range configuredHeaders(&conf) {
		out.stripped(h.name, h.key)
	}
	out.clientAddress(conf)
	out.rules(conf)
	return out
}

// MergeHeaderNeeds joins lists of needs (several apps', the tracing's)
// into one, each name once, in order (the first why wins).
func MergeHeaderNeeds(lists ...[]HeaderNeed) []HeaderNeed {
	var out headerNeeds
	for _, l := range lists {
		for _, n := range l {
			out.add(n.Name, n.Why)
		}
	}
	return out
}

// headerNeeds collects needs, each name once (the first why wins).
type headerNeeds []HeaderNeed

func (n *headerNeeds) add(name, why string) {
	if name != "" && !slices.ContainsFunc(*n, func(h HeaderNeed) bool { return h.Name == name }) {
		*n = append(*n, HeaderNeed{name, why})
	}
}

// stripped adds a header Check removes when a client sends it (key: the
// configuration key naming it, "" for ours), and its underscored
// spelling, which it removes too (stripClientHeaders).
func (n *headerNeeds) stripped(name, key string) {
	if name == "" {
		return
	}
	why := whyStripped
	if key != "" {
		why += " (" + key + ")"
	}
	n.add(name, why)
	if under := strings.ReplaceAll(name, "-", "_"); under != name {
		n.add(under, fmt.Sprintf(whyUnder, name))
	}
}

// clientAddress adds real_client_ip_header when the client's address is
// read from it: trusted_ips, or a rule's request.source_address, with
// reverse_proxy.
func (n *headerNeeds) clientAddress(conf Config) {
	if !conf.ReverseProxy || conf.RealClientIPHeader == "" {
		return
	}
	var uses []string
	if len(conf.TrustedIPs) > 0 {
		uses = append(uses, "trusted_ips")
	}
	if conf.Rules.Reads("request.source_address") {
		uses = append(uses, "the rules' request.source_address")
	}
	if len(uses) > 0 {
		n.add(conf.RealClientIPHeader, "the client's address for "+strings.Join(uses, " and ")+" (reverse_proxy, real_client_ip_header)")
	}
}

// rules adds the headers the rules read, and AllHeaders when one may
// read any.
func (n *headerNeeds) rules(conf Config) {
	reads := conf.Rules.HeadersRead()
	for _, h := range slices.Sorted(maps.Keys(reads.Names)) {
		n.add(h, "read by rule "+strings.Join(reads.Names[h], ", rule "))
	}
	if len(reads.AnyName) > 0 {
		n.add(AllHeaders, "rule "+strings.Join(reads.AnyName, ", rule ")+
			" reads request.headers by a key computed at run time (or as a whole): Envoy must send every header")
	}
}
