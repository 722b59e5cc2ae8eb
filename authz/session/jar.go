package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

const (
	// maxCookieBytes bounds one Set-Cookie value (name, value and attributes);
	// browsers accept 4096, and we leave room for what proxies add.
	maxCookieBytes = 4000
	// MaxChunks bounds how many NAME_n cookies are read.
	MaxChunks = 16
	// maxWriteChunks bounds how many are written: 12 cookies of at most
	// 4000 bytes keep the Cookie header under 48 KB, so the whole request
	// stays under Envoy's default limit of 60 KiB of request headers
	// (max_request_headers_kb). A 16-cookie session would pass it: the real
	// Envoy then answers 431 to every request of that browser, sign-out
	// included, until the cookies expire.
	maxWriteChunks = 12
	// stateInfix separates the cookie name from the flow id in state cookies.
	stateInfix = "_csrf_"
	// stateIDLen is how much of the state value names its cookie.
	stateIDLen = 12
)

// Options are the cookie attributes and lifetimes, as configured.
type Options struct {
	Name     string        // cookie_name
	Domains  []string      // cookie_domains: the first that matches the request host is used
	Path     string        // cookie_path
	Secure   bool          // cookie_secure
	HTTPOnly bool          // cookie_httponly
	SameSite http.SameSite // cookie_samesite
	Expire   time.Duration // cookie_expire: absolute session lifetime from login
	StateTTL time.Duration // how long a login flow may take (default 15m)
	MaxFlows int           // concurrent login flows per browser (default 5)
}

// Jar reads and writes the session and state cookies of one configuration.
type Jar struct {
	codec atomic.Pointer[Codec] // replaced by SetCodec (cookie secret rotation)
	opts  Options
	cache Cache
	now   func() time.Time
	app   uint64 // hash of the app's name (WithApp); 0 for the default app

	chunkNames [MaxChunks + 1]string // NAME_0 … NAME_16, built once: looked up on every Check

	// Redis mode (WithStore): sessions live in store, the cookie carries a
	// Ticket; l1 caches decoded sessions by ticket id for l1TTL.
	store   Store
	l1      Cache
	l1TTL   time.Duration
	pending pendingWrites // refreshed sessions the store refused (Pend)
}

// Caches reports whether decoded sessions are cached (the same Entry
// comes back for the same cookie), so what a caller keeps with an Entry
// (SetMemo) is found again.
func (j *Jar) Caches() bool {
	return (j.store == nil && j.cache != nil) || (j.store != nil && j.l1 != nil)
}

// JarOption customises a Jar.
type JarOption func(*Jar)

// WithCache caches decoded sessions (nil disables caching).
func WithCache(c Cache) JarOption { return func(j *Jar) { j.cache = c } }

// WithApp makes the Jar one app's among several sharing the caches: its
// cached sessions are found only by it. The app's cookie keys must be its
// own too (NewAppCodec).
func WithApp(name string) JarOption {
	return func(j *Jar) {
		if name != "" {
			j.app = maphash.String(appSeed, name) | 1 // never 0, the default app's
		}
	}
}

// appSeed hashes app names for WithApp.
var appSeed = maphash.MakeSeed()

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) JarOption { return func(j *Jar) { j.now = now } }

// NewJar returns a Jar; zero Options fields get CONTRACT.md defaults.
func NewJar(codec *Codec, opts Options, options ...JarOption) *Jar {
	if opts.Name == "" {
		opts.Name = "_oauth2_proxy"
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.Expire <= 0 {
		opts.Expire = 168 * time.Hour
	}
	if opts.StateTTL <= 0 {
		opts.StateTTL = 15 * time.Minute
	}
	if opts.MaxFlows <= 0 {
		opts.MaxFlows = 5
	}
	if opts.SameSite == 0 {
		opts.SameSite = http.SameSiteLaxMode
	}
	// Cookie prefixes (RFC 6265bis §4.1.3): browsers drop a __Host- cookie
	// that isn't Secure, host-only and Path=/, and a __Secure- cookie that
	// isn't Secure. Every cookie we write starts with the name (chunks,
	// login states), so all of them follow.
	switch {
	case strings.HasPrefix(opts.Name, "__Host-"):
		opts.Secure, opts.Path, opts.Domains = true, "/", nil
	case strings.HasPrefix(opts.Name, "__Secure-"):
		opts.Secure = true
	}
	j := &Jar{opts: opts, now: time.Now}
	for i := range j.chunkNames {
		j.chunkNames[i] = opts.Name + "_" + strconv.Itoa(i)
	}
	j.codec.Store(codec)
	for _, o := range options {
		o(j)
	}
	return j
}

// SetCodec replaces the cookie keys (a reloaded cookie_secrets list) and
// empties the decoded-session cache, so sessions sealed with a key that
// was removed stop working at once.
func (j *Jar) SetCodec(c *Codec) {
	j.codec.Store(c)
	if j.cache != nil {
		j.cache.Clear()
	}
}

// Name is the session cookie's base name.
func (j *Jar) Name() string { return j.opts.Name }

// StateTTL is how long a login flow may take.
func (j *Jar) StateTTL() time.Duration { return j.opts.StateTTL }

// Lifetime is the absolute session lifetime (cookie_expire).
func (j *Jar) Lifetime() time.Duration { return j.opts.Expire }

// Owns reports whether a cookie of this name is one of ours (the session,
// its chunks or a state cookie), so it can be kept from the upstream.
func (j *Jar) Owns(name string) bool {
	return name == j.opts.Name || strings.HasPrefix(name, j.opts.Name+"_")
}

// sessionValue joins the session cookie or its chunks. ok is false when
// there is no session cookie at all.
func (j *Jar) sessionValue(cookies Cookies) (string, bool) {
	if v, ok := get(cookies, j.opts.Name); ok {
		return v, true
	}
	var b strings.Builder
	for i := range MaxChunks {
		v, ok := get(cookies, j.chunkName(i))
		if !ok {
			break
		}
		b.WriteString(v)
	}
	return b.String(), b.Len() > 0
}

func (j *Jar) chunkName(i int) string { return j.chunkNames[i] }

// Load returns the session carried by cookies, or ErrNoSession: decoded
// from the cookie, or in redis mode read from the store within ctx (a
// store failure is ErrStoreUnavailable). stale is true when an older cookie
// secret opened it: the caller should re-issue the cookie (Save) so it
// moves to the current secret. Stale sessions are not cached. The returned
// session is shared: Clone it before changing it.
func (j *Jar) Load(ctx context.Context, cookies Cookies) (e *Entry, stale bool, err error) {
	value, ok := j.sessionValue(cookies)
	if !ok || len(value) > MaxChunks*maxCookieBytes {
		return nil, false, ErrNoSession
	}
	if j.store != nil {
		return j.loadTicket(ctx, value, true)
	}
	now := j.now()
	if j.cache != nil {
		if e := lookup(j.cache, value, j.app); e != nil {
			if !j.live(e.Session, now) {
				return nil, false, ErrNoSession
			}
			return e, false, nil
		}
	}
	s := &sessionpb.Session{}
	keyIndex, err := j.codec.Load().OpenKey(j.opts.Name, PurposeSession, value, s)
	if err != nil {
		return nil, false, err
	}
	if !j.live(s, now) {
		return nil, false, ErrNoSession
	}
	if keyIndex > 0 {
		return NewEntry(s), true, nil
	}
	return j.remember(value, s, now), false, nil
}

// live reports whether a decoded session is within its absolute lifetime.
func (j *Jar) live(s *sessionpb.Session, now time.Time) bool {
	return s.GetExpiresAt() > now.Unix() && s.GetCreatedAt() <= now.Add(time.Minute).Unix()
}

// remember caches s under its cookie value (the entry keeps the value for
// the full comparison on every hit, and costs it). The value is copied: a
// cookie read from a request points into the whole request's buffer
// (authz/checkwire), which the cache must not keep alive.
func (j *Jar) remember(value string, s *sessionpb.Session, now time.Time) *Entry {
	e := &Entry{key: value, Session: s, app: j.app}
	ttl := time.Unix(s.GetExpiresAt(), 0).Sub(now)
	if j.cache != nil && ttl > 0 {
		e.key = strings.Clone(value)
		j.cache.SetWithTTL(value, e, int64(proto.Size(s)+len(value)+entryOverhead), ttl)
	}
	return e
}

// entryOverhead is an entry's memory besides the session and its key: the
// Entry, its memo and ristretto's bookkeeping.
const entryOverhead = 160

// Save encodes s into Set-Cookie values for host: one cookie, or NAME_0…n
// chunks when one would pass the browser limit; in redis mode it writes s
// to the store within ctx and the cookie carries a ticket. Cookies of a
// previous encoding that the new one does not overwrite are expired. The
// written value is cached, so the next Check with it is a cache hit.
func (j *Jar) Save(ctx context.Context, s *sessionpb.Session, host string, cookies Cookies) ([]string, error) {
	if j.store != nil {
		return j.saveTicket(ctx, s, host, cookies)
	}
	value, err := j.codec.Load().Seal(j.opts.Name, PurposeSession, s)
	if err != nil {
		return nil, err
	}
	out, err := j.setCookies(value, s.GetExpiresAt(), host, cookies)
	if err == nil && len(out) > 0 {
		j.remember(value, s, j.now())
	}
	return out, err
}

// setCookies writes value as the session cookie (or its chunks) until
// expiresAt.
func (j *Jar) setCookies(value string, expiresAt int64, host string, cookies Cookies) ([]string, error) {
	now := j.now()
	maxAge := int(time.Unix(expiresAt, 0).Sub(now) / time.Second)
	if maxAge <= 0 {
		return j.ClearCookies(host, cookies), nil
	}
	domain := j.domainFor(host)
	var out []string
	single := j.cookie(j.opts.Name, value, domain, maxAge, j.opts.SameSite)
	if len(single) <= maxCookieBytes {
		out = append(out, single)
		for i := range MaxChunks {
			if _, ok := get(cookies, j.chunkName(i)); ok {
				out = append(out, j.cookie(j.chunkName(i), "", domain, -1, j.opts.SameSite))
			}
		}
	} else {
		overhead := len(j.cookie(j.chunkName(MaxChunks), "", domain, maxAge, j.opts.SameSite))
		size := maxCookieBytes - overhead
		n := (len(value) + size - 1) / size
		if n > maxWriteChunks {
			return nil, fmt.Errorf("%w: %d bytes encoded, %d cookies of %d allowed", ErrTooLarge, len(value), n, maxWriteChunks)
		}
		for i := range n {
			part := value[i*size : min(len(value), (i+1)*size)]
			out = append(out, j.cookie(j.chunkName(i), part, domain, maxAge, j.opts.SameSite))
		}
		if _, ok := get(cookies, j.opts.Name); ok {
			out = append(out, j.cookie(j.opts.Name, "", domain, -1, j.opts.SameSite))
		}
		for i := n; i < MaxChunks; i++ {
			if _, ok := get(cookies, j.chunkName(i)); ok {
				out = append(out, j.cookie(j.chunkName(i), "", domain, -1, j.opts.SameSite))
			}
		}
	}
	return out, nil
}

// ErrTooLarge is returned when a session needs more cookies than fit in
// a request behind Envoy; session_store_type = "redis" keeps such sessions
// server-side behind a small ticket cookie.
var ErrTooLarge = errors.New("session too large for browser cookies behind Envoy")

// End ends the session the cookies carry: in redis mode it deletes the
// stored session within ctx (best effort: the cookies are cleared either
// way), and it returns ClearCookies.
func (j *Jar) End(ctx context.Context, host string, cookies Cookies) []string {
	if j.store != nil {
		_ = j.deleteTicket(ctx, cookies) // best effort; EndStored reports
	}
	return j.ClearCookies(host, cookies)
}

// ClearCookies returns Set-Cookie values that expire the session cookie and
// every chunk the request carries. No I/O.
func (j *Jar) ClearCookies(host string, cookies Cookies) []string {
	domain := j.domainFor(host)
	out := []string{j.cookie(j.opts.Name, "", domain, -1, j.opts.SameSite)}
	for i := range MaxChunks {
		if _, ok := get(cookies, j.chunkName(i)); ok {
			out = append(out, j.cookie(j.chunkName(i), "", domain, -1, j.opts.SameSite))
		}
	}
	return out
}

// stateName is the cookie of the login flow with this state value.
func (j *Jar) stateName(state string) string {
	id := state
	if len(id) > stateIDLen {
		id = id[:stateIDLen]
	}
	return j.opts.Name + stateInfix + id
}

// stateSameSite keeps state cookies on Lax even when sessions are Strict: the
// callback is a top-level navigation coming from the IdP's site.
func (j *Jar) stateSameSite() http.SameSite {
	if j.opts.SameSite == http.SameSiteStrictMode {
		return http.SameSiteLaxMode
	}
	return j.opts.SameSite
}

// WriteState returns the Set-Cookie values that start a login flow: the new
// state cookie, plus expiries for the oldest pending flows when the browser
// already holds MaxFlows of them (abandoned flows can't pile up).
func (j *Jar) WriteState(ls *sessionpb.LoginState, host string, cookies Cookies) ([]string, error) {
	name := j.stateName(ls.GetState())
	value, err := j.codec.Load().Seal(name, PurposeState, ls)
	if err != nil {
		return nil, err
	}
	domain := j.domainFor(host)
	out := []string{j.cookie(name, value, domain, int(j.opts.StateTTL/time.Second), j.stateSameSite())}

	type flow struct {
		name    string
		created int64
	}
	var flows []flow
	prefix := j.opts.Name + stateInfix
	for _, c := range all(cookies) {
		n, v := c.Name, c.Value
		if !strings.HasPrefix(n, prefix) || n == name {
			continue
		}
		old := &sessionpb.LoginState{}
		if j.codec.Load().Open(n, PurposeState, v, old) != nil || old.GetExpiresAt() <= j.now().Unix() {
			out = append(out, j.cookie(n, "", domain, -1, j.stateSameSite()))
			continue
		}
		flows = append(flows, flow{n, old.GetCreatedAt()})
	}
	if excess := len(flows) - (j.opts.MaxFlows - 1); excess > 0 {
		slices.SortFunc(flows, func(a, b flow) int {
			if a.created != b.created {
				return int(a.created - b.created)
			}
			return strings.Compare(a.name, b.name)
		})
		for _, f := range flows[:excess] {
			out = append(out, j.cookie(f.name, "", domain, -1, j.stateSameSite()))
		}
	}
	return out, nil
}

// ReadState returns the pending login flow whose state the callback carries,
// or ErrNoSession when there is none, it expired, or it does not match.
func (j *Jar) ReadState(state string, cookies Cookies) (*sessionpb.LoginState, error) {
	if len(state) < stateIDLen {
		return nil, ErrNoSession
	}
	name := j.stateName(state)
	value, ok := get(cookies, name)
	if !ok {
		return nil, ErrNoSession
	}
	ls := &sessionpb.LoginState{}
	if err := j.codec.Load().Open(name, PurposeState, value, ls); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(ls.GetState()), []byte(state)) != 1 || ls.GetExpiresAt() <= j.now().Unix() {
		return nil, ErrNoSession
	}
	return ls, nil
}

// ClearState expires the state cookie of one login flow.
func (j *Jar) ClearState(state, host string) string {
	return j.cookie(j.stateName(state), "", j.domainFor(host), -1, j.stateSameSite())
}

// domainFor picks the first cookie_domains entry that host belongs to, or
// none (a host-only cookie).
func (j *Jar) domainFor(host string) string {
	if len(j.opts.Domains) == 0 {
		return ""
	}
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	for _, d := range j.opts.Domains {
		bare := strings.TrimPrefix(strings.ToLower(d), ".")
		if h == bare || strings.HasSuffix(h, "."+bare) {
			return bare
		}
	}
	return ""
}

// cookie renders one Set-Cookie value; maxAge < 0 expires the cookie.
func (j *Jar) cookie(name, value, domain string, maxAge int, sameSite http.SameSite) string {
	c := http.Cookie{
		Name:     name,
		Value:    value,
		Path:     j.opts.Path,
		Domain:   domain,
		MaxAge:   maxAge,
		Secure:   j.opts.Secure || sameSite == http.SameSiteNoneMode,
		HttpOnly: j.opts.HTTPOnly,
		SameSite: sameSite,
	}
	if maxAge < 0 {
		c.Expires = time.Unix(0, 0)
	}
	return c.String()
}
