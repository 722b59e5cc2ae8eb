// Package zitadelsetup sets up a fresh ZITADEL instance for zitadel-ext-authz
// (the `zitadel-bootstrap` subcommand of docker-compose.yml): with the
// first-instance machine user's personal access token it creates, when they
// don't exist yet, a project with roles, a Web OIDC application (code flow,
// Basic auth, dev mode, redirect and post-logout URIs, roles in the ID
// token), an API application for introspection and a human demo user with a
// role grant, and writes a complete server configuration with the client ids
// and secrets filled in. It retries until ZITADEL answers.
//
// It speaks ZITADEL's Management API v1 over REST (JSON over HTTP with
// "Authorization: Bearer <PAT>"), the API every ZITADEL v2–v4 release serves.
package zitadelsetup

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Options says what to create and where to write the result.
type Options struct {
	// Issuer is ZITADEL's external URL (http://localhost:8080): requests go
	// to it with its Host, so ZITADEL finds the instance.
	Issuer string
	// HTTPClient reaches Issuer (dial overrides live in its transport).
	HTTPClient *http.Client
	// PATFile holds the machine user's personal access token; it appears
	// when ZITADEL's first-instance setup finishes.
	PATFile string

	Project string   // project name
	Roles   []string // role keys to create
	AppURL  string   // where users open the app through Envoy (http://localhost:8000)
	// BackchannelLogoutURI, when set, is registered on the Web app so ZITADEL
	// sends back-channel logouts there (…/oauth2/backchannel_logout).
	BackchannelLogoutURI string
	WebApp               string   // name of the Web OIDC application
	APIApp               string   // name of the API application (introspection)
	User                 string   // demo user name; empty skips the user
	Password             string   // demo user's password
	Email                string   // demo user's e-mail (marked verified)
	UserRoles            []string // roles granted to the demo user

	// Template is the server configuration to complete; Out receives it
	// with client_id, client_secret, introspection_client_id,
	// introspection_client_secret and zitadel_project_id set.
	Template string
	Out      string
	// OutOwner, when not nil, is the uid and gid Out is given (the
	// bootstrap runs as root to read ZITADEL's PAT; the server doesn't).
	OutOwner *[2]int

	// Wait bounds how long to retry while ZITADEL is not ready.
	Wait   time.Duration
	Logger *slog.Logger
	// Sleep waits between attempts (tests replace it).
	Sleep func(context.Context, time.Duration) error
}

// Result is what Run created or found.
type Result struct {
	ProjectID       string
	WebClientID     string
	WebClientSecret string
	APIClientID     string
	APIClientSecret string
	UserID          string
	// UserLoginName is what the demo user types at ZITADEL's login: its
	// preferred login name, "alice" under ZITADEL's default domain policy
	// (userLoginMustBeDomain false), "alice@<org domain>" when the policy
	// requires the domain.
	UserLoginName        string
	CreatedProject       bool
	CreatedWebApp        bool
	CreatedAPIApp        bool
	CreatedUser          bool
	RegeneratedWebSecret bool
	RegeneratedAPISecret bool
	GrantedRoles         []string
}

// Run waits for ZITADEL, creates what is missing and writes Out.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	previous, err := readPrevious(o.Out)
	if err != nil {
		return nil, err
	}
	a, err := waitForZitadel(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &Result{}

	if res.ProjectID, res.CreatedProject, err = a.ensureProject(ctx, o.Project); err != nil {
		return nil, err
	}
	if err := a.ensureRoles(ctx, res.ProjectID, o.Roles); err != nil {
		return nil, err
	}
	web, err := a.ensureWebApp(ctx, res.ProjectID, o, previous)
	if err != nil {
		return nil, err
	}
	res.WebClientID, res.WebClientSecret, res.CreatedWebApp, res.RegeneratedWebSecret = web.clientID, web.secret, web.created, web.regenerated
	api, err := a.ensureAPIApp(ctx, res.ProjectID, o.APIApp, previous)
	if err != nil {
		return nil, err
	}
	res.APIClientID, res.APIClientSecret, res.CreatedAPIApp, res.RegeneratedAPISecret = api.clientID, api.secret, api.created, api.regenerated
	if o.User != "" {
		if res.UserID, res.CreatedUser, err = a.ensureUser(ctx, o); err != nil {
			return nil, err
		}
		if res.UserLoginName, err = a.loginName(ctx, res.UserID); err != nil {
			return nil, err
		}
		if res.GrantedRoles, err = a.ensureGrant(ctx, res.UserID, res.ProjectID, o.UserRoles); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(o.Template, o.Out, o.OutOwner, res); err != nil {
		return nil, err
	}
	o.Logger.Info("ZITADEL is set up for zitadel-ext-authz",
		"project_id", res.ProjectID, "web_client_id", res.WebClientID, "api_client_id", res.APIClientID,
		"user_id", res.UserID, "user_login_name", res.UserLoginName, "config", o.Out)
	return res, nil
}

const equals = "TEXT_QUERY_METHOD_EQUALS"

func (a *api) ensureProject(ctx context.Context, name string) (id string, created bool, err error) {
	var list struct {
		Result []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"result"`
	}
	q := map[string]any{"queries": []any{map[string]any{"nameQuery": map[string]any{"name": name, "method": equals}}}}
	if err := a.call(ctx, http.MethodPost, "/projects/_search", q, &list); err != nil {
		return "", false, fmt.Errorf("find project %q: %w", name, err)
	}
	for _, p := range list.Result {
		if p.Name == name {
			return p.ID, false, nil
		}
	}
	var out struct {
		ID string `json:"id"`
	}
	// projectRoleAssertion puts the user's roles of this project into
	// tokens and userinfo without role scopes (zitadel.md §1.3).
	in := map[string]any{"name": name, "projectRoleAssertion": true}
	if err := a.call(ctx, http.MethodPost, "/projects", in, &out); err != nil {
		return "", false, fmt.Errorf("create project %q: %w", name, err)
	}
	return out.ID, true, nil
}

func (a *api) ensureRoles(ctx context.Context, projectID string, roles []string) error {
	var list struct {
		Result []struct {
			Key string `json:"key"`
		} `json:"result"`
	}
	if err := a.call(ctx, http.MethodPost, "/projects/"+projectID+"/roles/_search", map[string]any{}, &list); err != nil {
		return fmt.Errorf("list roles: %w", err)
	}
	existing := map[string]bool{}
	for _, r := range list.Result {
		existing[r.Key] = true
	}
	for _, role := range roles {
		if existing[role] {
			continue
		}
		in := map[string]any{"roleKey": role, "displayName": role}
		if err := a.call(ctx, http.MethodPost, "/projects/"+projectID+"/roles", in, nil); err != nil {
			return fmt.Errorf("create role %q: %w", role, err)
		}
	}
	return nil
}

type app struct {
	clientID, secret     string
	created, regenerated bool
}

// appKind is the difference between the Web (OIDC) and the API application.
type appKind struct {
	path           string // apps/<path> creates, <path>_config/_generate_client_secret renews
	idKey, secKey  string // where an earlier run's output keeps the client id and secret
	clientIDOf     func(*appListItem) string
	describeCreate string
}

type appListItem struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	OIDCConfig *struct {
		ClientID string `json:"clientId"`
	} `json:"oidcConfig"`
	APIConfig *struct {
		ClientID string `json:"clientId"`
	} `json:"apiConfig"`
}

var (
	webApp = appKind{path: "oidc", idKey: "client_id", secKey: "client_secret", describeCreate: "OIDC application",
		clientIDOf: func(x *appListItem) string {
			if x.OIDCConfig == nil {
				return ""
			}
			return x.OIDCConfig.ClientID
		}}
	apiApp = appKind{path: "api", idKey: "introspection_client_id", secKey: "introspection_client_secret", describeCreate: "API application",
		clientIDOf: func(x *appListItem) string {
			if x.APIConfig == nil {
				return ""
			}
			return x.APIConfig.ClientID
		}}
)

// ensureApp finds the application called name or creates it with body. An
// existing app's secret can't be read back: the one an earlier run wrote
// is kept, or a new one is generated.
func (a *api) ensureApp(ctx context.Context, projectID, name string, kind appKind, body map[string]any, previous map[string]any) (app, error) {
	var list struct {
		Result []appListItem `json:"result"`
	}
	if err := a.call(ctx, http.MethodPost, "/projects/"+projectID+"/apps/_search", map[string]any{}, &list); err != nil {
		return app{}, fmt.Errorf("list applications: %w", err)
	}
	for i := range list.Result {
		x := &list.Result[i]
		clientID := kind.clientIDOf(x)
		if x.Name != name || clientID == "" {
			continue
		}
		if s, _ := previous[kind.secKey].(string); s != "" && previous[kind.idKey] == clientID {
			return app{clientID: clientID, secret: s}, nil
		}
		var out struct {
			ClientSecret string `json:"clientSecret"`
		}
		if err := a.call(ctx, http.MethodPost, "/projects/"+projectID+"/apps/"+x.ID+"/"+kind.path+"_config/_generate_client_secret", map[string]any{}, &out); err != nil {
			return app{}, fmt.Errorf("new secret for %q: %w", name, err)
		}
		return app{clientID: clientID, secret: out.ClientSecret, regenerated: true}, nil
	}
	var out struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	if err := a.call(ctx, http.MethodPost, "/projects/"+projectID+"/apps/"+kind.path, body, &out); err != nil {
		return app{}, fmt.Errorf("create %s %q: %w", kind.describeCreate, name, err)
	}
	return app{clientID: out.ClientID, secret: out.ClientSecret, created: true}, nil
}

func (a *api) ensureWebApp(ctx context.Context, projectID string, o Options, previous map[string]any) (app, error) {
	appURL := strings.TrimSuffix(o.AppURL, "/")
	body := map[string]any{
		"name":                     o.WebApp,
		"redirectUris":             []string{appURL + "/oauth2/callback"},
		"postLogoutRedirectUris":   []string{appURL + "/"},
		"responseTypes":            []string{"OIDC_RESPONSE_TYPE_CODE"},
		"grantTypes":               []string{"OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"},
		"appType":                  "OIDC_APP_TYPE_WEB",
		"authMethodType":           "OIDC_AUTH_METHOD_TYPE_BASIC",
		"version":                  "OIDC_VERSION_1_0",
		"devMode":                  strings.HasPrefix(appURL, "http://"),
		"accessTokenType":          "OIDC_TOKEN_TYPE_BEARER",
		"accessTokenRoleAssertion": true,
		"idTokenRoleAssertion":     true,
		"idTokenUserinfoAssertion": true,
	}
	if o.BackchannelLogoutURI != "" {
		body["backChannelLogoutUri"] = o.BackchannelLogoutURI
	}
	return a.ensureApp(ctx, projectID, o.WebApp, webApp, body, previous)
}

func (a *api) ensureAPIApp(ctx context.Context, projectID, name string, previous map[string]any) (app, error) {
	body := map[string]any{"name": name, "authMethodType": "API_AUTH_METHOD_TYPE_BASIC"}
	return a.ensureApp(ctx, projectID, name, apiApp, body, previous)
}

func (a *api) ensureUser(ctx context.Context, o Options) (id string, created bool, err error) {
	var list struct {
		Result []struct {
			ID       string `json:"id"`
			UserName string `json:"userName"`
		} `json:"result"`
	}
	q := map[string]any{"queries": []any{map[string]any{"userNameQuery": map[string]any{"userName": o.User, "method": equals}}}}
	if err := a.call(ctx, http.MethodPost, "/users/_search", q, &list); err != nil {
		return "", false, fmt.Errorf("find user %q: %w", o.User, err)
	}
	for _, u := range list.Result {
		if u.UserName == o.User {
			return u.ID, false, nil
		}
	}
	in := map[string]any{
		"userName":               o.User,
		"profile":                map[string]any{"firstName": o.User, "lastName": "Demo"},
		"email":                  map[string]any{"email": o.Email, "isEmailVerified": true},
		"password":               o.Password,
		"passwordChangeRequired": false,
	}
	var out struct {
		UserID string `json:"userId"`
	}
	if err := a.call(ctx, http.MethodPost, "/users/human/_import", in, &out); err != nil {
		return "", false, fmt.Errorf("create user %q: %w", o.User, err)
	}
	return out.UserID, true, nil
}

// loginName is the user's preferred login name (GetUserByID: GET
// /users/{id} → user.preferredLoginName).
func (a *api) loginName(ctx context.Context, userID string) (string, error) {
	var out struct {
		User struct {
			UserName           string `json:"userName"`
			PreferredLoginName string `json:"preferredLoginName"`
		} `json:"user"`
	}
	if err := a.call(ctx, http.MethodGet, "/users/"+url.PathEscape(userID), nil, &out); err != nil {
		return "", fmt.Errorf("read user %s's login name: %w", userID, err)
	}
	if out.User.PreferredLoginName == "" {
		return out.User.UserName, nil
	}
	return out.User.PreferredLoginName, nil
}

func (a *api) ensureGrant(ctx context.Context, userID, projectID string, roles []string) ([]string, error) {
	var list struct {
		Result []struct {
			ID       string   `json:"id"`
			RoleKeys []string `json:"roleKeys"`
		} `json:"result"`
	}
	q := map[string]any{"queries": []any{
		map[string]any{"userIdQuery": map[string]any{"userId": userID}},
		map[string]any{"projectIdQuery": map[string]any{"projectId": projectID}},
	}}
	if err := a.call(ctx, http.MethodPost, "/users/grants/_search", q, &list); err != nil {
		return nil, fmt.Errorf("find the user's grants: %w", err)
	}
	if len(list.Result) > 0 {
		g := list.Result[0]
		missing := slices.ContainsFunc(roles, func(r string) bool { return !slices.Contains(g.RoleKeys, r) })
		if !missing {
			return nil, nil
		}
		merged := slices.Clone(g.RoleKeys)
		for _, r := range roles {
			if !slices.Contains(merged, r) {
				merged = append(merged, r)
			}
		}
		if err := a.call(ctx, http.MethodPut, "/users/"+userID+"/grants/"+g.ID, map[string]any{"roleKeys": merged}, nil); err != nil {
			return nil, fmt.Errorf("update the user's grant: %w", err)
		}
		return merged, nil
	}
	in := map[string]any{"projectId": projectID, "roleKeys": roles}
	if err := a.call(ctx, http.MethodPost, "/users/"+userID+"/grants", in, nil); err != nil {
		return nil, fmt.Errorf("grant roles: %w", err)
	}
	return roles, nil
}
