package authz

import (
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	s, jar := newTestServer(t, Config{SkipProviderButton: true}, &stubIdP{}, nil)

	// Many long groups: the groups header stays bounded and ends at a
	// whole group.
	sess := alice()
	for i := range 500 {
		sess.Groups = append(sess.Groups, "group-"+strings.Repeat("g", 40)+string(rune('a'+i%26)))
	}
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"cookie": sessionCookie(t, jar, sess)}))
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("session with 500 groups: %v %v", resp.GetStatus(), err)
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() != "x-forwarded-groups" {
			continue
		}
		v := h.GetHeader().GetValue()
		if len(v) > maxGroupsHeaderBytes || len(v) < maxGroupsHeaderBytes/2 {
			t.Errorf("groups header of %d bytes", len(v))
		}
		last := v[strings.LastIndexByte(v, ',')+1:]
		if len(last) != len("group-")+40+1 {
			t.Errorf("groups header ends mid-group: %q", last)
		}
	}

	// An oversized Cookie header is not parsed at all: no session.
	huge := sessionCookie(t, jar, alice()) + "; pad=" + strings.Repeat("x", maxCookieHeaderBytes)
	resp, _ = s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"cookie": huge}))
	if resp.GetStatus().GetCode() == 0 {
		t.Error("a Cookie header over the limit was parsed")
	}

}
