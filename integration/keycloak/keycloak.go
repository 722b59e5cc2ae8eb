// Package keycloak runs Keycloak (an OpenID Certified provider we didn't
// write) for the end-to-end suite: the keycloak-quarkus-dist release from
// Maven Central, downloaded once and checked against its pinned SHA-1,
// started in dev mode on an in-memory database with the realm in
// realm.json imported, on a Java 21 or newer.
package keycloak

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// Version is the Keycloak release; sha1sum is Maven Central's checksum of
// its keycloak-quarkus-dist tarball.
const (
	Version = "26.7.3"
	sha1sum = "4ff244668809213a1c91ad2505390287203029d0"
	dist    = "https://repo.maven.apache.org/maven2/org/keycloak/keycloak-quarkus-dist/" + Version + "/keycloak-quarkus-dist-" + Version + ".tar.gz"
)

// Realm is the imported realm's name; its client web (secret web-secret)
// and user alice (alice-password, realm roles reader and admin, client
// role editor) are in realm.json.
const Realm = "test"

// home downloads and unpacks Keycloak once per machine (the user's cache
// directory) and returns its directory.
func home() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "zitadel-ext-authz", "keycloak-"+Version)
	if _, err := os.Stat(filepath.Join(dir, "bin", "kc.sh")); err == nil {
		return dir, nil
	}
	resp, err := http.Get(dist)
	if err != nil {
		return "", fmt.Errorf("download keycloak %s: %w", Version, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download keycloak %s: %s", Version, resp.Status)
	}
	os.MkdirAll(filepath.Dir(dir), 0o755)
	tarball := dir + ".tar.gz"
	f, err := os.Create(tarball)
	if err != nil {
		return "", err
	}
	defer os.Remove(tarball)
	h := sha1.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("download keycloak %s: %w", Version, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha1sum {
		return "", fmt.Errorf("keycloak %s tarball: sha1 %s, want %s", Version, got, sha1sum)
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	os.MkdirAll(tmp, 0o755)
	if out, err := exec.Command("tar", "-xzf", tarball, "-C", tmp, "--strip-components=1").CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpack keycloak: %w\n%s", err, out)
	}
	return dir, os.Rename(tmp, dir)
}

// javaHome finds a Java 21 or newer: JAVA_HOME when it is one, else the
// newest under /usr/lib/jvm (Debian's packages, Temurin's).
func javaHome() (string, error) {
	candidates := []string{os.Getenv("JAVA_HOME")}
	dirs, _ := filepath.Glob("/usr/lib/jvm/*")
	candidates = append(candidates, dirs...)
	best, bestVersion := "", 0
	for _, d := range candidates {
		if d == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d, "release"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "JAVA_VERSION="); ok {
				major, _ := strconv.Atoi(strings.SplitN(strings.Trim(v, `"`), ".", 2)[0])
				if major >= 21 && major > bestVersion {
					best, bestVersion = d, major
				}
			}
		}
	}
	if best == "" {
		return "", fmt.Errorf("keycloak %s needs Java 21 or newer: set JAVA_HOME, or apt-get install -y openjdk-21-jdk-headless", Version)
	}
	return best, nil
}

// Server is a running Keycloak.
type Server struct {
	URL    string // http://127.0.0.1:port
	Issuer string // URL/realms/test
	cmd    *exec.Cmd
	done   chan struct{}
	logs   testkit.Buffer
}

// startMu keeps two Keycloaks from writing the import file at once.
var startMu sync.Mutex

// Start runs Keycloak with realm.json imported.
func Start() (*Server, error) {
	dir, err := home()
	if err != nil {
		return nil, err
	}
	java, err := javaHome()
	if err != nil {
		return nil, err
	}
	port, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	mgmt, err := testkit.FreePort()
	if err != nil {
		return nil, err
	}
	_, self, _, _ := runtime.Caller(0)
	realm, err := os.ReadFile(filepath.Join(filepath.Dir(self), "realm.json"))
	if err != nil {
		return nil, err
	}
	// --import-realm reads data/import, where a file must be named after
	// its realm: ours alone, the same every run.
	startMu.Lock()
	defer startMu.Unlock()
	imports := filepath.Join(dir, "data", "import")
	os.RemoveAll(imports)
	os.MkdirAll(imports, 0o755)
	if err := os.WriteFile(filepath.Join(imports, Realm+"-realm.json"), realm, 0o644); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	s.Issuer = s.URL + "/realms/" + Realm
	s.cmd = exec.Command(filepath.Join(dir, "bin", "kc.sh"), "start-dev", "--http-host=127.0.0.1", "--http-port="+strconv.Itoa(port),
		"--http-management-port="+strconv.Itoa(mgmt), "--db=dev-mem", "--import-realm")
	s.cmd.Env = append(os.Environ(), "JAVA_HOME="+java, "KC_BOOTSTRAP_ADMIN_USERNAME=admin", "KC_BOOTSTRAP_ADMIN_PASSWORD=admin-password")
	s.cmd.Stdout, s.cmd.Stderr = &s.logs, &s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := testkit.WaitHTTP(s.Issuer+"/.well-known/openid-configuration", s.done, 150*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("keycloak: %w\n%s", err, s.Logs())
	}
	// A realm import drops role mappings to the built-in offline_access
	// role (created after the users): grant it through the admin API, so
	// alice may have refresh tokens with offline_access.
	if err := s.grantOfflineAccess(context.Background(), "alice"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Logs is what Keycloak wrote.
func (s *Server) Logs() string { return s.logs.String() }

// Close stops Keycloak (its whole process group: kc.sh starts java).
func (s *Server) Close() {
	if s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// adminToken is a token of the bootstrap admin for the admin API.
func (s *Server) adminToken(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"}, "username": {"admin"}, "password": {"admin-password"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := do(req, &tok); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func (s *Server) admin(ctx context.Context, method, path string, in, out any) error {
	token, err := s.adminToken(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.URL+"/admin/realms/"+Realm+path, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return do(req, out)
}

func do(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("keycloak %s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (s *Server) userID(ctx context.Context, username string) (string, error) {
	var users []map[string]any
	if err := s.admin(ctx, http.MethodGet, "/users?exact=true&username="+url.QueryEscape(username), nil, &users); err != nil {
		return "", err
	}
	if len(users) != 1 {
		return "", fmt.Errorf("keycloak: %d users named %s", len(users), username)
	}
	return fmt.Sprint(users[0]["id"]), nil
}

func (s *Server) grantOfflineAccess(ctx context.Context, username string) error {
	id, err := s.userID(ctx, username)
	if err != nil {
		return err
	}
	var role map[string]any
	if err := s.admin(ctx, http.MethodGet, "/roles/offline_access", nil, &role); err != nil {
		return err
	}
	return s.admin(ctx, http.MethodPost, "/users/"+id+"/role-mappings/realm", []any{role}, nil)
}

// SetBackchannelLogoutURL sets the web client's back-channel logout URL
// (our operations listener, known only once it runs).
func (s *Server) SetBackchannelLogoutURL(ctx context.Context, logoutURL string) error {
	var clients []map[string]any
	if err := s.admin(ctx, http.MethodGet, "/clients?clientId=web", nil, &clients); err != nil {
		return err
	}
	if len(clients) != 1 {
		return fmt.Errorf("keycloak: %d clients named web", len(clients))
	}
	c := clients[0]
	attrs, _ := c["attributes"].(map[string]any)
	if attrs == nil {
		attrs = map[string]any{}
	}
	attrs["backchannel.logout.url"] = logoutURL
	c["attributes"] = attrs
	return s.admin(ctx, http.MethodPut, "/clients/"+fmt.Sprint(c["id"]), c, nil)
}

// LogOutUser ends every Keycloak session of username, as an administrator
// does in the console (Sessions → Sign out): Keycloak posts the clients'
// back-channel logout tokens. (Offline sessions, made when a client asks
// for offline_access, are not ended this way.)
func (s *Server) LogOutUser(ctx context.Context, username string) error {
	id, err := s.userID(ctx, username)
	if err != nil {
		return err
	}
	var sessions []map[string]any
	if err := s.admin(ctx, http.MethodGet, "/users/"+id+"/sessions", nil, &sessions); err != nil {
		return err
	}
	if len(sessions) == 0 {
		return fmt.Errorf("keycloak: %s has no (online) session", username)
	}
	for _, sess := range sessions {
		if err := s.admin(ctx, http.MethodDelete, "/sessions/"+fmt.Sprint(sess["id"]), nil, nil); err != nil {
			return err
		}
	}
	return nil
}
