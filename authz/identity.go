package authz

import (
	"strings"

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

// identity is what the upstream headers say about a user.
type identity struct {
	user, email, username string
	groups                []string
	accessToken, idToken  string
}

// allow lets a logged-in user through with identity and token headers.
func (s *Server) allow(r *Request, sess *sessionpb.Session) *Decision {
	return s.identity(r, identity{
		user: sess.GetUser(), email: sess.GetEmail(), username: sess.GetPreferredUsername(), groups: sess.GetGroups(),
		accessToken: sess.GetAccessToken(), idToken: sess.GetIdToken(),
	})
}

// identity builds an allow decision with the identity headers of
// CONTRACT.md §3, set with append=false so nothing the client sent survives.
func (s *Server) identity(r *Request, id identity) *Decision {
	d := &Decision{Allow: true, Reason: "session", Upstream: make([]Header, 0, 12)}
	s.stripOurCookies(r, d)
	// Values are header-safe already: claims are cleaned when the IdP's
	// answer is read (oidcflow) and sessions only hold what we wrote.
	add := func(name, value string) {
		if value != "" {
			d.Upstream = append(d.Upstream, Header{name, value})
		}
	}
	groups := joinGroups(id.groups)
	for _, set := range s.conf().headerSets {
		if set.withUser {
			add(set.names.user, id.user)
			add(set.names.email, id.email)
			add(set.names.groups, groups)
			add(set.names.username, id.username)
		}
		if set.withToken {
			add(set.names.token, id.accessToken)
		}
	}
	if s.conf().PassAuthorizationHeader && id.idToken != "" {
		add("authorization", "Bearer "+id.idToken)
	}
	s.stripClientHeaders(r, d)
	return d
}

// allowAnonymous lets a request through without identity (skip_auth_routes).
func (s *Server) allowAnonymous(r *Request, reason string) *Decision {
	d := &Decision{Allow: true, Reason: reason}
	s.stripOurCookies(r, d)
	s.stripClientHeaders(r, d)
	return d
}

// stripClientHeaders removes client-sent identity headers we did not set.
func (s *Server) stripClientHeaders(r *Request, d *Decision) {
	for _, name := range identityHeaders {
		if _, sent := r.Headers[name]; !sent {
			continue
		}
		set := false
		for _, h := range d.Upstream {
			if h.Name == name {
				set = true
				break
			}
		}
		if !set {
			d.RemoveUpstream = append(d.RemoveUpstream, name)
		}
	}
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
	var b strings.Builder // what is kept is small: no Grow(len(header))
	commas := strings.IndexByte(header, ',') >= 0
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
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	if !changed {
		return header, false
	}
	return b.String(), true
}

// maxGroupsHeaderBytes bounds x-forwarded-groups (and x-auth-request-groups):
// with many long ZITADEL roles the joined list could pass the header limits
// of Envoy (60 KiB for all headers by default) and of upstreams.
const maxGroupsHeaderBytes = 8 << 10

// joinGroups joins groups with ",", cut at a group boundary within
// maxGroupsHeaderBytes: an upstream sees fewer groups, never a mangled one.
func joinGroups(groups []string) string {
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
