package authz

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// headerNames is one family of identity headers.
type headerNames struct{ user, email, groups, username, token string }

// The two families: oauth2-proxy's x-forwarded-* (pass_user_headers; the
// token with pass_access_token) and x-auth-request-* (set_xauthrequest).
var (
	forwardedHeaders   = headerNames{"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username", "x-forwarded-access-token"}
	authRequestHeaders = headerNames{"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-preferred-username", "x-auth-request-access-token"}
)

// identityHeaders are every header we may set for the upstream. A client
// can't send any of them itself: each is overwritten or removed on every
// allowed request, so upstreams can trust them (CONTRACT.md §3).
var identityHeaders = []string{
	forwardedHeaders.user, forwardedHeaders.email, forwardedHeaders.groups, forwardedHeaders.username, forwardedHeaders.token,
	authRequestHeaders.user, authRequestHeaders.email, authRequestHeaders.groups, authRequestHeaders.username, authRequestHeaders.token,
}

// underscoredIdentityHeaders are identityHeaders spelled with '_' for '-'
// (x_forwarded_user): CGI, WSGI, PHP and Rails read both spellings as the
// same variable (HTTP_X_FORWARDED_USER), so a client's x_forwarded_user
// would pass for ours unless it is removed (the shipped Envoy files also
// refuse such requests: headers_with_underscores_action).
var underscoredIdentityHeaders = func() []string {
	out := make([]string, len(identityHeaders))
	for i, h := range identityHeaders {
		out[i] = strings.ReplaceAll(h, "-", "_")
	}
	return out
}()

// headerSet is a family enabled by the configuration, resolved once in New.
type headerSet struct {
	names               headerNames
	withUser, withToken bool
}

// headerSets resolves which identity headers the configuration sends.
func headerSets(c Config) []headerSet {
	var sets []headerSet
	if c.PassUserHeaders || c.PassAccessToken {
		sets = append(sets, headerSet{forwardedHeaders, c.PassUserHeaders, c.PassAccessToken})
	}
	if c.SetXAuthRequest {
		sets = append(sets, headerSet{authRequestHeaders, true, c.PassAccessToken})
	}
	return sets
}

// identity is what the upstream is told about a request's user: the user
// and, for a session, its tokens.
type identity struct {
	user
	accessToken, idToken string
	// For the identity assertion (assertion.go): the IdP's session id,
	// and when the session or token ends (zero: unknown).
	sid     string
	expires time.Time
	// For the rules: how the user came (viaSession, viaBearer) and the
	// granted scopes.
	via    string
	scopes []string
}

// memo is where a rendered identity block is kept for reuse: a cached
// session's entry or a cached bearer token.
type memo interface {
	Memo() any
	SetMemo(any)
}

// allowSession lets a logged-in user through with identity and token
// headers. The identity block is rendered once per cached session (e is
// the cache's entry) and reused while it was rendered for the configuration
// in force; sess may be a renewed copy of e.Session, rendered afresh.
func (s *Server) allowSession(r *Request, m memo, sess *sessionpb.Session) *Decision {
	of := sessionIdentity(sess)
	return s.allowWith(r, ReasonSession, s.asserted(r, m, s.identityBlock(m, of), of))
}

// sessionIdentity is what the upstream is told about sess's user, for
// every route (the rendered block is shared by them through the memo).
func sessionIdentity(sess *sessionpb.Session) func() identity {
	return func() identity {
		return identity{user: fromSession(sess), accessToken: sess.GetAccessToken(), idToken: sess.GetIdToken(),
			sid: sess.GetSessionId(), expires: unixTime(sess.GetExpiresAt()), via: viaSession, scopes: sess.GetScopes()}
	}
}

// sessionMemo is where sess's rendered identity block is kept: its entry
// in the decoded-session cache (e, when sess is e's), else the block
// cache; nil: nowhere.
func (s *Server) sessionMemo(e *session.Entry, sess *sessionpb.Session) memo {
	if e != nil && e.Session == sess && s.jar.Caches() {
		return e
	}
	if s.blocks != nil {
		return s.blocks.slot(sess)
	}
	return nil
}

// identityBlock returns m's rendered block for the configuration in force,
// rendering (and keeping) it when there is none yet. Concurrent Checks may
// both render; either result is the same and read-only.
func (s *Server) identityBlock(m memo, of func() identity) *identityBlock {
	set := s.conf()
	if m != nil {
		if b, ok := m.Memo().(*identityBlock); ok && b.set == set {
			return b
		}
	}
	id := of()
	b := renderIdentity(set, s.identityHeaders(set, id), identityFields(id.user))
	b.ruleUser = userMemoFor(set, id)
	if m != nil {
		m.SetMemo(b)
	}
	return b
}

// identityHeaders are the upstream headers of CONTRACT.md §3 for id, as
// the configuration set sends them.
func (s *Server) identityHeaders(set *settings, id identity) []Header {
	out := make([]Header, 0, 12)
	// Values are header-safe already: claims are cleaned when the IdP's
	// answer is read (oidcflow) and sessions only hold what we wrote.
	add := func(name, value string) {
		if value != "" {
			out = append(out, Header{name, value})
		}
	}
	groups := joinGroups(id.groups)
	user := id.name
	if set.PreferEmailToUser && id.email != "" {
		user = id.email
	}
	for _, hs := range set.headerSets {
		if hs.withUser {
			add(hs.names.user, user)
			add(hs.names.email, id.email)
			add(hs.names.groups, groups)
			add(hs.names.username, id.username)
		}
		if hs.withToken {
			add(hs.names.token, id.accessToken)
		}
	}
	for _, ch := range set.ClaimHeaders {
		add(ch.Name, id.claimValues[ch.Claim])
	}
	if set.IDTokenHeader != "" {
		add(set.IDTokenHeader, id.idToken)
	}
	if set.PassAuthorizationHeader && id.idToken != "" {
		add("authorization", "Bearer "+id.idToken)
	}
	if set.PassBasicAuth && user != "" {
		add("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+set.BasicAuthPassword)))
	}
	return out
}

// allowWith is an allowed answer with a rendered identity block plus
// per-request headers (extra), our cookies dropped from the upstream's
// Cookie header, and every client-sent identity header that neither
// overwrites removed.
func (s *Server) allowWith(r *Request, reason Reason, b *identityBlock, extra ...Header) *Decision {
	d := &Decision{Allow: true, Reason: reason, identity: b}
	d.Upstream = d.upstreamBuf[:0]
	s.stripOurCookies(r, d)
	d.Upstream = append(d.Upstream, extra...)
	s.stripClientHeaders(r, d, b.names, extra)
	return d
}

// allowAnonymous lets a request through without identity (skip_auth_routes).
func (s *Server) allowAnonymous(r *Request, reason Reason) *Decision {
	d := &Decision{Allow: true, Reason: reason}
	s.stripOurCookies(r, d)
	s.stripClientHeaders(r, d, nil, nil)
	return d
}

// stripClientHeaders removes client-sent identity headers we don't set
// (set: the block's names; extra: the per-request headers), in either
// spelling. Twenty map lookups (about 320 ns) cost less than one pass over
// a browser's headers, and stay the same however many it sends.
func (s *Server) stripClientHeaders(r *Request, d *Decision, set []string, extra []Header) {
	for _, name := range identityHeaders {
		if _, sent := r.Headers[name]; !sent || slices.Contains(set, name) ||
			slices.ContainsFunc(extra, func(h Header) bool { return h.Name == name }) {
			continue
		}
		d.RemoveUpstream = append(d.RemoveUpstream, name)
	}
	for _, name := range underscoredIdentityHeaders {
		if _, sent := r.Headers[name]; sent {
			d.RemoveUpstream = append(d.RemoveUpstream, name)
		}
	}
	// The identity assertion among them: set only on answers for a user,
	// and then in set; anywhere else (skip_auth_routes, trusted_ips,
	// preflight, a signing failure) a client's copy must not pass.
	for _, h := range s.conf().configured {
		stripConfigured(r, d, h.name, set)
	}
}

// configuredHeader is an upstream header a configuration key names
// (identity_jwt_header, claim_headers, id_token_header): Check sets it
// and removes a client's copy. The one list stripClientHeaders and
// RequestHeaders read.
type configuredHeader struct{ name, key string }

// configuredHeaders are c's configured upstream headers.
func configuredHeaders(c *Config) []configuredHeader {
	var out []configuredHeader
	if h := c.IdentityJWT.Header; h != "" {
		out = append(out, configuredHeader{h, "identity_jwt_header"})
	}
	for _, ch := range c.ClaimHeaders {
		out = append(out, configuredHeader{ch.Name, "claim_headers"})
	}
	if c.IDTokenHeader != "" {
		out = append(out, configuredHeader{c.IDTokenHeader, "id_token_header"})
	}
	return out
}

// stripConfigured removes a client-sent header of a configured name
// (claim_headers, id_token_header, identity_jwt_header) unless the block sets it, and its
// underscored spelling always (configured names have no '_'). The
// underscored name is spelled in a stack buffer and looked up without a
// string: no allocation unless the client sent it.
func stripConfigured(r *Request, d *Decision, name string, set []string) {
	if _, sent := r.Headers[name]; sent && !slices.Contains(set, name) {
		d.RemoveUpstream = append(d.RemoveUpstream, name)
	}
	if strings.IndexByte(name, '-') < 0 {
		return
	}
	var buf [maxUpstreamHeaderName]byte
	under := append(buf[:0], name...)
	for i, c := range under {
		if c == '-' {
			under[i] = '_'
		}
	}
	if _, sent := r.Headers[string(under)]; sent {
		d.RemoveUpstream = append(d.RemoveUpstream, string(under))
	}
}

// maxUpstreamHeaderName bounds a configured header name.
const maxUpstreamHeaderName = 100

// reservedHeaders can't be configured as upstream headers: ours, the
// hop-by-hop ones (RFC 9110 §7.6.1), those that frame or route the request
// or carry its credentials, and those Envoy or the proxies before it set.
var reservedHeaders = []string{
	"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
	"proxy-authenticate", "proxy-authorization", "authorization", "www-authenticate",
	"content-length", "content-type", "content-encoding", "expect", "location", "forwarded", "via",
	"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "x-request-id",
	"traceparent", "tracestate",
}

// CheckUpstreamHeader says why name can't be a header we set for the
// upstream from configuration (claim_headers, id_token_header); nil when
// it can. A name is a lower-case HTTP token (RFC 9110 §5.6.2) without '_'
// (servers that read headers as CGI variables can't tell it from '-'),
// and none of ours, the hop-by-hop, framing, credential and proxy headers,
// and Envoy's own (x-envoy-*).
func CheckUpstreamHeader(name string) error {
	switch {
	case name == "":
		return errors.New("an empty header name")
	case len(name) > maxUpstreamHeaderName:
		return fmt.Errorf("header name %.20q… is longer than %d characters", name, maxUpstreamHeaderName)
	case strings.ContainsFunc(name, func(c rune) bool { return !headerNameChar(c) }):
		return fmt.Errorf("%q is not a header name: use lower-case letters, digits and '-'", name)
	case slices.Contains(identityHeaders, name):
		return fmt.Errorf("%q is one of our identity headers", name)
	case slices.Contains(reservedHeaders, name) || strings.HasPrefix(name, "x-envoy-") || strings.TrimPrefix(name, "set-") == "cookie":
		return fmt.Errorf("%q is a header the request can't do without or the proxies set; choose another name", name)
	}
	return nil
}

// headerNameChar: a lower-case tchar other than '_' (RFC 9110 §5.6.2).
func headerNameChar(c rune) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("-!#$%&'*+.^`|~", c)
}

// stripOurCookies drops our own cookies from the Cookie header the upstream
// gets. It must come first in Upstream: Envoy applies the header sets in
// order, then the removals, and rejects the request (500, ext_authz_invalid)
// when the headers pass its limit (60 KiB by default) on the way. A large
// chunked session cookie plus the identity headers would pass it, so the
// cookie header is shortened first: set to what remains, or emptied and
// then removed.
func (s *Server) stripOurCookies(r *Request, d *Decision) {
	cookie, ok := r.Headers["cookie"]
	if !ok {
		return
	}
	kept, changed := s.upstreamCookies(cookie)
	if !changed {
		return
	}
	d.Upstream = append(d.Upstream, Header{"cookie", kept})
	if kept == "" {
		d.RemoveUpstream = append(d.RemoveUpstream, "cookie")
	}
}

// upstreamCookies drops our session, chunk and state cookies from a Cookie
// header; changed is false when there was nothing of ours in it. It scans
// bytes (no rune decoding): it runs on every allowed request.
func (s *Server) upstreamCookies(header string) (kept string, changed bool) {
	if !strings.Contains(header, s.jar.Name()) {
		return header, false
	}
	// Browsers send cookies in the order they were set, so ours usually
	// follow the app's: then what is kept is a prefix of the header, and
	// no new string is needed. Otherwise the kept pairs are joined.
	commas := strings.IndexByte(header, ',') >= 0
	prefixEnd, contiguous, keptLen := 0, true, 0
	for rest := header; rest != ""; {
		var pair string
		pair, rest = nextCookie(rest, commas)
		if pair == "" {
			continue
		}
		name, _, _ := strings.Cut(pair, "=")
		if s.jar.Owns(name) {
			changed = true
			continue
		}
		if keptLen > 0 {
			keptLen += len("; ")
		}
		keptLen += len(pair)
		if changed {
			contiguous = false // an app cookie after one of ours
		} else {
			prefixEnd = len(header) - len(rest)
		}
	}
	if !changed {
		return header, false
	}
	if contiguous {
		return strings.TrimRight(header[:prefixEnd], "; ,"), true
	}
	var b strings.Builder
	b.Grow(keptLen)
	for rest := header; rest != ""; {
		var pair string
		pair, rest = nextCookie(rest, commas)
		name, _, _ := strings.Cut(pair, "=")
		if pair == "" || s.jar.Owns(name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	return b.String(), true
}

var groupEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

// maxGroupsHeaderBytes bounds x-forwarded-groups (and x-auth-request-groups):
// with many long ZITADEL roles the joined list could pass the header limits
// of Envoy (60 KiB for all headers by default) and of upstreams.
const maxGroupsHeaderBytes = 8 << 10

// joinGroups joins groups with ",", cut at a group boundary within
// maxGroupsHeaderBytes: an upstream sees fewer groups, never a mangled one.
// A group name with a ',' would read as two groups ("admin,x" is admin and
// x), so ',' is sent as %2C, and '%' as %25 so that the escape is
// unambiguous (README "Headers"); other names pass unchanged.
func joinGroups(groups []string) string {
	if slices.ContainsFunc(groups, func(g string) bool { return strings.ContainsAny(g, ",%") }) {
		escaped := make([]string, len(groups))
		for i, g := range groups {
			escaped[i] = groupEscaper.Replace(g)
		}
		groups = escaped
	}
	joined := strings.Join(groups, ",")
	if len(joined) <= maxGroupsHeaderBytes {
		return joined
	}
	cut := strings.LastIndexByte(joined[:maxGroupsHeaderBytes+1], ',')
	if cut < 0 {
		return ""
	}
	return joined[:cut]
}
