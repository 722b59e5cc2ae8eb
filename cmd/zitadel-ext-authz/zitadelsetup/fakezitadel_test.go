package zitadelsetup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeZitadel serves the Management API v1 endpoints the bootstrap calls,
// checking what a real ZITADEL checks that a mistake on our side would
// trip: method, path, "Authorization: Bearer <PAT>", JSON content type and
// the request's JSON field names (decoded with unknown fields refused, into
// structs that follow the documented request bodies cited per endpoint).
// Responses use the documented field names too.
//
// Docs: https://zitadel.com/docs/reference/api/management/zitadel.management.v1.ManagementService.<Method>
// (Method named per route below). REST paths are relative to /management/v1.
type fakeZitadel struct {
	t        *testing.T
	pat      string
	notReady int // answer 503 this many times first (ZITADEL starting)
	// loginMustBeDomain is the domain policy's userLoginMustBeDomain:
	// false in ZITADEL v4's default instance, so a user's login name is its
	// userName; true suffixes the organization's primary domain.
	loginMustBeDomain bool

	mu       sync.Mutex
	calls    []string
	nextID   int
	projects map[string]*fakeProject // by id
	users    map[string]string       // userName → id
	grants   map[string]*fakeGrant   // id → grant
}

type fakeProject struct {
	name          string
	roleAssertion bool
	roles         []string
	apps          []*fakeApp
}

type fakeApp struct {
	id, name, clientID, secret string
	oidc                       *addOIDCAppRequest
	api                        bool
}

type fakeGrant struct {
	id, userID, projectID string
	roles                 []string
}

// orgDomain is the first organization's primary domain: its name
// lower-cased, dots for spaces, under the instance's external domain.
const orgDomain = "zitadel.localhost"

// user is a User as ListUsers and GetUserByID return it.
func (f *fakeZitadel) user(id, name string) map[string]any {
	login := name
	if f.loginMustBeDomain {
		login = name + "@" + orgDomain
	}
	return map[string]any{"id": id, "userName": name, "state": "USER_STATE_ACTIVE", "loginNames": []string{login}, "preferredLoginName": login}
}

func newFakeZitadel(t *testing.T, pat string) *fakeZitadel {
	return &fakeZitadel{t: t, pat: pat, projects: map[string]*fakeProject{}, users: map[string]string{}, grants: map[string]*fakeGrant{}}
}

// Request bodies as documented (field names in the JSON/REST mapping).
type textQuery struct {
	Name   string `json:"name,omitempty"`
	Method string `json:"method"`
}

// ListProjects: POST /projects/_search {query?, queries?: [{nameQuery: {name, method}} | …]}
type listProjectsRequest struct {
	Query   json.RawMessage `json:"query,omitempty"`
	Queries []struct {
		NameQuery *textQuery `json:"nameQuery,omitempty"`
	} `json:"queries,omitempty"`
}

// AddProject: POST /projects {name, projectRoleAssertion?, projectRoleCheck?, hasProjectCheck?, privateLabelingSetting?}
type addProjectRequest struct {
	Name                   string `json:"name"`
	ProjectRoleAssertion   bool   `json:"projectRoleAssertion,omitempty"`
	ProjectRoleCheck       bool   `json:"projectRoleCheck,omitempty"`
	HasProjectCheck        bool   `json:"hasProjectCheck,omitempty"`
	PrivateLabelingSetting string `json:"privateLabelingSetting,omitempty"`
}

// ListProjectRoles: POST /projects/{projectId}/roles/_search {query?, queries?}
// ListApps: POST /projects/{projectId}/apps/_search {query?, queries?}
type listRequest struct {
	Query   json.RawMessage `json:"query,omitempty"`
	Queries json.RawMessage `json:"queries,omitempty"`
}

// AddProjectRole: POST /projects/{projectId}/roles {roleKey, displayName?, group?}
type addProjectRoleRequest struct {
	RoleKey     string `json:"roleKey"`
	DisplayName string `json:"displayName,omitempty"`
	Group       string `json:"group,omitempty"`
}

// AddOIDCApp: POST /projects/{projectId}/apps/oidc
type addOIDCAppRequest struct {
	Name                     string   `json:"name"`
	RedirectURIs             []string `json:"redirectUris"`
	ResponseTypes            []string `json:"responseTypes"`
	GrantTypes               []string `json:"grantTypes"`
	AppType                  string   `json:"appType"`
	AuthMethodType           string   `json:"authMethodType"`
	PostLogoutRedirectURIs   []string `json:"postLogoutRedirectUris"`
	Version                  string   `json:"version"`
	DevMode                  bool     `json:"devMode"`
	AccessTokenType          string   `json:"accessTokenType"`
	AccessTokenRoleAssertion bool     `json:"accessTokenRoleAssertion"`
	IDTokenRoleAssertion     bool     `json:"idTokenRoleAssertion"`
	IDTokenUserinfoAssertion bool     `json:"idTokenUserinfoAssertion"`
	ClockSkew                string   `json:"clockSkew,omitempty"`
	AdditionalOrigins        []string `json:"additionalOrigins,omitempty"`
	SkipNativeAppSuccessPage bool     `json:"skipNativeAppSuccessPage,omitempty"`
	BackChannelLogoutURI     string   `json:"backChannelLogoutUri,omitempty"`
	LoginVersion             any      `json:"loginVersion,omitempty"`
}

// AddAPIApp: POST /projects/{projectId}/apps/api {name, authMethodType}
type addAPIAppRequest struct {
	Name           string `json:"name"`
	AuthMethodType string `json:"authMethodType"`
}

// ListUsers: POST /users/_search {query?, sortingColumn?, queries?: [{userNameQuery: {userName, method}} | …]}
type listUsersRequest struct {
	Query         json.RawMessage `json:"query,omitempty"`
	SortingColumn string          `json:"sortingColumn,omitempty"`
	Queries       []struct {
		UserNameQuery *struct {
			UserName string `json:"userName"`
			Method   string `json:"method"`
		} `json:"userNameQuery,omitempty"`
	} `json:"queries,omitempty"`
}

// ImportHumanUser: POST /users/human/_import
type importHumanUserRequest struct {
	UserName string `json:"userName"`
	Profile  struct {
		FirstName         string `json:"firstName"`
		LastName          string `json:"lastName"`
		NickName          string `json:"nickName,omitempty"`
		DisplayName       string `json:"displayName,omitempty"`
		PreferredLanguage string `json:"preferredLanguage,omitempty"`
		Gender            string `json:"gender,omitempty"`
	} `json:"profile"`
	Email struct {
		Email           string `json:"email"`
		IsEmailVerified bool   `json:"isEmailVerified"`
	} `json:"email"`
	Password               string `json:"password,omitempty"`
	PasswordChangeRequired bool   `json:"passwordChangeRequired"`
}

// ListUserGrants: POST /users/grants/_search {query?, queries?: [{userIdQuery: {userId}} | {projectIdQuery: {projectId}} | …]}
type listUserGrantsRequest struct {
	Query   json.RawMessage `json:"query,omitempty"`
	Queries []struct {
		UserIDQuery *struct {
			UserID string `json:"userId"`
		} `json:"userIdQuery,omitempty"`
		ProjectIDQuery *struct {
			ProjectID string `json:"projectId"`
		} `json:"projectIdQuery,omitempty"`
	} `json:"queries,omitempty"`
}

// AddUserGrant: POST /users/{userId}/grants {projectId, projectGrantId?, roleKeys?}
// UpdateUserGrant: PUT /users/{userId}/grants/{grantId} {roleKeys}
type userGrantRequest struct {
	ProjectID      string   `json:"projectId,omitempty"`
	ProjectGrantID string   `json:"projectGrantId,omitempty"`
	RoleKeys       []string `json:"roleKeys"`
}

// RegenerateOIDCClientSecret: POST /projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret {}
// RegenerateAPIClientSecret: POST /projects/{projectId}/apps/{appId}/api_config/_generate_client_secret {}
type emptyRequest struct{}

var (
	reRoles     = regexp.MustCompile(`^/management/v1/projects/(\d+)/roles(/_search)?$`)
	reApps      = regexp.MustCompile(`^/management/v1/projects/(\d+)/apps/(_search|oidc|api)$`)
	reAppSecret = regexp.MustCompile(`^/management/v1/projects/(\d+)/apps/(\d+)/(oidc|api)_config/_generate_client_secret$`)
	reGrants    = regexp.MustCompile(`^/management/v1/users/(\d+)/grants(?:/(\d+))?$`)
)

func (f *fakeZitadel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if f.notReady > 0 {
		f.notReady--
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.pat {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 16, "message": "Errors.Token.Invalid (AUTH-7fs1e)"})
		return
	}
	if r.Host != "localhost:8080" {
		// ZITADEL picks the instance by Host (zitadel.md §1.1).
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 5, "message": "Instance not found (QUERY-n0wng)"})
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "content type", http.StatusUnsupportedMediaType)
			return
		}
	}
	p := r.URL.Path
	switch {
	// GetMyOrg: GET /orgs/me → {org: {id, name, …}}
	case r.Method == http.MethodGet && p == "/management/v1/orgs/me":
		writeJSON(w, 200, map[string]any{"org": map[string]any{"id": "1", "name": "ZITADEL"}})

	case r.Method == http.MethodPost && p == "/management/v1/projects/_search":
		var in listProjectsRequest
		if !f.decode(w, r, &in) {
			return
		}
		var out []any
		for id, pr := range f.projects {
			match := true
			for _, q := range in.Queries {
				if q.NameQuery != nil && (q.NameQuery.Method != "TEXT_QUERY_METHOD_EQUALS" || q.NameQuery.Name != pr.name) {
					match = false
				}
			}
			if match {
				out = append(out, map[string]any{"id": id, "name": pr.name, "projectRoleAssertion": pr.roleAssertion})
			}
		}
		writeJSON(w, 200, map[string]any{"details": map[string]any{"totalResult": strconv.Itoa(len(out))}, "result": out})

	case r.Method == http.MethodPost && p == "/management/v1/projects":
		var in addProjectRequest
		if !f.decode(w, r, &in) {
			return
		}
		if in.Name == "" {
			f.badRequest(w, "name is required")
			return
		}
		id := f.id()
		f.projects[id] = &fakeProject{name: in.Name, roleAssertion: in.ProjectRoleAssertion}
		writeJSON(w, 200, map[string]any{"id": id, "details": map[string]any{}})

	case r.Method == http.MethodPost && reRoles.MatchString(p):
		m := reRoles.FindStringSubmatch(p)
		pr := f.projects[m[1]]
		if pr == nil {
			f.notFound(w)
			return
		}
		if m[2] == "/_search" {
			var in listRequest
			if !f.decode(w, r, &in) {
				return
			}
			var out []any
			for _, k := range pr.roles {
				out = append(out, map[string]any{"key": k, "displayName": k})
			}
			writeJSON(w, 200, map[string]any{"result": out})
			return
		}
		var in addProjectRoleRequest
		if !f.decode(w, r, &in) {
			return
		}
		for _, k := range pr.roles {
			if k == in.RoleKey {
				writeJSON(w, http.StatusConflict, map[string]any{"code": 6, "message": "Errors.Project.Role.AlreadyExists"})
				return
			}
		}
		pr.roles = append(pr.roles, in.RoleKey)
		writeJSON(w, 200, map[string]any{"details": map[string]any{}})

	case r.Method == http.MethodPost && reApps.MatchString(p):
		m := reApps.FindStringSubmatch(p)
		pr := f.projects[m[1]]
		if pr == nil {
			f.notFound(w)
			return
		}
		switch m[2] {
		case "_search":
			var in listRequest
			if !f.decode(w, r, &in) {
				return
			}
			var out []any
			for _, a := range pr.apps {
				item := map[string]any{"id": a.id, "name": a.name, "state": "APP_STATE_ACTIVE"}
				if a.api {
					item["apiConfig"] = map[string]any{"clientId": a.clientID, "authMethodType": "API_AUTH_METHOD_TYPE_BASIC"}
				} else {
					item["oidcConfig"] = map[string]any{"clientId": a.clientID, "redirectUris": a.oidc.RedirectURIs}
				}
				out = append(out, item)
			}
			writeJSON(w, 200, map[string]any{"result": out})
		case "oidc":
			var in addOIDCAppRequest
			if !f.decode(w, r, &in) {
				return
			}
			a := &fakeApp{id: f.id(), name: in.Name, oidc: &in, secret: "web-secret-" + f.id()}
			a.clientID = a.id + "@zitadel"
			pr.apps = append(pr.apps, a)
			writeJSON(w, 200, map[string]any{"appId": a.id, "clientId": a.clientID, "clientSecret": a.secret, "noneCompliant": false})
		case "api":
			var in addAPIAppRequest
			if !f.decode(w, r, &in) {
				return
			}
			a := &fakeApp{id: f.id(), name: in.Name, api: true, secret: "api-secret-" + f.id()}
			a.clientID = a.id + "@zitadel"
			pr.apps = append(pr.apps, a)
			writeJSON(w, 200, map[string]any{"appId": a.id, "clientId": a.clientID, "clientSecret": a.secret})
		}

	case r.Method == http.MethodPost && reAppSecret.MatchString(p):
		m := reAppSecret.FindStringSubmatch(p)
		var in emptyRequest
		if !f.decode(w, r, &in) {
			return
		}
		for _, a := range f.projects[m[1]].apps {
			if a.id == m[2] && a.api == (m[3] == "api") {
				a.secret = "regenerated-" + f.id()
				writeJSON(w, 200, map[string]any{"clientSecret": a.secret})
				return
			}
		}
		f.notFound(w)

	case r.Method == http.MethodPost && p == "/management/v1/users/_search":
		var in listUsersRequest
		if !f.decode(w, r, &in) {
			return
		}
		var out []any
		for name, id := range f.users {
			match := true
			for _, q := range in.Queries {
				if q.UserNameQuery != nil && (q.UserNameQuery.Method != "TEXT_QUERY_METHOD_EQUALS" || q.UserNameQuery.UserName != name) {
					match = false
				}
			}
			if match {
				out = append(out, f.user(id, name))
			}
		}
		writeJSON(w, 200, map[string]any{"result": out})

	// GetUserByID: GET /users/{id} → {user: {id, state, userName, loginNames, preferredLoginName, human}}
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/management/v1/users/") && !strings.Contains(strings.TrimPrefix(p, "/management/v1/users/"), "/"):
		id := strings.TrimPrefix(p, "/management/v1/users/")
		for name, uid := range f.users {
			if uid == id {
				writeJSON(w, 200, map[string]any{"user": f.user(id, name)})
				return
			}
		}
		f.notFound(w)

	case r.Method == http.MethodPost && p == "/management/v1/users/human/_import":
		var in importHumanUserRequest
		if !f.decode(w, r, &in) {
			return
		}
		if in.UserName == "" || in.Profile.FirstName == "" || in.Profile.LastName == "" || in.Email.Email == "" {
			f.badRequest(w, "userName, profile.firstName, profile.lastName and email.email are required")
			return
		}
		id := f.id()
		f.users[in.UserName] = id
		writeJSON(w, 200, map[string]any{"userId": id})

	case r.Method == http.MethodPost && p == "/management/v1/users/grants/_search":
		var in listUserGrantsRequest
		if !f.decode(w, r, &in) {
			return
		}
		var out []any
		for _, g := range f.grants {
			match := true
			for _, q := range in.Queries {
				if q.UserIDQuery != nil && q.UserIDQuery.UserID != g.userID || q.ProjectIDQuery != nil && q.ProjectIDQuery.ProjectID != g.projectID {
					match = false
				}
			}
			if match {
				out = append(out, map[string]any{"id": g.id, "userId": g.userID, "projectId": g.projectID, "roleKeys": g.roles})
			}
		}
		writeJSON(w, 200, map[string]any{"result": out})

	case (r.Method == http.MethodPost || r.Method == http.MethodPut) && reGrants.MatchString(p):
		m := reGrants.FindStringSubmatch(p)
		var in userGrantRequest
		if !f.decode(w, r, &in) {
			return
		}
		if r.Method == http.MethodPut {
			g := f.grants[m[2]]
			if g == nil {
				f.notFound(w)
				return
			}
			g.roles = in.RoleKeys
			writeJSON(w, 200, map[string]any{"details": map[string]any{}})
			return
		}
		if m[2] != "" || in.ProjectID == "" {
			f.badRequest(w, "projectId is required")
			return
		}
		g := &fakeGrant{id: f.id(), userID: m[1], projectID: in.ProjectID, roles: in.RoleKeys}
		f.grants[g.id] = g
		writeJSON(w, 200, map[string]any{"userGrantId": g.id})

	default:
		f.t.Errorf("fake ZITADEL: unexpected %s %s", r.Method, p)
		f.notFound(w)
	}
}

func (f *fakeZitadel) id() string {
	f.nextID++
	return fmt.Sprint(300000000000000000 + f.nextID)
}

func (f *fakeZitadel) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.t.Errorf("fake ZITADEL: %s %s: body %s: %v", r.Method, r.URL.Path, buf.String(), err)
		f.badRequest(w, err.Error())
		return false
	}
	return true
}

func (f *fakeZitadel) badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"code": 3, "message": msg})
}

func (f *fakeZitadel) notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"code": 5, "message": "not found"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeZitadel) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}
