package authz

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// routeCache keeps each distinct context_extensions set a route sends,
// parsed and checked (routeKeys), so a Check pays a hash and a compare
// instead of parsing: Envoy's configuration holds few distinct sets. It
// belongs to one configuration (settings): a reload starts a new one.
type routeCache struct {
	ignored []string   // ignored_route_keys
	rules   *rules.Set // the rules a route may name
	m       sync.Map   // uint64 (setHash) → *routeEntry
	n       atomic.Int64
}

// maxRouteSets bounds routeCache: beyond it a set is parsed per Check.
const maxRouteSets = 1024

// routeEntry is one parsed set: its policy, or the problem that makes
// the route unusable (then policy is unset).
type routeEntry struct {
	ext     map[string]string // the set, to tell a hash collision
	policy  routePolicy
	problem *RouteKeyProblem
	logged  atomic.Int64 // when the problem was last logged (unix seconds)
}

// noExtensions is the entry of a route without context_extensions.
var noExtensions = &routeEntry{policy: routePolicy{auth: "any", maxAge: -1}}

var routeSeed = maphash.MakeSeed()

// setHash hashes a set regardless of its order.
func setHash(ext map[string]string) uint64 {
	var h uint64
	for k, v := range ext {
		h += maphash.String(routeSeed, k)*31 ^ maphash.String(routeSeed, v)
	}
	return h
}

// route is ext's entry: cached, or parsed now (and kept while the cache
// has room).
func (c *routeCache) route(ext map[string]string) *routeEntry {
	if len(ext) == 0 {
		return noExtensions
	}
	h := setHash(ext)
	if v, ok := c.m.Load(h); ok {
		if e := v.(*routeEntry); sameSet(e.ext, ext) {
			return e
		}
		return c.parse(ext) // a collision: parsed per Check
	}
	e := c.parse(ext)
	if c.n.Add(1) <= maxRouteSets {
		e.ext = make(map[string]string, len(ext))
		for k, v := range ext {
			e.ext[k] = v
		}
		c.m.Store(h, e)
	}
	return e
}

func (c *routeCache) parse(ext map[string]string) *routeEntry {
	e := &routeEntry{}
	if problems := CheckRouteKeys(ext, c.ignored); len(problems) > 0 {
		e.problem = &problems[0]
		return e
	}
	e.policy = parseRoutePolicy(ext)
	for _, name := range slices.Concat(e.policy.denyIf, e.policy.allowIf) {
		if !c.rules.Has(name) {
			e.policy.unknownRule = name // denied once the user is known (ruleRefused)
			break
		}
	}
	return e
}

func sameSet(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// logNow reports whether the entry's problem is due a log line: at most
// one a minute per route setting.
func (e *routeEntry) logNow(now time.Time) bool {
	last := e.logged.Load()
	return now.Unix()-last >= 60 && e.logged.CompareAndSwap(last, now.Unix())
}
