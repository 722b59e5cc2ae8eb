package authz

import (
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// ZITADEL organizations and roles per organization, and the sign-in a
// route asks for.
func TestOrganizationsRolesAndStepUp(t *testing.T) {
	s, _ := newTestServer(t, Config{AllowedGroups: []string{"admin@org-a", "auditor"}, OrganizationID: "org-a", EmailDomains: []string{"*"}}, &stubIdP{}, nil)
	alice := user{email: "a@x", emailVerified: true, groups: []string{"admin"}, roleGrants: []string{"admin@org-a"}, orgID: "org-a"}
	for _, tc := range []struct {
		name string
		u    user
		want Reason
	}{
		{"role granted by the org", alice, ""},
		{"the role, granted by another org", user{email: "a@x", emailVerified: true, groups: []string{"admin"}, roleGrants: []string{"admin@org-b"}, orgID: "org-a"}, ReasonNotInGroup},
		{"a plain group entry", user{email: "a@x", emailVerified: true, groups: []string{"auditor"}, orgID: "org-a"}, ""},
		{"another organization", user{email: "a@x", emailVerified: true, groups: []string{"auditor"}, orgID: "org-b"}, ReasonWrongOrg},
		{"no organization claim", user{email: "a@x", emailVerified: true, groups: []string{"auditor"}}, ReasonWrongOrg},
	} {
		if got := s.authorize(tc.u); got != tc.want {
			t.Errorf("%s: authorize = %q, want %q", tc.name, got, tc.want)
		}
	}

	ext := map[string]string{extOrgs: "org-b, org-c", extMaxAge: "300", extAMR: "mfa,otp"}
	if p := CheckRouteKeys(ext, nil); p != nil {
		t.Fatalf("route policy refused: %v", p)
	}
	rp := parseRoutePolicy(ext)
	if got := rp.check(alice, nil); got != "route_wrong_organization" {
		t.Errorf("allowed_organizations: %q", got)
	}
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		authTime time.Time
		amr      []string
		want     string
	}{
		{now.Add(-time.Minute), []string{"pwd", "mfa"}, ""},
		{now.Add(-time.Hour), []string{"pwd", "mfa"}, "max_age"},
		{time.Time{}, []string{"pwd", "mfa"}, "max_age"}, // no auth_time: not known to be fresh
		{now.Add(-time.Minute), []string{"pwd"}, "amr"},
		{now.Add(-time.Minute), nil, "amr"},
	} {
		if got := rp.stepUp(user{authTime: tc.authTime, amr: tc.amr}, now); got != tc.want {
			t.Errorf("stepUp(auth %v ago, amr %v) = %q, want %q", now.Sub(tc.authTime), tc.amr, got, tc.want)
		}
	}
	for _, bad := range []string{"-1", "5m", "soon"} {
		if p := CheckRouteKeys(map[string]string{extMaxAge: bad}, nil); len(p) != 1 || p[0].Key != extMaxAge {
			t.Errorf("max_age %q accepted (%v): a typo must not open the route", bad, p)
		}
	}
	d := s.insufficientAuthentication("max_age", rp)
	if d.Status != 401 || d.Headers[0].Value != `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="300"` {
		t.Errorf("RFC 9470 challenge: %+v", d)
	}
}

// Sessions keep role grants small: one granting organization is one field.
func TestCompactRoleGrants(t *testing.T) {
	grants, org := compactGrants([]string{"admin@o1", "reader@o1"})
	if grants != nil || org != "o1" {
		t.Fatalf("one org: %v %q", grants, org)
	}
	u := user{groups: []string{"admin", "reader"}, roleOrg: org}
	if !u.inAnyGroup([]string{"reader@o1"}) || u.inAnyGroup([]string{"reader@o2"}) {
		t.Error("role@org against a compact grant")
	}
	grants, org = compactGrants([]string{"admin@o1", "reader@o2"})
	if len(grants) != 2 || org != "" {
		t.Fatalf("two orgs: %v %q", grants, org)
	}
}

// A refresh is due refresh_before_expiry ahead, but at most a third of the
// token's lifetime ahead: a 60 s token with the default 1m is not
// refreshed on every request.
func TestRefreshAheadIsAThirdOfShortLifetimes(t *testing.T) {
	s, _ := newTestServer(t, Config{RefreshBeforeExpiry: time.Minute}, &stubIdP{}, nil)
	now := time.Unix(1_800_000_000, 0)
	short := &sessionpb.Session{RefreshToken: "rt", CreatedAt: now.Unix(), AccessTokenExpiresAt: now.Add(60 * time.Second).Unix()}
	if s.refreshDue(short, now.Add(10*time.Second)) {
		t.Error("a 60 s token refreshed 50 s before its expiry (a refresh on every request)")
	}
	if !s.refreshDue(short, now.Add(41*time.Second)) {
		t.Error("a 60 s token not refreshed in its last third")
	}
	long := &sessionpb.Session{RefreshToken: "rt", CreatedAt: now.Unix(), AccessTokenExpiresAt: now.Add(time.Hour).Unix()}
	if !s.refreshDue(long, now.Add(59*time.Minute+30*time.Second)) || s.refreshDue(long, now.Add(50*time.Minute)) {
		t.Error("an hour-long token: due 1m ahead, not 10m ahead")
	}
}
