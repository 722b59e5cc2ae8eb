package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Project and organisations, shaped like ZITADEL ids: the project and most
// users belong to OrgID; OtherOrgID is a second organization with users of
// its own (ZITADEL's multi-tenancy).
const (
	ProjectID      = "290675836227035459"
	OrgID          = "290675720883546947"
	OrgDomain      = "acme.localhost"
	OtherOrgID     = "290675720883599999"
	OtherOrgDomain = "other.localhost"
)

// User is a person who can log in with Username and Password.
type User struct {
	ID       string
	Username string
	Password string
	Email    string
	Name     string
	Roles    []string // ZITADEL project role keys, granted by the user's organization
	// OrgID is the user's organization (default OrgID); OrgDomain its
	// primary domain (default OrgDomain, or OtherOrgDomain for OtherOrgID).
	OrgID, OrgDomain string
	// MFA: the user signs in with a second factor (amr pwd, mfa, otp);
	// otherwise with a password only (amr pwd).
	MFA bool
	// Claims are more claims of the user (a list, an object, a ZITADEL
	// metadata-like name), in ID tokens, userinfo, introspection answers
	// and JWT access tokens alike.
	Claims map[string]any
}

// org is the user's organization id and primary domain.
func (u User) org() (string, string) {
	id, domain := u.OrgID, u.OrgDomain
	if id == "" {
		id = OrgID
	}
	if domain == "" {
		domain = OrgDomain
		if id == OtherOrgID {
			domain = OtherOrgDomain
		}
	}
	return id, domain
}

// Client is a registered OIDC web application (client_secret_basic).
type Client struct {
	ID                     string
	Secret                 string
	RedirectURIGlobs       []string // doublestar globs, e.g. http://127.0.0.1:*/oauth2/callback
	PostLogoutRedirectURIs []string // globs too
	JWTAccessTokens        bool     // JWT instead of opaque access tokens
	// APIKey is the app's key (a ZITADEL key file, see KeyFile) for
	// private_key_jwt. Without RedirectURIGlobs it makes an API app of the
	// project, which may introspect the tokens of every app of the project,
	// as ZITADEL allows; with them, a Web app of AuthMethod private_key_jwt.
	APIKey *rsa.PrivateKey
	KeyID  string
	// AuthMethod is how the client authenticates at the token endpoint, as
	// ZITADEL's console sets it (Code: basic, the default; Post; PKCE: none;
	// JWT: private_key_jwt with APIKey). The IdP refuses the others.
	AuthMethod oidc.AuthMethod
}

// MethodClient is the web app whose authentication method is method
// (client_secret_basic, client_secret_post, none, private_key_jwt), as
// ZITADEL's console creates one per method: id web-METHOD@zitadel-ext-authz,
// secret web-METHOD-secret (basic and post), a key (private_key_jwt; see
// KeyFile). The demo and the tests register all four.
func MethodClient(method oidc.AuthMethod) Client {
	c := DefaultClient()
	c.ID = "web-" + string(method) + "@zitadel-ext-authz"
	c.AuthMethod = method
	switch method {
	case oidc.AuthMethodBasic, oidc.AuthMethodPost:
		c.Secret = "web-" + string(method) + "-secret"
	case oidc.AuthMethodNone:
		c.Secret = ""
	case oidc.AuthMethodPrivateKeyJWT:
		c.Secret = ""
		c.APIKey, c.KeyID = methodClientKey(), "309812345678901234"
	}
	return c
}

// methodClientKey is the private_key_jwt web app's RSA key, made once.
var methodClientKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// Options configure a dev IdP. Zero values get DefaultUsers and DefaultClient.
type Options struct {
	Addr    string // listen address, default 127.0.0.1:0
	Users   []User
	Clients []Client
	Logger  *slog.Logger // default: discard
	// TLS serves https (the issuer is then https://…), as a self-hosted
	// ZITADEL behind a private CA does; nil: http.
	TLS *tls.Config
}

// DefaultUsers are the people of the demo and the tests.
func DefaultUsers() []User {
	return []User{
		{ID: "user-alice", Username: "alice", Password: "alice-password", Email: "alice@example.com", Name: "Alice Admin", Roles: []string{"admin", "reader"}, MFA: true},
		{ID: "user-bob", Username: "bob", Password: "bob-password", Email: "bob@example.com", Name: "Bob Reader", Roles: []string{"reader"}},
		{ID: "user-eve", Username: "eve", Password: "eve-password", Email: "eve@other.org", Name: "Eve Outsider", OrgID: OtherOrgID},
		{ID: "user-pat", Username: "pat", Password: "pat-password", Email: "pat@example.com", Name: "Pat Password", Roles: []string{"admin"}},
		{ID: "user-olga", Username: "olga", Password: "olga-password", Email: "olga@other.org", Name: "Olga Other", Roles: []string{"reader"}, OrgID: OtherOrgID, MFA: true},
	}
}

// DefaultClient is the web app ext_authz logs in as; its id has an '@' like
// a ZITADEL client id.
func DefaultClient() Client {
	return Client{
		ID:                     "web@zitadel-ext-authz",
		Secret:                 "web-secret",
		RedirectURIGlobs:       []string{"http://127.0.0.1:*/oauth2/callback", "http://localhost:*/oauth2/callback"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:*/**", "http://localhost:*/**"},
	}
}

// AppClient is the web app of one app of a server serving several (the
// apps list), reached as http://NAME.localhost:PORT: id NAME@zitadel-ext-authz,
// secret NAME-secret. The demo registers app1 and app2.
func AppClient(name string) Client {
	return Client{
		ID:                     name + "@zitadel-ext-authz",
		Secret:                 name + "-secret",
		RedirectURIGlobs:       []string{"http://" + name + ".localhost:*/oauth2/callback"},
		PostLogoutRedirectURIs: []string{"http://" + name + ".localhost:*/**"},
	}
}

// JWTClient is an API client of the project whose access tokens are JWTs
// (ZITADEL's "JWT" access token type), which a server with
// skip_jwt_bearer_tokens verifies locally: id api-jwt@zitadel-ext-authz
// (a server takes it with extra_jwt_audiences), secret api-secret. The
// demo registers it.
func JWTClient() Client {
	return Client{
		ID:               "api-jwt@zitadel-ext-authz",
		Secret:           "api-secret",
		RedirectURIGlobs: []string{"http://127.0.0.1:*/oauth2/callback"},
		JWTAccessTokens:  true,
	}
}

// Server is a running dev IdP.
type Server struct {
	Issuer  string
	srv     *http.Server
	ln      net.Listener
	handler http.Handler
	tls     *tls.Config
	logger  *slog.Logger
	store   *store
	calls   sync.Map // endpoint path → *atomic.Int64
	hang    atomic.Pointer[chan struct{}]
	tamper  atomic.Pointer[Tamper]
	done    chan struct{}
}

// Start listens and serves a dev IdP until Close.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Users == nil {
		opts.Users = DefaultUsers()
	}
	if opts.Clients == nil {
		opts.Clients = []Client{DefaultClient()}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	if opts.TLS != nil {
		issuer = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, opts.TLS)
	}
	s := &Server{Issuer: issuer, ln: ln, tls: opts.TLS, logger: logger}
	s.store = newStore(opts.Users, opts.Clients)
	s.handler = s.middleware(exampleop.SetupServer(issuer, s.store, nil, false))
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	s.ln, s.done = ln, make(chan struct{})
	s.srv = &http.Server{Handler: s.handler, ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelError)}
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln)
	}(s.srv, s.done)
}

// Stop takes the IdP away as a crash would (connections closed, then
// connection refused), keeping everything it issued; Resume brings it
// back on the same address. For fault tests (the soak).
func (s *Server) Stop() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// Resume listens again on the address Stop left.
func (s *Server) Resume() error {
	ln, err := net.Listen("tcp", s.ln.Addr().String())
	if err != nil {
		return fmt.Errorf("devidp: listen again: %w", err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.serve(ln)
	return nil
}

// Close stops the IdP; clients see connection refused afterwards.
func (s *Server) Close() error {
	s.Release()
	err := s.srv.Close()
	<-s.done
	return err
}

// Calls is how many requests reached the endpoint path (e.g. "/oauth/token").
func (s *Server) Calls(path string) int64 {
	v, ok := s.calls.Load(path)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// HangToken makes the token endpoint hold every request until Release or
// until the caller gives up.
func (s *Server) HangToken() {
	ch := make(chan struct{})
	s.hang.Store(&ch)
}

// Release ends HangToken.
func (s *Server) Release() {
	if ch := s.hang.Swap(nil); ch != nil {
		close(*ch)
	}
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := s.calls.LoadOrStore(r.URL.Path, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		r = withResources(r) // RFC 8707 resource indicators, for CreateAuthRequest
		if s.secondStep(next, w, r) {
			return
		}
		if r.URL.Path == "/oauth/token" {
			if ch := s.hang.Load(); ch != nil {
				select {
				case <-*ch:
				case <-r.Context().Done():
					return
				}
			}
		}
		if r.URL.Path == "/oauth/token" || r.URL.Path == "/revoke" {
			if why := s.store.wrongAuthMethod(r); why != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": why})
				return
			}
		}
		r = s.exchangeRequest(r) // token exchange (exchange.go)
		if t := s.tamper.Load(); t != nil {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			status, body := (*t)(r, rec.Code, rec.Body.Bytes())
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(status)
			w.Write(body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// store is the example storage plus ZITADEL-shaped claims and client settings.
type store struct {
	*storage.Storage
	users    map[string]User
	clients  map[string]Client
	rotation rotation
	otp      otpFlows  // second steps of sign-ins, and the factors added
	aud      audiences // audiences beyond the client (audience.go)
	exchange exchanges // token exchange (exchange.go)
}

func newStore(users []User, clients []Client) *store {
	s := &store{users: map[string]User{}, clients: map[string]Client{}}
	us := userStore{byID: map[string]*storage.User{}, byName: map[string]*storage.User{}}
	for _, u := range users {
		s.users[u.ID] = u
		first, last, _ := strings.Cut(u.Name, " ")
		su := &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: first, LastName: last, Email: u.Email, EmailVerified: true, PreferredLanguage: language.English}
		us.byID[u.ID] = su
		us.byName[u.Username] = su
	}
	registered := map[string]*storage.Client{}
	for _, c := range clients {
		s.clients[c.ID] = c
		registered[c.ID] = storage.WebClient(c.ID, c.Secret, "http://127.0.0.1/never-used")
	}
	s.Storage = storage.NewStorageWithClients(us, registered)
	return s
}

// wrongAuthMethod refuses a token or revocation request whose client
// authenticates otherwise than its AuthMethod says, as ZITADEL does (the
// example OP takes a secret from the header or the form alike): "" when
// the request is fine or for the OP to judge.
func (s *store) wrongAuthMethod(r *http.Request) string {
	if err := r.ParseForm(); err != nil {
		return ""
	}
	id, _, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
	} else {
		id = r.PostForm.Get("client_id")
	}
	assertion := r.PostForm.Get("client_assertion") != ""
	if assertion {
		// RFC 7523 §3.2: a client assertion that doesn't verify is
		// invalid_client (the example OP answers invalid_grant).
		iss, ok := s.verifyAssertion(r.PostForm.Get("client_assertion"))
		if !ok {
			return "the client assertion is not signed by a key of its client"
		}
		id = iss
	}
	c, ok := s.clients[id]
	if !ok {
		return ""
	}
	secretInForm := r.PostForm.Get("client_secret") != ""
	switch c.AuthMethod {
	case "", oidc.AuthMethodBasic:
		if !basic {
			return "this client authenticates with client_secret_basic"
		}
	case oidc.AuthMethodPost:
		if basic || !secretInForm {
			return "this client authenticates with client_secret_post"
		}
	case oidc.AuthMethodNone:
		if basic || secretInForm || assertion {
			return "this is a public client: no client authentication"
		}
	case oidc.AuthMethodPrivateKeyJWT:
		if basic || secretInForm || !assertion {
			return "this client authenticates with private_key_jwt"
		}
	}
	return ""
}

// verifyAssertion checks a client assertion's signature against the key
// of the client it names (iss) and returns that client id.
func (s *store) verifyAssertion(raw string) (string, bool) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", false
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return "", false
	}
	c, ok := s.clients[claims.Issuer]
	if !ok || c.APIKey == nil {
		return "", false
	}
	if _, err := jws.Verify(&c.APIKey.PublicKey); err != nil {
		return "", false
	}
	return claims.Issuer, true
}

// GetKeyByIDAndClientID serves the public keys of API apps (private_key_jwt).
func (s *store) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	if c, ok := s.clients[clientID]; ok && c.APIKey != nil && c.KeyID == keyID {
		return &jose.JSONWebKey{Key: &c.APIKey.PublicKey, KeyID: keyID, Algorithm: "RS256", Use: "sig"}, nil
	}
	return s.Storage.GetKeyByIDAndClientID(ctx, keyID, clientID)
}

// GetClientByClientID wraps the example client with our settings.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &client{Client: c, cfg: s.clients[id], exchange: isExchange(ctx)}, nil
}

// roleClaim is ZITADEL's role object: role key → org id → org domain.
func (s *store) roleClaim(userID string) map[string]any {
	u, ok := s.users[userID]
	if !ok || len(u.Roles) == 0 {
		return nil
	}
	orgID, domain := u.org()
	roles := map[string]any{}
	for _, r := range u.Roles {
		roles[r] = map[string]any{orgID: domain}
	}
	return roles
}

// resourceOwnerScope asks for the user's organization in the tokens.
const resourceOwnerScope = "urn:zitadel:iam:user:resourceowner"

// orgClaims are ZITADEL's claims of the user's organization.
func (s *store) orgClaims(userID string) map[string]any {
	u, ok := s.users[userID]
	if !ok {
		return nil
	}
	id, domain := u.org()
	return map[string]any{
		"urn:zitadel:iam:user:resourceowner:id":             id,
		"urn:zitadel:iam:user:resourceowner:name":           strings.TrimSuffix(domain, ".localhost"),
		"urn:zitadel:iam:user:resourceowner:primary_domain": domain,
	}
}

func (s *store) appendRoles(info *oidc.UserInfo, userID string) {
	if roles := s.roleClaim(userID); roles != nil {
		info.AppendClaims("urn:zitadel:iam:org:project:roles", roles)
		info.AppendClaims("urn:zitadel:iam:org:project:"+ProjectID+":roles", roles)
	}
	for k, v := range s.users[userID].Claims {
		info.AppendClaims(k, v)
	}
}

// SetUserinfoFromRequest feeds the ID token.
func (s *store) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, token, scopes); err != nil {
		return err
	}
	s.appendRoles(info, token.GetSubject())
	if slices.Contains(scopes, resourceOwnerScope) {
		for k, v := range s.orgClaims(token.GetSubject()) {
			info.AppendClaims(k, v)
		}
	}
	return nil
}

// SetUserinfoFromToken feeds the userinfo endpoint.
func (s *store) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.appendRoles(info, info.Subject)
	return nil
}

// SetIntrospectionFromToken feeds the introspection endpoint.
// An API app may introspect the tokens of any app of the project (ZITADEL
// accepts the project id in the audience; the example storage only the
// token's own client).
func (s *store) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	err := s.Storage.SetIntrospectionFromToken(ctx, resp, tokenID, subject, clientID)
	if c, ok := s.clients[clientID]; err != nil && ok && c.APIKey != nil {
		for id := range s.clients {
			if err = s.Storage.SetIntrospectionFromToken(ctx, resp, tokenID, subject, id); err == nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	// ZITADEL answers with the token's aud (the example storage with none).
	resp.Audience = s.audienceOf(tokenID)
	if roles := s.roleClaim(resp.Subject); roles != nil {
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		resp.Claims["urn:zitadel:iam:org:project:roles"] = roles
		resp.Claims["urn:zitadel:iam:org:project:"+ProjectID+":roles"] = roles
	}
	if extra := s.users[resp.Subject].Claims; extra != nil {
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		maps.Copy(resp.Claims, extra)
	}
	// ZITADEL adds these when the token's scopes have resourceowner; the
	// example storage doesn't keep them for us to look up, so always.
	if org := s.orgClaims(resp.Subject); org != nil {
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		maps.Copy(resp.Claims, org)
	}
	return nil
}

// GetPrivateClaimsFromScopes feeds JWT access tokens.
func (s *store) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	if roles := s.roleClaim(userID); roles != nil {
		if claims == nil {
			claims = map[string]any{}
		}
		claims["urn:zitadel:iam:org:project:roles"] = roles
	}
	if extra := s.users[userID].Claims; extra != nil {
		if claims == nil {
			claims = map[string]any{}
		}
		maps.Copy(claims, extra)
	}
	if slices.Contains(scopes, resourceOwnerScope) {
		if claims == nil {
			claims = map[string]any{}
		}
		maps.Copy(claims, s.orgClaims(userID))
	}
	return claims, nil
}

// CheckUsernamePassword is the login form's check, with ZITADEL's
// organization scopes: an authorization request for one organization
// (urn:zitadel:iam:org:id:{id} or :org:domain:primary:{domain}) lets only
// that organization's users sign in.
func (s *store) CheckUsernamePassword(username, password, id string) error {
	req, err := s.Storage.AuthRequestByID(context.Background(), id)
	if err != nil {
		return err
	}
	for _, u := range s.users {
		if u.Username != username {
			continue
		}
		orgID, domain := u.org()
		for _, sc := range req.GetScopes() {
			if want, ok := strings.CutPrefix(sc, "urn:zitadel:iam:org:id:"); ok && want != orgID {
				return fmt.Errorf("user not found in this organization")
			}
			if want, ok := strings.CutPrefix(sc, "urn:zitadel:iam:org:domain:primary:"); ok && want != domain {
				return fmt.Errorf("user not found in this organization")
			}
		}
	}
	return s.Storage.CheckUsernamePassword(username, password, id)
}

// mfaRequest is a finished authorization request of a user who signed in
// with a second factor: its ID token's amr says so.
type mfaRequest struct{ op.AuthRequest }

func (mfaRequest) GetAMR() []string { return []string{"pwd", "mfa", "otp"} }

// AuthRequestByCode marks MFA users' sign-ins (the ID token's amr).
func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	req, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if s.hasMFA(req.GetSubject()) {
		req = mfaRequest{req}
	}
	return s.withAudiences(req), nil
}

// unwrap gives the example storage its own request type back.
func unwrap(req op.TokenRequest) op.TokenRequest {
	if a, ok := req.(audienceRequest); ok {
		req = a.AuthRequest
	}
	if m, ok := req.(mfaRequest); ok {
		return m.AuthRequest
	}
	return req
}

func (s *store) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp, err := s.Storage.CreateAccessToken(ctx, unwrap(req))
	if err == nil {
		s.rememberAudience(id, req.GetAudience())
	}
	return id, exp, err
}

func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	id, refresh, exp, err := s.Storage.CreateAccessAndRefreshTokens(ctx, unwrap(req), currentRefreshToken)
	if err == nil {
		s.rememberAudience(id, req.GetAudience())
	}
	return id, refresh, exp, err
}

type client struct {
	op.Client
	cfg Client
	// exchange: the client is serving a token exchange, whose access
	// tokens are JWTs (exchange.go)
	exchange bool
}

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.cfg.JWTAccessTokens || c.exchange {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (c *client) PostLogoutRedirectURIs() []string { return nil }

// AuthMethod is the configured method (basic when unset).
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.cfg.AuthMethod != "" {
		return c.cfg.AuthMethod
	}
	return c.Client.AuthMethod()
}

func (c *client) RedirectURIGlobs() []string { return c.cfg.RedirectURIGlobs }

func (c *client) PostLogoutRedirectURIGlobs() []string { return c.cfg.PostLogoutRedirectURIs }

// IsScopeAllowed lets ZITADEL's reserved scopes through, as ZITADEL does.
func (c *client) IsScopeAllowed(scope string) bool {
	return strings.HasPrefix(scope, "urn:zitadel:iam:") || c.Client.IsScopeAllowed(scope)
}

type userStore struct {
	byID, byName map[string]*storage.User
}

func (u userStore) GetUserByID(id string) *storage.User         { return u.byID[id] }
func (u userStore) GetUserByUsername(name string) *storage.User { return u.byName[name] }
func (u userStore) ExampleClientID() string                     { return "service" }

// StartT starts a dev IdP for a test and closes it when the test ends; a
// failure to start fails the test.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
