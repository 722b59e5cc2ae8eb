package session

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// fuzzJar returns a jar and the cookies of one valid session (chunked when
// chunked is true: large enough to need several cookies).
func fuzzJar(f *testing.F, chunked bool) (*Jar, *sessionpb.Session, map[string]string) {
	j := newTestJar(f, Options{}, testkit.NewClock(t0))
	s := &sessionpb.Session{Subject: "u1", Email: "u1@example.com", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), AccessToken: "at"}
	if chunked {
		s.IdToken = strings.Repeat("x", 9000)
	}
	set, err := j.Save(f.Context(), s, "app.example.com", nil)
	if err != nil {
		f.Fatal(err)
	}
	cookies := map[string]string{}
	for _, c := range set {
		p, _ := http.ParseSetCookie(c)
		cookies[p.Name] = p.Value
	}
	return j, s, cookies
}

// FuzzJarRead: cookies the browser sends (a session cookie or chunks
// NAME_0…) never panic the reader, and only the value the jar wrote opens,
// to exactly the session it wrote.
func FuzzJarRead(f *testing.F) {
	j, want, single := fuzzJar(f, false)
	_, wantChunked, chunks := fuzzJar(f, true)
	f.Add("_oauth2_proxy", single["_oauth2_proxy"], "", "", "", "")
	f.Add("_oauth2_proxy_0", chunks["_oauth2_proxy_0"], "_oauth2_proxy_1", chunks["_oauth2_proxy_1"], "_oauth2_proxy_2", chunks["_oauth2_proxy_2"])
	f.Add("_oauth2_proxy_0", chunks["_oauth2_proxy_1"], "_oauth2_proxy_1", chunks["_oauth2_proxy_0"], "", "")
	f.Add("_oauth2_proxy", "", "_oauth2_proxy_0", "AAAA", "_oauth2_proxy_5", "x")
	f.Fuzz(func(t *testing.T, n0, v0, n1, v1, n2, v2 string) {
		cookies := map[string]string{n0: v0, n1: v1, n2: v2}
		s, _, err := j.Load(t.Context(), CookieMap(cookies))
		if err != nil {
			return
		}
		if !proto.Equal(s.Session, want) && !proto.Equal(s.Session, wantChunked) {
			t.Fatalf("opened a session the jar never wrote: %v", s)
		}
	})
}

// FuzzReadState: a state cookie opens only for its own state value.
func FuzzReadState(f *testing.F) {
	j, _, _ := fuzzJar(f, false)
	ls := &sessionpb.LoginState{State: "state-123456789012345678901234567890", Nonce: "n", CodeVerifier: "v", ReturnUrl: "https://app.example.com/", ExpiresAt: 1_800_000_000 + 600}
	set, err := j.WriteState(ls, "app.example.com", nil)
	if err != nil {
		f.Fatal(err)
	}
	p, _ := http.ParseSetCookie(set[0])
	f.Add(ls.GetState(), p.Name, p.Value)
	f.Add("state-1234567890123456789012345678901", p.Name, p.Value)
	f.Add("", p.Name, "")
	f.Fuzz(func(t *testing.T, state, name, value string) {
		got, err := j.ReadState(state, CookieMap(map[string]string{name: value}))
		if err != nil {
			return
		}
		if got.GetState() != state || !proto.Equal(got, ls) {
			t.Fatalf("state %q opened %v", state, got)
		}
	})
}

// FuzzCacheLookup: with every key colliding in the decoded-session cache,
// a cookie value finds a cached session only when it is byte for byte the
// value that session was cached under (differential: the cache never
// answers where a lookup by the full value would not).
func FuzzCacheLookup(f *testing.F) {
	f.Add("abc", "abd")
	f.Add("same", "same")
	f.Add("", "x")
	f.Add(strings.Repeat("A", 4000), strings.Repeat("A", 3999)+"B")
	f.Fuzz(func(t *testing.T, cached, asked string) {
		c := &oneSlotCache{}
		e := &Entry{key: cached, Session: &sessionpb.Session{Subject: "cached"}}
		c.SetWithTTL(cached, e, 1, time.Hour)
		got := lookup(c, asked, 0)
		if (got != nil) != (asked == cached) {
			t.Fatalf("cached under %q, asked %q: got %v", cached, asked, got)
		}
	})
}

// oneSlotCache holds one entry and returns it for every key: the worst
// collisions a hash could have.
type oneSlotCache struct{ e *Entry }

func (c *oneSlotCache) Get(string) (*Entry, bool) { return c.e, c.e != nil }
func (c *oneSlotCache) SetWithTTL(_ string, e *Entry, _ int64, _ time.Duration) bool {
	c.e = e
	return true
}
func (c *oneSlotCache) Del(string) { c.e = nil }
func (c *oneSlotCache) Clear()     { c.e = nil }
