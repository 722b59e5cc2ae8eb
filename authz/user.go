package authz

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// user is the one shape of a signed-in user or an API caller: made from
// verified claims (fromClaims: a login, a refresh, a bearer token) or from
// a stored session (fromSession), and read by everything downstream: the
// policy (policy.go, route.go), the upstream headers (identity.go), the
// dynamic metadata (metadata.go), /oauth2/userinfo, the pages and the
// logs. A claim the upstream should see is added here, once.
type user struct {
	sub             string
	name            string // the user header's value: the configured user claim
	email           string
	emailVerified   bool
	emailUnverified bool // the IdP said email_verified false (a login or a bearer token)
	username        string
	groups          []string // group names and role keys
	roleGrants      []string // ZITADEL "role@orgId"
	roleOrg         string   // ZITADEL: the organization that granted every role (roleGrants empty)
	orgID           string
	orgDomain       string
	authTime        time.Time
	amr             []string
	// claimValues are the claim_headers values, by claim path (oidcflow
	// made them header-safe); shared read-only with the session they came
	// from or were stored in.
	claimValues map[string]string
}

// fromClaims is the user of verified claims (oidcflow cleaned them).
func fromClaims(id oidcflow.Identity) user {
	return user{sub: id.Subject, name: id.User, email: id.Email, emailVerified: id.EmailVerified, emailUnverified: id.EmailUnverified,
		username: id.PreferredUsername, groups: id.Groups, roleGrants: id.RoleGrants, orgID: id.OrgID, orgDomain: id.OrgDomain,
		authTime: id.AuthTime, amr: id.AMR, claimValues: id.ClaimValues}
}

// fromSession is the user a stored session holds.
func fromSession(s *sessionpb.Session) user {
	u := user{sub: s.GetSubject(), name: s.GetUser(), email: s.GetEmail(), emailVerified: s.GetEmailVerified(),
		username: s.GetPreferredUsername(), groups: s.GetGroups(), roleGrants: s.GetRoleGrants(), roleOrg: s.GetRoleOrg(),
		orgID: s.GetOrgId(), orgDomain: s.GetOrgDomain(), amr: s.GetAmr(), claimValues: s.GetClaimValues()}
	u.authTime = unixTime(s.GetAuthTime())
	return u
}

// writeTo stores u in sess (the inverse of fromSession). Role grants are
// kept small: when one organization granted every role (the usual case)
// only its id is kept; the roles are the groups already.
func (u user) writeTo(sess *sessionpb.Session) {
	sess.Subject, sess.User, sess.Email, sess.EmailVerified = u.sub, u.name, u.email, u.emailVerified
	sess.PreferredUsername, sess.Groups = u.username, u.groups
	sess.RoleGrants, sess.RoleOrg = u.roleGrants, u.roleOrg
	if u.roleOrg == "" {
		sess.RoleGrants, sess.RoleOrg = compactGrants(u.roleGrants)
	}
	sess.OrgId, sess.OrgDomain, sess.Amr = u.orgID, u.orgDomain, u.amr
	sess.ClaimValues = u.claimValues
	sess.AuthTime = 0
	if !u.authTime.IsZero() {
		sess.AuthTime = u.authTime.Unix()
	}
}

// refreshed is u as a refresh's new claims (next) say: roles, names, the
// claim_headers values and the organization may change; how and when the
// user signed in does not (a refresh is no sign-in), and an ID token
// without the organization, the e-mail or the names keeps the ones u has.
func (u user) refreshed(next user) user {
	next.authTime, next.amr = u.authTime, u.amr
	// A refreshed ID token may leave out what the login got from
	// userinfo (ZITADEL's profile claims, by default): keep the e-mail
	// and names the session has, which email_domains and the identity
	// headers read, rather than lose them; a token that carries them
	// updates them. (No userinfo call here: it would widen the window in
	// which the rotated refresh token is spent but not yet stored.)
	if next.email == "" {
		next.email, next.emailVerified, next.emailUnverified = u.email, u.emailVerified, u.emailUnverified
	}
	if next.username == "" {
		next.username = u.username
	}
	if next.name == "" {
		next.name = u.name
	}
	if next.orgID == "" {
		next.orgID, next.orgDomain = u.orgID, u.orgDomain
	}
	return next
}

// compactGrants: the organization that granted every role in grants, or
// grants themselves when several did.
func compactGrants(grants []string) ([]string, string) {
	org := ""
	for _, g := range grants {
		_, o, _ := strings.Cut(g, "@")
		if org != "" && o != org {
			return grants, ""
		}
		org = o
	}
	return nil, org
}

// displayName is how a page names the user: the first of their names
// that is set.
func (u user) displayName() string {
	for _, n := range []string{u.username, u.email, u.name} {
		if n != "" {
			return n
		}
	}
	return ""
}

// userinfoJSON is /oauth2/userinfo's body (CONTRACT.md §3).
func (u user) userinfoJSON() string {
	groups := u.groups
	if groups == nil {
		groups = []string{}
	}
	body, _ := json.Marshal(struct {
		User              string   `json:"user"`
		Email             string   `json:"email"`
		Groups            []string `json:"groups"`
		PreferredUsername string   `json:"preferred_username"`
	}{u.name, u.email, groups, u.username})
	return string(body)
}
