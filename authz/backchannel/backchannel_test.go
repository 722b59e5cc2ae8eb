package backchannel

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in a synctest bubble: time.Now is the bubble's fake clock,
// and time.Sleep moves it without waiting.

func TestRevocations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRevocations(nil)
		if r.Revoked("sid-1", "alice", time.Now().UnixMilli()) {
			t.Fatal("empty list revoked a session")
		}
		logoutAt := time.Now()
		r.Add("sid-1", "", logoutAt, logoutAt.Add(time.Hour))
		r.Add("", "bob", logoutAt, logoutAt.Add(time.Hour))
		cases := []struct {
			name      string
			sid, sub  string
			createdMs int64
			want      bool
		}{
			{"the logged-out IdP session", "sid-1", "alice", logoutAt.Add(-time.Minute).UnixMilli(), true},
			{"another IdP session of the same user", "sid-2", "alice", logoutAt.Add(-time.Minute).UnixMilli(), false},
			{"bob's session from before the logout", "sid-9", "bob", logoutAt.Add(-time.Millisecond).UnixMilli(), true},
			{"bob's login after the logout", "sid-9", "bob", logoutAt.Add(time.Millisecond).UnixMilli(), false},
		}
		for _, tc := range cases {
			if got := r.Revoked(tc.sid, tc.sub, tc.createdMs); got != tc.want {
				t.Errorf("%s: revoked = %v, want %v", tc.name, got, tc.want)
			}
		}
		// Records end when the cookies they refuse would have.
		time.Sleep(time.Hour + time.Second)
		if r.Revoked("sid-1", "bob", logoutAt.Add(-time.Minute).UnixMilli()) {
			t.Error("an expired record still revokes")
		}
	})
}

func TestReplays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewReplays(nil)
		ctx := context.Background()
		if ok, _ := g.FirstUse(ctx, "jti-1", time.Now().Add(time.Minute)); !ok {
			t.Fatal("first use refused")
		}
		if ok, _ := g.FirstUse(ctx, "jti-1", time.Now().Add(time.Minute)); ok {
			t.Fatal("replay accepted")
		}
		if ok, _ := g.FirstUse(ctx, "jti-2", time.Now().Add(time.Minute)); !ok {
			t.Fatal("another jti refused")
		}
	})
}

// Sign-outs are recorded by login id until the cookie would expire, and
// make room when the list is full.
func TestSignedOutLogins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRevocations(nil)
		if r.SignedOut("login-1") || r.SignedOut("") {
			t.Fatal("empty list reports a sign-out")
		}
		r.AddLogin("login-1", time.Now().Add(time.Hour))
		r.AddLogin("", time.Now().Add(time.Hour)) // old cookies have no id: nothing recorded
		if !r.SignedOut("login-1") || r.SignedOut("login-2") || r.SignedOut("") {
			t.Fatal("sign-out of login-1 not recorded exactly")
		}
		if r.Revoked("", "", 0) {
			t.Fatal("a sign-out revoked other sessions")
		}
		time.Sleep(time.Hour)
		if r.SignedOut("login-1") {
			t.Fatal("a record outlived the cookie it refuses")
		}
		for i := range maxEntries {
			r.AddLogin(strconv.Itoa(i), time.Now().Add(-time.Second))
		}
		r.AddLogin("fresh", time.Now().Add(time.Hour))
		if n := len(r.logins); n > 2 {
			t.Fatalf("%d entries kept after expired ones were purged", n)
		}
	})
}
