package authz

import (
	"strings"
	"sync"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// Named CEL rules (rules.Set): a route lists the rules it needs in its
// context_extensions, deny_if (any rule that holds denies; checked first)
// and allow_if (every rule must hold); a route that names neither takes
// the app's defaults (Config.DenyIf, Config.AllowIf). They run after the
// app's and the route's other keys, for sessions and bearer tokens alike,
// and fail closed: a rule that isn't defined is a 500 naming it, one that
// can't be evaluated denies.

// What user.via says: how the user came.
const (
	viaSession = "session"
	viaBearer  = "bearer"
)

// RuleNames are the rules a route lists under allow_if or deny_if (v):
// names separated by commas or spaces, lower case as the configuration
// keeps them. A route's lists are read once per distinct setting
// (routeCache); check-policy and check-envoy read them the same way.
func RuleNames(v string) []string {
	names := splitList(v)
	for i, n := range names {
		names[i] = strings.ToLower(n)
	}
	return names
}

// ruleLists are the rules the route runs: its own when it names any (own),
// else the app's defaults (c's allow_if and deny_if).
func (rp *routePolicy) ruleLists(c *Config) (deny, allow []string, own bool) {
	if rp.rulesSet {
		return rp.denyIf, rp.allowIf, true
	}
	return c.DenyIf, c.AllowIf, false
}

// RouteRuleLists are the rules a route with context_extensions ext runs
// in an app configured by c, as Check chooses them (check-policy).
func RouteRuleLists(c Config, ext map[string]string) (deny, allow []string, own bool) {
	rp := parseRoutePolicy(ext)
	return rp.ruleLists(&c)
}

// RuleRun is one rule a dry run evaluated: the route key that listed it
// (allow_if or deny_if) and what it read and returned.
type RuleRun struct {
	List string
	rules.Explanation
}

// ruleVerdict is what a route's rules decided: rule is the one that
// decided when denied (or isn't defined, or couldn't be evaluated).
type ruleVerdict struct {
	reason Reason // "" allowed; ReasonRuleDenied, ReasonRuleError or ReasonUnknownRule
	rule   string
	err    error // the run-time error of ReasonRuleError
}

// judgeRules applies the route's rules (rp) to u for r; m (may be nil)
// keeps u's identity block (with u's rules.UserMemo); trace, when not nil,
// collects what each rule evaluated read (check-policy).
func (s *Server) judgeRules(set *settings, r *Request, m memo, u user, via string, scopes []string, rp *routePolicy, trace *[]RuleRun) ruleVerdict {
	deny, allow, _ := rp.ruleLists(&set.Config)
	if len(deny) == 0 && len(allow) == 0 {
		return ruleVerdict{}
	}
	if rp.unknownRule != "" { // found once per route setting (routeCache)
		return ruleVerdict{reason: ReasonUnknownRule, rule: rp.unknownRule}
	}
	sc := scratchPool.Get().(*ruleScratch)
	defer sc.release()
	in := s.ruleInput(sc, set, r, m, u, via, scopes)
	eval := func(list, name string) (bool, error) {
		if trace == nil {
			return set.Rules.Eval(name, in)
		}
		e := set.Rules.Explain(name, in)
		*trace = append(*trace, RuleRun{List: list, Explanation: e})
		return e.Result, e.Err
	}
	for _, name := range deny {
		hit, err := eval(extDenyIf, name)
		if err != nil {
			return ruleVerdict{reason: ReasonRuleError, rule: name, err: err}
		}
		if hit {
			return ruleVerdict{reason: ReasonRuleDenied, rule: name}
		}
	}
	for _, name := range allow {
		ok, err := eval(extAllowIf, name)
		if err != nil {
			return ruleVerdict{reason: ReasonRuleError, rule: name, err: err}
		}
		if !ok {
			return ruleVerdict{reason: ReasonRuleDenied, rule: name}
		}
	}
	return ruleVerdict{}
}

// ruleScratch is one evaluation's inputs, pooled: a Check that runs
// rules allocates none of them (the rules don't keep them).
type ruleScratch struct {
	in   rules.Input
	user rules.User
	req  rules.Request
}

var scratchPool = sync.Pool{New: func() any { return new(ruleScratch) }}

// release clears sc (sc.user only when the input used it: a cached
// session's user comes with its memo) and returns it to the pool.
func (sc *ruleScratch) release() {
	if sc.in.User == &sc.user {
		sc.user = rules.User{}
	}
	sc.in, sc.req = rules.Input{}, rules.Request{}
	scratchPool.Put(sc)
}

// Empty inputs, shared read-only (rules never change their inputs).
var (
	noStrings = []string{}
	noMap     = map[string]string{}
)

// ruleInput is what the rules see of u and r, in sc. user comes with its
// memo (rules.UserMemo) kept with u's identity block (m), else is built;
// the query, the client's address and now only when a rule reads them.
func (s *Server) ruleInput(sc *ruleScratch, set *settings, r *Request, m memo, u user, via string, scopes []string) *rules.Input {
	sc.req = rules.Request{Method: r.Method, Scheme: r.Scheme, Host: r.Host, Path: r.Path, Headers: orNoMap(r.Headers), Query: noMap}
	sc.in = rules.Input{Request: &sc.req, Route: orNoMap(r.ContextExtensions)}
	if um := userMemo(set, m); um != nil {
		sc.in.User, sc.in.Memo = um.User(), um
	} else {
		sc.user = ruleUser(set, u, via, scopes)
		sc.in.User = &sc.user
	}
	if set.Rules.Reads("now") {
		sc.in.Now = s.now()
	}
	if r.RawQuery != "" && set.Rules.Reads("request.query") {
		q := r.Query()
		sc.req.Query = make(map[string]string, len(q))
		for k, v := range q {
			if len(v) > 0 {
				sc.req.Query[k] = v[0]
			}
		}
	}
	if set.Rules.Reads("request.source_address") {
		sc.req.SourceAddress = s.clientAddress(set, r)
	}
	return &sc.in
}

// userMemo is the user's rules.UserMemo that m's identity block keeps for
// this configuration, or nil.
func userMemo(set *settings, m memo) *rules.UserMemo {
	if m != nil {
		if b, ok := m.Memo().(*identityBlock); ok && b.set == set {
			return b.ruleUser
		}
	}
	return nil
}

// ruleUser is u as the rules see it (user.roles only when a rule reads
// it: it is built).
func ruleUser(set *settings, u user, via string, scopes []string) rules.User {
	ru := rules.User{Sub: u.sub, Email: u.email, EmailVerified: u.emailVerified, Name: u.name, PreferredUsername: u.username,
		Groups: orEmpty(u.groups), OrgID: u.orgID, AMR: orEmpty(u.amr), AuthTime: u.authTime,
		Claims: orNoMap(u.claimValues), Via: via, Scopes: orEmpty(scopes)}
	if set.Rules.Reads("user.roles") {
		ru.Roles = u.rolesByOrg()
	}
	return ru
}

// userMemoFor is the rules.UserMemo an identity block of id keeps (nil:
// no rule reads user), so that a cached Check builds nothing for user.
func userMemoFor(set *settings, id identity) *rules.UserMemo {
	if !set.Rules.Reads("user") {
		return nil
	}
	ru := ruleUser(set, id.user, id.via, id.scopes)
	return set.Rules.Memo(&ru)
}

func orEmpty(l []string) []string {
	if l == nil {
		return noStrings
	}
	return l
}

func orNoMap(m map[string]string) map[string]string {
	if m == nil {
		return noMap
	}
	return m
}

// clientAddress is the client's IP address as trusted_ips reads it: the
// CheckRequest's source, or with reverse_proxy the real-client-IP header's
// entry trusted_proxy_hops from the right.
func (s *Server) clientAddress(set *settings, r *Request) string {
	if set.ReverseProxy {
		return strings.TrimSpace(fromRight(r.Headers[set.RealClientIPHeader], max(set.TrustedProxyHops, 1)))
	}
	return r.sourceAddress()
}

// rolesByOrg is the user's ZITADEL roles, each with the organizations that
// granted it; a group of an IdP without role grants is a role granted by
// no known organization.
func (u user) rolesByOrg() map[string][]string {
	out := make(map[string][]string, len(u.groups)+len(u.roleGrants))
	for _, g := range u.roleGrants {
		role, org, _ := strings.Cut(g, "@")
		out[role] = append(out[role], org)
	}
	for _, g := range u.groups {
		if _, ok := out[g]; ok {
			continue
		}
		if u.roleOrg != "" {
			out[g] = []string{u.roleOrg}
		} else {
			out[g] = []string{}
		}
	}
	return out
}
