package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// clientSession is one login of a client: its session cookie, sent by
// hand (a sign-out's Set-Cookie must not take it from the prober).
type clientSession struct {
	cookie string
	// ending: a sign-out or logout was answered 503 (not acknowledged):
	// the store may or may not have ended it, so it is no longer counted
	// as live (a login redirect then is not a lost session).
	ending bool
}

// Per-iteration odds: a sign-out, a back-channel logout, a bearer call;
// the rest are Checks.
const (
	pSignOut     = 1.0 / 1500
	pBackchannel = 1.0 / 1500
	pBearer      = 1.0 / 10
	pause        = 20 * time.Millisecond
	// endEvery: a client whose session lived this long ends it (sign-out
	// for even clients, back-channel logout for odd ones), so every run
	// has ended sessions to probe whatever the dice say.
	endEvery = 20 * time.Second
)

func (r *rig) client(ctx context.Context, n int, u devidp.User) {
	var sess *clientSession
	var bearer string
	var since time.Time
	for ctx.Err() == nil {
		if sess == nil {
			if sess = r.login(ctx, n); sess == nil {
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			since = time.Now()
			atomic.AddInt64(&r.res.logins, 1)
		}
		roll := rand.Float64()
		if time.Since(since) > endEvery {
			roll = 0 // the sign-out case
			if n%2 == 1 {
				roll = pSignOut // the back-channel logout case
			}
		}
		switch {
		case roll < pSignOut:
			if r.signOut(ctx, n, sess) {
				sess = nil
			}
		case roll < pSignOut+pBackchannel:
			if r.backchannelLogout(ctx, n, u, sess) {
				sess = nil
			}
		case roll < pSignOut+pBackchannel+pBearer:
			if bearer == "" {
				if tok, err := r.idp.Tokens(ctx, devidp.DefaultClient(), u.Username, u.Password); err == nil {
					bearer = tok.AccessToken
				}
			}
			if bearer != "" {
				r.bearerCall(ctx, n, bearer)
			}
		default:
			if !r.check(ctx, n, sess) {
				sess = nil
			}
		}
		sleep(ctx, pause)
	}
}

// login walks the code flow through a front; nil when a fault stopped it.
func (r *rig) login(ctx context.Context, n int) *clientSession {
	c := newClient()
	front := r.front(rand.IntN(2))
	resp, err := get(ctx, c, front+"/", http.Header{"Accept": {"text/html"}})
	if err != nil || resp.StatusCode != http.StatusFound {
		r.debugf("client %d: login start: %v %v", n, resp, err)
		return nil
	}
	u := r.userOf(n)
	cb, err := devidp.LoginForm(c, resp.Header.Get("Location"), u.name, u.password)
	if err != nil {
		r.debugf("client %d: login form: %v", n, err)
		return nil
	}
	resp, err = get(ctx, c, front+cb.RequestURI(), nil)
	if err != nil || resp.StatusCode != http.StatusFound {
		r.debugf("client %d: callback: %v %v", n, resp, err)
		return nil
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "_oauth2_proxy" && ck.Value != "" {
			return &clientSession{cookie: ck.Name + "=" + ck.Value}
		}
	}
	return nil
}

type userCreds struct{ name, password string }

func (r *rig) userOf(n int) userCreds {
	return userCreds{fmt.Sprint("user", n), fmt.Sprint("pw-", n)}
}

// check sends one request with the session; false when the session is
// gone (it is counted as lost: nothing ended it).
func (r *rig) check(ctx context.Context, n int, sess *clientSession) bool {
	start := time.Now()
	resp, err := get(ctx, newClient(), r.front(rand.IntN(2))+"/page", http.Header{"Cookie": {sess.cookie}, "Accept": {"text/html"}})
	if err != nil {
		return true // the soak is ending, or the front is gone (counted as exits)
	}
	atomic.AddInt64(&r.res.checks, 1)
	end := time.Now()
	calm := !r.faults.during(start, end)
	if calm {
		atomic.AddInt64(&r.res.liveTotal, 1)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if calm {
			atomic.AddInt64(&r.res.liveOK, 1)
		}
		return true
	case (resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusUnauthorized) && sess.ending:
		return false
	case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusUnauthorized:
		atomic.AddInt64(&r.res.lost, 1)
		r.detail(fmt.Sprintf("client %d: a live session got %d (location %.80s) at %s", n, resp.StatusCode, resp.Header.Get("Location"), start.Format("15:04:05.000")))
		return false
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		if calm {
			r.detail(fmt.Sprintf("client %d: 503 outside a fault at %s", n, start.Format("15:04:05.000")))
		}
		return true
	default:
		r.detail(fmt.Sprintf("client %d: unexpected %d at %s", n, resp.StatusCode, start.Format("15:04:05.000")))
		return true
	}
}

// signOut signs the session out; when acknowledged it checks that copies
// of the cookie are refused once redis_l1_ttl + 1 s have passed.
func (r *rig) signOut(ctx context.Context, n int, sess *clientSession) bool {
	resp, err := get(ctx, newClient(), r.front(rand.IntN(2))+"/oauth2/sign_out", http.Header{"Cookie": {sess.cookie}})
	if err != nil || resp.StatusCode != http.StatusFound {
		// Not acknowledged: try again later; meanwhile it may be ended.
		sess.ending = sess.ending || (err == nil && resp.StatusCode == http.StatusServiceUnavailable)
		return false
	}
	r.expectEnded(n, sess, time.Now(), "sign-out")
	return true
}

// backchannelLogout ends the client's sessions as ZITADEL would.
func (r *rig) backchannelLogout(ctx context.Context, n int, u devidp.User, sess *clientSession) bool {
	now := time.Now()
	tok, err := r.idp.SignJWT(ctx, map[string]any{
		"iss": r.idp.Issuer, "aud": []string{devidp.DefaultClient().ID}, "sub": u.ID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprintf("soak-%d-%d", n, now.UnixNano()), "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	})
	if err != nil {
		return false
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.servers[rand.IntN(2)].HTTPAddr+"/oauth2/backchannel_logout",
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		sess.ending = sess.ending || resp.StatusCode == http.StatusServiceUnavailable
		return false
	}
	r.expectEnded(n, sess, now, "back-channel logout")
	return true
}

// endedSessions are the sessions whose end (a sign-out, a back-channel
// logout) was acknowledged: probed on every replica until the soak ends.
type endedSessions struct {
	mu   sync.Mutex
	list []endedSession
}

type endedSession struct {
	client int
	cookie string
	acked  time.Time
	how    string
}

// expectEnded records an acknowledged end: from 3 s after it (or
// redis_l1_ttl + 1 s, if longer) every Check allowed with the cookie, on any replica,
// is a security violation, until the soak ends. (Probing only the first
// seconds was blind to a kept write that brought a session back later.)
func (r *rig) expectEnded(n int, sess *clientSession, acked time.Time, how string) {
	r.ended.mu.Lock()
	defer r.ended.mu.Unlock()
	r.ended.list = append(r.ended.list, endedSession{client: n, cookie: sess.cookie, acked: acked, how: how})
	atomic.AddInt64(&r.res.ended, 1)
}

// probeEnded sends every ended session's cookie through each replica's
// Envoy twice a second.
func (r *rig) probeEnded(ctx context.Context) {
	for ctx.Err() == nil {
		sleep(ctx, 500*time.Millisecond)
		r.ended.mu.Lock()
		list := slices.Clone(r.ended.list)
		r.ended.mu.Unlock()
		for _, e := range list {
			if time.Now().Before(e.acked.Add(max(3*time.Second, r.o.l1TTL+time.Second))) {
				continue // within the limit: an answer either way proves nothing
			}
			for replica := range r.envoys {
				sent := time.Now()
				resp, err := get(ctx, newClient(), r.front(replica)+"/page", http.Header{"Cookie": {e.cookie}, "Accept": {"text/html"}})
				if err != nil {
					continue
				}
				atomic.AddInt64(&r.res.endedProbes, 1)
				if resp.StatusCode == http.StatusOK {
					atomic.AddInt64(&r.res.violations, 1)
					r.detail(fmt.Sprintf("client %d: a session allowed on replica %d %s after its %s was acknowledged", e.client, replica, sent.Sub(e.acked).Round(time.Millisecond), e.how))
				}
			}
		}
	}
}

func (r *rig) bearerCall(ctx context.Context, n int, token string) {
	resp, err := get(ctx, newClient(), r.front(rand.IntN(2))+"/api/items", http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}})
	if err != nil {
		return
	}
	if resp.StatusCode != http.StatusOK && !(resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "") {
		r.detail(fmt.Sprintf("client %d: bearer call got %d", n, resp.StatusCode))
	}
}

// get sends one GET and reads the body.
func get(ctx context.Context, c *http.Client, target string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}
