// Package hydra runs Ory Hydra v2.3.0 (an OpenID Certified provider we
// didn't write) for the end-to-end suite: it builds the binary from the Go
// module proxy once (./tools pins it; the build is cached), serves it with
// an in-memory database, and plays Hydra's login, consent and logout app,
// which Hydra leaves to its users.
package hydra

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// Version is the Hydra release built (tools/go.mod pins it).
const Version = "v2.3.0"

// User is someone who can sign in through our login app.
type User struct {
	Subject, Password, Email string
	Groups                   []string // in tokens as the ext claim groups (Hydra's access-token extra claims) and the ID token claim groups
}

// Server is a running Hydra with our login app.
type Server struct {
	Issuer string // public URL
	Admin  string // admin URL
	app    *httptest.Server
	cmd    *exec.Cmd
	done   chan struct{}
	users  map[string]User
	logs   testkit.Buffer
}

// binary builds Hydra once per machine into the user's cache directory and
// returns its path.
func binary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	path := filepath.Join(cache, "zitadel-ext-authz", "hydra-"+Version+"-"+runtime.GOOS+"-"+runtime.GOARCH, "hydra")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	_, self, _, _ := runtime.Caller(0)
	tools := filepath.Join(filepath.Dir(self), "tools")
	tmp := path + ".tmp"
	build := exec.Command("go", "build", "-tags", "sqlite,sqlite_omit_load_extension", "-o", tmp, "github.com/ory/hydra/v2")
	build.Dir = tools
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hydra %s: %w\n%s", Version, err, out)
	}
	return path, os.Rename(tmp, path)
}

// Start builds (once) and runs Hydra with the users our login app knows.
// trailingSlash makes the issuer end in "/" (Hydra allows either).
func Start(users []User, trailingSlash bool) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	pub, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	adm, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Issuer: "http://127.0.0.1:" + strconv.Itoa(pub), Admin: "http://127.0.0.1:" + strconv.Itoa(adm), users: map[string]User{}, done: make(chan struct{})}
	if trailingSlash {
		s.Issuer += "/"
	}
	for _, u := range users {
		s.users[u.Subject] = u
	}
	s.app = httptest.NewServer(s.loginApp())
	s.cmd = exec.Command(bin, "serve", "all", "--dev")
	s.cmd.Env = append(os.Environ(),
		"DSN=memory", "LOG_LEVEL=warn", "SECRETS_SYSTEM=a-system-secret-of-32-characters!",
		"URLS_SELF_ISSUER="+s.Issuer,
		"URLS_LOGIN="+s.app.URL+"/login", "URLS_CONSENT="+s.app.URL+"/consent", "URLS_LOGOUT="+s.app.URL+"/logout",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+strconv.Itoa(pub),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+strconv.Itoa(adm),
		// Short lives, so tests see refreshes without waiting.
		"TTL_ACCESS_TOKEN=5m", "STRATEGIES_ACCESS_TOKEN=opaque",
	)
	s.cmd.Stdout, s.cmd.Stderr = &s.logs, &s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.app.Close()
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := testkit.WaitHTTP(s.Admin+"/health/ready", s.done, 30*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("hydra: %w\n%s", err, s.Logs())
	}
	return s, nil
}

// AppURL is where our login, consent and logout app runs.
func (s *Server) AppURL() string { return s.app.URL }

// Logs is what Hydra wrote.
func (s *Server) Logs() string { return s.logs.String() }

// Close stops Hydra and the login app.
func (s *Server) Close() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.app.Close()
}

// Client is an OAuth 2.0 client registered through Hydra's admin API.
type Client struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	JWTAccessTokens        bool
	Audience               []string // access-token audiences the client may ask for
}

// CreateClient registers c (client_secret_basic, code and refresh grants).
func (s *Server) CreateClient(ctx context.Context, c Client) error {
	body := map[string]any{
		"client_id": c.ID, "client_secret": c.Secret,
		"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"}, "response_types": []string{"code"},
		"scope": "openid offline_access email profile read:items", "redirect_uris": c.RedirectURIs,
		"post_logout_redirect_uris": c.PostLogoutRedirectURIs, "token_endpoint_auth_method": "client_secret_basic",
	}
	if c.BackchannelLogoutURI != "" {
		body["backchannel_logout_uri"] = c.BackchannelLogoutURI
		body["backchannel_logout_session_required"] = true
	}
	if c.JWTAccessTokens {
		body["access_token_strategy"] = "jwt"
	}
	if len(c.Audience) > 0 {
		body["audience"] = c.Audience
	}
	return s.admin(ctx, http.MethodPost, "/admin/clients", body, nil)
}

func (s *Server) admin(ctx context.Context, method, path string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Admin+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("hydra admin %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// loginApp is Hydra's login, consent and logout UI. Its login form is the
// dev IdP's shape (/login/username with authRequestID), so the suite's
// browser signs in the same way at both.
func (s *Server) loginApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login/username?authRequestID="+url.QueryEscape(r.URL.Query().Get("login_challenge")), http.StatusFound)
	})
	mux.HandleFunc("GET /login/username", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form method="post"><input name="username"><input name="password" type="password"></form>`)
	})
	mux.HandleFunc("POST /login/username", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.PostFormValue("id")
		u, ok := s.users[r.PostFormValue("username")]
		if !ok || u.Password != r.PostFormValue("password") {
			http.Error(w, "wrong username or password", http.StatusUnauthorized)
			return
		}
		var redirect struct {
			RedirectTo string `json:"redirect_to"`
		}
		// remember: Hydra keeps a sign-in session, so its logout flow
		// (and back-channel logout) has a session to end.
		err := s.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
			map[string]any{"subject": u.Subject, "remember": true, "remember_for": 3600, "amr": []string{"pwd"}}, &redirect)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, redirect.RedirectTo, http.StatusFound)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("consent_challenge")
		var req struct {
			Subject        string   `json:"subject"`
			RequestedScope []string `json:"requested_scope"`
			RequestedAud   []string `json:"requested_access_token_audience"`
		}
		if err := s.admin(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		u := s.users[req.Subject]
		var redirect struct {
			RedirectTo string `json:"redirect_to"`
		}
		err := s.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge), map[string]any{
			"grant_scope": req.RequestedScope, "grant_access_token_audience": req.RequestedAud,
			"session": map[string]any{
				"id_token":     map[string]any{"email": u.Email, "email_verified": true, "groups": u.Groups},
				"access_token": map[string]any{"groups": u.Groups, "email": u.Email},
			},
		}, &redirect)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, redirect.RedirectTo, http.StatusFound)
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		var redirect struct {
			RedirectTo string `json:"redirect_to"`
		}
		err := s.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+url.QueryEscape(r.URL.Query().Get("logout_challenge")), nil, &redirect)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, redirect.RedirectTo, http.StatusFound)
	})
	return mux
}
