package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session/redisstore"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// The README's Redis Cluster, for real: three masters, TLS with a private
// CA and a password. Two replicas share sessions with keys on every
// master, refresh once between them, hear each other's sign-outs and
// logouts; a replica started later knows them; a master down is a 503,
// never a login, and its return needs no restart.
func TestRedisClusterWalk(t *testing.T) {
	cert, key, ca := writeTLSFiles(t, t.TempDir())
	cl := startRedisCluster(t, "cluster-pw", []string{cert, key, ca})
	keys := map[string]any{"redis_cluster_addresses": cl.Addrs(), "redis_password": "cluster-pw", "redis_use_tls": true, "redis_ca_file": ca}

	t.Run("redis sessions", func(t *testing.T) {
		rp := startReplicasOn(t, 2, keys, map[string]any{"session_store_type": "redis", "redis_l1_ttl": "1m"})
		w := newStoreWalk(t, rp)
		w.loginUntil(func() bool { return everyNodeHolds(t, cl.Nodes, "zea:s:*") })
		w.logouts()
		// Killing the master with the most sessions: the ones it holds are
		// 503 at once; every one once the cluster calls itself down.
		k := 0
		for i, n := range cl.Nodes {
			if keysOn(t, n, "zea:s:*") > keysOn(t, cl.Nodes[k], "zea:s:*") {
				k = i
			}
		}
		c := rp.add(t, map[string]any{"session_cache_max_bytes": 0})
		cl.Nodes[k].stop()
		if unavailable := w.checkLive(c, "/master-down"); unavailable == 0 {
			t.Error("with a master down, no session answered 503")
		}
		cl.waitState("fail")
		if unavailable := w.checkLive(c, "/cluster-down"); unavailable != len(w.live()) {
			t.Errorf("cluster down: %d of %d sessions answered 503", unavailable, len(w.live()))
		}
		w.loginRefused(c)
		cl.Nodes[k].start()
		cl.waitState("ok")
		w.recovered(c)
	})

	t.Run("refresh race", func(t *testing.T) { refreshRaceOn(t, keys) })

	t.Run("cookie sessions", func(t *testing.T) {
		rp := startReplicasOn(t, 2, keys, map[string]any{"session_store_type": "cookie"})
		w := newStoreWalk(t, rp)
		// Logout records by sid land on every master.
		w.loginUntil(func() bool { return len(w.sessions) >= 6 })
		for len(w.sessions) < 40 && !everyNodeHolds(t, cl.Nodes, "zea:rv:*") {
			w.logoutBySID(w.login())
		}
		if !everyNodeHolds(t, cl.Nodes, "zea:rv:*") {
			t.Fatal("40 logouts and still a master without a logout record")
		}
		w.logouts()
	})
}

// The same walk on a master, its replica and a Sentinel, with TLS, the
// master's password and the Sentinel's own: a SENTINEL FAILOVER with both
// servers running keeps every session and lets new logins in; so does the
// master killed, once the Sentinel has promoted the replica (reads) and
// the killed node is back as its replica (writes, which wait for one).
func TestRedisSentinelWalk(t *testing.T) {
	cert, key, ca := writeTLSFiles(t, t.TempDir())
	sn := startRedisSentinel(t, "master-pw", "sentinel-pw", []string{cert, key, ca})
	keys := map[string]any{"redis_sentinel_addresses": []string{sn.SentinelAddr}, "redis_sentinel_master_name": sn.name,
		"redis_password": "master-pw", "redis_sentinel_password": "sentinel-pw", "redis_use_tls": true, "redis_ca_file": ca}

	t.Run("redis sessions", func(t *testing.T) {
		rp := startReplicasOn(t, 2, keys, map[string]any{"session_store_type": "redis", "redis_l1_ttl": "1m"})
		w := newStoreWalk(t, rp)
		w.loginUntil(func() bool { return len(w.sessions) >= 6 })
		w.logouts()
		c := rp.add(t, map[string]any{"session_cache_max_bytes": 0})

		sn.Failover()
		w.recovered(c)
		for _, st := range rp.Stacks[:2] {
			w.recovered(st)
		}

		// The master killed: 503 (never a login) until the Sentinel has
		// promoted the replica; sessions are read again at once, and writes
		// (which wait for a replica, redis_min_replicas) once the killed
		// node is back, as the new master's replica.
		killed := sn.Master
		killed.stop()
		w.checkLive(c, "/master-killed")
		testkit.Eventually(t, 20*time.Second, "the Sentinel to promote the replica", func() bool {
			return sn.MasterAddr() == sn.Replica.addr
		})
		sn.Master = sn.Replica
		if unavailable := w.checkLive(c, "/replica-promoted"); unavailable != 0 {
			t.Errorf("%d sessions unreadable on the promoted master", unavailable)
		}
		w.loginRefused(c) // no replica: a login can't be made durable
		killed.start()
		sn.waitFollows(killed)
		sn.Replica = killed
		w.recovered(c)
	})

	t.Run("refresh race", func(t *testing.T) { refreshRaceOn(t, keys) })

	t.Run("cookie sessions", func(t *testing.T) {
		rp := startReplicasOn(t, 2, keys, map[string]any{"session_store_type": "cookie"})
		w := newStoreWalk(t, rp)
		w.loginUntil(func() bool { return len(w.sessions) >= 6 })
		w.logouts()
	})
}

// refreshRaceOn: on two replicas reaching Redis with keys, a refresh
// racing on both is made once.
func refreshRaceOn(t *testing.T, keys map[string]any) {
	rp := startReplicasOn(t, 2, keys, map[string]any{"session_store_type": "redis", "cookie_refresh": "1ms", "refresh_grace_period": "0s", "pass_access_token": true})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, rp.Stacks[0].login(t, alice, "/"))
	refreshRace(t, rp, cookieHeader(alice, rp.Stacks[0].Front.URL))
}

// storeWalk logs users in on replica A (rp.Stacks[0]), each login with
// its own IdP session id, and checks what replicas see.
type storeWalk struct {
	t        *testing.T
	rp       *replicas
	sid      atomic.Value // the sid the IdP puts in the next ID token
	sessions []*walkSession
}

type walkSession struct {
	user, sid string
	cookie    string // for A's front
	ended     bool
}

var walkUsers = []struct{ name, password, sub string }{
	{"alice", "alice-password", "user-alice"}, {"bob", "bob-password", "user-bob"}, {"pat", "pat-password", "user-pat"},
}

func newStoreWalk(t *testing.T, rp *replicas) *storeWalk {
	w := &storeWalk{t: t, rp: rp}
	w.sid.Store("")
	// The dev IdP puts no sid in ID tokens; ZITADEL does.
	rp.IdP.SetTamper(tokenTamper(t, rp.IdP, resign(t, rp.IdP, func(c map[string]any) { c["sid"] = w.sid.Load().(string) })))
	t.Cleanup(func() { rp.IdP.SetTamper(nil) })
	return w
}

// login signs the next user in on A and uses the session on B.
func (w *storeWalk) login() *walkSession {
	w.t.Helper()
	a, b := w.rp.Stacks[0], w.rp.Stacks[1]
	u := walkUsers[len(w.sessions)%len(walkUsers)]
	s := &walkSession{user: u.sub, sid: fmt.Sprint("sid-", len(w.sessions))}
	w.sid.Store(s.sid)
	br := newBrowser(w.t, u.name, u.password)
	upstreamSaw(w.t, a.login(w.t, br, "/"))
	s.cookie = cookieHeader(br, a.Front.URL)
	if got := upstreamSaw(w.t, w.send(b, s, "/on-b")); got.Headers["x-forwarded-user"] != u.sub {
		w.t.Errorf("B saw %q for %s's session", got.Headers["x-forwarded-user"], u.sub)
	}
	w.sessions = append(w.sessions, s)
	return s
}

// loginUntil logs in until done (at least 3 logins, at most 40).
func (w *storeWalk) loginUntil(done func() bool) {
	w.t.Helper()
	for len(w.sessions) < 3 || !done() {
		if len(w.sessions) == 40 {
			w.t.Fatal("40 logins and the condition still doesn't hold")
		}
		w.login()
	}
}

func (w *storeWalk) send(st *stack, s *walkSession, path string) *response {
	w.t.Helper()
	return newBrowser(w.t, "x", "x").do(http.MethodGet, st.Front.URL+path, http.Header{"Cookie": {s.cookie}})
}

func (w *storeWalk) live() []*walkSession {
	return slices.DeleteFunc(slices.Clone(w.sessions), func(s *walkSession) bool { return s.ended })
}

// ended checks that every replica refuses s within a second (a login
// redirect).
func (w *storeWalk) ended(s *walkSession, how string) {
	w.t.Helper()
	s.ended = true
	for _, st := range w.rp.Stacks {
		testkit.Eventually(w.t, time.Second, how+" to reach "+st.Front.URL, func() bool {
			return w.send(st, s, "/after").StatusCode == http.StatusFound
		})
	}
}

// logoutBySID delivers a back-channel logout naming s's IdP session only.
func (w *storeWalk) logoutBySID(s *walkSession) {
	w.t.Helper()
	token := logoutToken(w.t, w.rp.IdP, func(c map[string]any) {
		delete(c, "sub")
		c["sid"] = s.sid
	})
	if code, body := postLogout(w.t, w.rp.Stacks[0].Server, token); code != http.StatusOK {
		w.t.Fatalf("logout by sid: %d %s", code, body)
	}
	w.ended(s, "the logout of "+s.sid)
}

// logouts: a sign-out on A, a back-channel logout by sid and one by
// subject (bob: every session of his) reach every replica within a
// second and leave the others alone; a replica started afterwards knows
// them all.
func (w *storeWalk) logouts() {
	w.t.Helper()
	a := w.rp.Stacks[0]
	first := w.live()[0]
	w.send(a, first, "/oauth2/sign_out")
	w.ended(first, "the sign-out")

	w.logoutBySID(w.live()[0])

	token := logoutToken(w.t, w.rp.IdP, func(c map[string]any) { c["sub"] = "user-bob" })
	if code, body := postLogout(w.t, w.rp.Stacks[1].Server, token); code != http.StatusOK {
		w.t.Fatalf("logout by sub: %d %s", code, body)
	}
	for _, s := range w.live() {
		if s.user == "user-bob" {
			w.ended(s, "bob's logout")
		}
	}
	if len(w.live()) == 0 {
		w.t.Fatal("no session left alive")
	}
	for _, st := range w.rp.Stacks {
		for _, s := range w.live() {
			upstreamSaw(w.t, w.send(st, s, "/still-in"))
		}
	}

	late := w.rp.add(w.t, nil)
	for _, s := range w.sessions {
		r := w.send(late, s, "/late")
		if s.ended && r.StatusCode != http.StatusFound {
			w.t.Errorf("a replica started after the logouts let an ended session (%s) in: %s", s.sid, describe(r))
		} else if !s.ended {
			upstreamSaw(w.t, r)
		}
	}
}

// checkLive sends every live session to st while the store is failing:
// each is let in (from memory, or from a part of the store still up) or
// refused with 503 and retry-after, never sent to log in, never with its
// cookie cleared. It returns how many were 503.
func (w *storeWalk) checkLive(st *stack, path string) int {
	w.t.Helper()
	unavailable := 0
	for _, s := range w.live() {
		r := w.send(st, s, path)
		switch {
		case r.StatusCode == http.StatusOK:
		case r.StatusCode == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "" && len(r.Header.Values("Set-Cookie")) == 0:
			unavailable++
		default:
			w.t.Errorf("%s's session with the store failing: %s, want 200 or 503 with retry-after and no cookie change", s.sid, describe(r))
		}
	}
	return unavailable
}

// loginRefused: a login through st while the store is down ends in a 503
// at the callback, not a session and not a loop.
func (w *storeWalk) loginRefused(st *stack) {
	w.t.Helper()
	br := newBrowser(w.t, "alice", "alice-password")
	cb := beginLogin(w.t, st, br, "/store-down")
	if r := br.get(cb.String()); r.StatusCode != http.StatusServiceUnavailable {
		w.t.Errorf("callback with the store down: %s, want 503", describe(r))
	}
}

// recovered: every live session works on st again and a new login
// through it succeeds, without restarting it.
func (w *storeWalk) recovered(st *stack) {
	w.t.Helper()
	waitFor(w.t, "every live session back on "+st.Front.URL, func() bool {
		for _, s := range w.live() {
			if w.send(st, s, "/back").StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
	// A login writes, and a write waits for a replica (redis_min_replicas):
	// right after a failover the new master may not count its replica
	// within the write's wait yet, and the login is a 503 (never an
	// unreplicated session); a later one gets in.
	w.sid.Store(fmt.Sprint("sid-after-", len(w.sessions)))
	testkit.Eventually(w.t, 20*time.Second, "a new login on "+st.Front.URL, func() bool {
		br := newBrowser(w.t, "alice", "alice-password")
		resp := st.login(w.t, br, "/new-login")
		if resp.StatusCode == http.StatusServiceUnavailable {
			return false
		}
		upstreamSaw(w.t, resp)
		return true
	})
}

// everyNodeHolds reports whether each cluster node holds a key matching
// pattern.
func everyNodeHolds(t *testing.T, nodes []*redisServer, pattern string) bool {
	for _, n := range nodes {
		if keysOn(t, n, pattern) == 0 {
			return false
		}
	}
	return true
}

// A login, a Check that misses the L1 cache, a refresh, a sign-out and a
// back-channel logout take as many sequential Redis round trips on a
// cluster as on one server: writes to several slots go out as one
// pipeline, sent to every node at once.
func TestRedisRoundTripsClusterAsSingle(t *testing.T) {
	single := startRedis(t)
	cl := startRedisCluster(t, "", nil)
	type counted struct {
		store            *redisstore.Store
		trips, nodeTrips *atomic.Int64
	}
	newCounted := func(rdb redis.UniversalClient, nodes func(func(*redis.Client))) counted {
		c := counted{store: redisstore.New(rdb, slog.New(slog.DiscardHandler)), trips: new(atomic.Int64), nodeTrips: new(atomic.Int64)}
		rdb.AddHook(tripHook{c.trips})
		nodes(func(n *redis.Client) { n.AddHook(tripHook{c.nodeTrips}) })
		t.Cleanup(func() { c.store.Close() })
		return c
	}
	one := redis.NewClient(&redis.Options{Addr: single.addr})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	stores := map[string]counted{
		"one server": newCounted(one, func(f func(*redis.Client)) { f(one) }),
		"cluster":    newCounted(cluster, cluster.OnNewNode),
	}
	ctx := t.Context()
	type step struct {
		name  string
		setup func(s *redisstore.Store) error // not counted
		run   func(s *redisstore.Store) error
	}
	steps := []step{
		{name: "login", run: func(s *redisstore.Store) error {
			return s.Save(ctx, "ticket-1", []byte("blob"), time.Hour, "sid-1", "user-1")
		}},
		{name: "Check, L1 miss", run: func(s *redisstore.Store) error { _, err := s.Load(ctx, "ticket-1"); return err }},
		{name: "refresh", run: func(s *redisstore.Store) error {
			unlock, err := s.Lock(ctx, "refresh:ticket-1")
			if err != nil {
				return err
			}
			defer unlock()
			if _, err := s.Load(ctx, "ticket-1"); err != nil {
				return err
			}
			return s.Save(ctx, "ticket-1", []byte("blob-2"), time.Hour, "sid-1", "user-1")
		}},
		{name: "sign-out", run: func(s *redisstore.Store) error { return s.Delete(ctx, "ticket-1") }},
		{name: "back-channel logout, 4 sessions", setup: func(s *redisstore.Store) error {
			for _, id := range []string{"t-a", "t-b", "t-c", "t-d"} {
				if err := s.Save(ctx, id, []byte("blob"), time.Hour, "sid-2", "user-2"); err != nil {
					return err
				}
			}
			return nil
		}, run: func(s *redisstore.Store) error {
			n, err := s.EndSessions(ctx, "sid-2", "")
			if err == nil && n != 4 {
				err = fmt.Errorf("ended %d sessions, want 4", n)
			}
			return err
		}},
	}
	for round := range 2 { // the first warms up: the cluster's slot map, the unlock script
		for _, st := range steps {
			trips := map[string]int64{}
			var line []string
			for name, c := range stores {
				if st.setup != nil {
					if err := st.setup(c.store); err != nil {
						t.Fatal(err)
					}
				}
				c.trips.Store(0)
				c.nodeTrips.Store(0)
				if err := st.run(c.store); err != nil {
					t.Fatalf("%s on %s: %v", st.name, name, err)
				}
				trips[name] = c.trips.Load()
				line = append(line, fmt.Sprintf("%s %d (%d node exchanges)", name, c.trips.Load(), c.nodeTrips.Load()))
			}
			if round == 0 {
				continue
			}
			slices.Sort(line)
			t.Logf("%s: round trips: %s", st.name, strings.Join(line, ", "))
			if trips["cluster"] > trips["one server"] {
				t.Errorf("%s: %d round trips on a cluster, %d on one server", st.name, trips["cluster"], trips["one server"])
			}
		}
	}
}

// tripHook counts the command and pipeline exchanges of a client.
type tripHook struct{ n *atomic.Int64 }

func (h tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
