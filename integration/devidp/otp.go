package devidp

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
)

// A second factor that is one, as ZITADEL's: after the password, a user
// with MFA types a time-based one-time code (RFC 6238: HMAC-SHA1, 30 s,
// 6 digits) from an authenticator app, and only then does the IdP issue
// the code for the client. A user without one who is asked to step up
// (prompt=login) may add one on the spot. Each user's secret is derived
// from the user name (OTPSecret), so tests, the demo and an authenticator
// app can all produce the codes.

// OTPSecret is username's TOTP secret (base32, as authenticator apps take it).
func OTPSecret(username string) string {
	sum := sha256.Sum256([]byte("zitadel-ext-authz dev IdP TOTP " + username))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])
}

// OTPCode is the code of secret at t (RFC 6238).
func OTPCode(secret string, t time.Time) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return ""
	}
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(t.Unix()/30))
	mac := hmac.New(sha1.New, key)
	mac.Write(counter[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// OTPURI is the otpauth:// URI an authenticator app imports (a QR code's text).
func OTPURI(username string) string {
	return "otpauth://totp/zitadel-ext-authz%20dev%20IdP:" + url.PathEscape(username) + "?secret=" + OTPSecret(username) + "&issuer=zitadel-ext-authz%20dev%20IdP"
}

// otpValid: code is secret's for now, a step before or a step after.
func otpValid(secret, code string, now time.Time) bool {
	code = strings.TrimSpace(code)
	for _, d := range []time.Duration{0, -30 * time.Second, 30 * time.Second} {
		if hmac.Equal([]byte(OTPCode(secret, now.Add(d))), []byte(code)) && code != "" {
			return true
		}
	}
	return false
}

// otpFlows are the authorization requests waiting for their second step.
type otpFlows struct {
	mu       sync.Mutex
	pending  map[string]otpFlow // auth request id → flow
	enrolled map[string]bool    // user ids that added a second factor here
}

type otpFlow struct {
	userID, username string
	setup            bool // adding a second factor, not using one
	done             bool
}

func (f *otpFlows) start(id string, flow otpFlow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil {
		f.pending = map[string]otpFlow{}
	}
	f.pending[id] = flow
}

func (f *otpFlows) get(id string) (otpFlow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flow, ok := f.pending[id]
	return flow, ok
}

func (f *otpFlows) finish(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flow := f.pending[id]
	flow.done = true
	f.pending[id] = flow
	if flow.setup {
		if f.enrolled == nil {
			f.enrolled = map[string]bool{}
		}
		f.enrolled[flow.userID] = true
	}
}

// hasMFA: the user signs in with a second factor (from the start, or
// since adding one here).
func (s *store) hasMFA(userID string) bool {
	if u, ok := s.users[userID]; ok && u.MFA {
		return true
	}
	s.otp.mu.Lock()
	defer s.otp.mu.Unlock()
	return s.otp.enrolled[userID]
}

var otpPage = template.Must(template.New("otp").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .Setup}}Add a second factor{{else}}One-time code{{end}}</title></head><body>
<h1>{{if .Setup}}Add a second factor{{else}}Enter your one-time code{{end}}</h1>
{{if .Setup}}<p>This application asks for a second factor. Add this key to your authenticator app, then enter the code it shows:</p>
<p><code id="secret">{{.Secret}}</code></p><p><code id="otpauth">{{.URI}}</code></p>{{else}}
<p>Open your authenticator app and enter the code for {{.Username}}.</p>{{end}}
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="POST" action="/login/otp"><input type="hidden" name="id" value="{{.ID}}">
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" autofocus>
<button type="submit">{{if .Setup}}Add and continue{{else}}Continue{{end}}</button></form>
{{if .Setup}}<form method="POST" action="/login/otp"><input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="skip" value="1"><button id="skip" type="submit">Not now</button></form>{{end}}
</body></html>`))

// secondStep wraps the login: it puts the one-time code between the
// password and the code for the client.
func (s *Server) secondStep(next http.Handler, w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/login/username" && r.Method == http.MethodPost:
		_ = r.ParseForm()
		id, username := r.PostForm.Get("id"), r.PostForm.Get("username")
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		loc := rec.Header().Get("Location")
		if (rec.Code == http.StatusFound || rec.Code == http.StatusSeeOther) && strings.Contains(loc, "/auth/callback") {
			if u, ok := s.userByName(username); ok {
				req, err := s.store.Storage.AuthRequestByID(context.Background(), id)
				ar, _ := req.(*storage.AuthRequest) // the example storage's own type
				stepUp := err == nil && ar != nil && slices.Contains(ar.Prompt, "login")
				switch {
				case s.store.hasMFA(u.ID):
					s.store.otp.start(id, otpFlow{userID: u.ID, username: username})
					http.Redirect(w, r, "/login/otp?id="+url.QueryEscape(id), http.StatusFound)
					return true
				case stepUp:
					s.store.otp.start(id, otpFlow{userID: u.ID, username: username, setup: true})
					http.Redirect(w, r, "/login/otp?id="+url.QueryEscape(id), http.StatusFound)
					return true
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return true
	case r.URL.Path == "/login/otp" && r.Method == http.MethodGet:
		id := r.URL.Query().Get("id")
		flow, ok := s.store.otp.get(id)
		if !ok {
			http.Error(w, "no sign-in waits for a code", http.StatusBadRequest)
			return true
		}
		s.renderOTP(w, id, flow, "")
		return true
	case r.URL.Path == "/login/otp" && r.Method == http.MethodPost:
		_ = r.ParseForm()
		id := r.PostForm.Get("id")
		flow, ok := s.store.otp.get(id)
		if !ok {
			http.Error(w, "no sign-in waits for a code", http.StatusBadRequest)
			return true
		}
		if flow.setup && r.PostForm.Get("skip") != "" {
			s.store.otp.finish(id) // no factor added: the sign-in goes on without one
			s.store.otp.mu.Lock()
			delete(s.store.otp.enrolled, flow.userID)
			s.store.otp.mu.Unlock()
			http.Redirect(w, r, "/auth/callback?id="+url.QueryEscape(id), http.StatusFound)
			return true
		}
		if !otpValid(OTPSecret(flow.username), r.PostForm.Get("code"), time.Now()) {
			w.WriteHeader(http.StatusUnauthorized)
			s.renderOTP(w, id, flow, "That code is not right. Enter the current one.")
			return true
		}
		s.store.otp.finish(id)
		http.Redirect(w, r, "/auth/callback?id="+url.QueryEscape(id), http.StatusFound)
		return true
	case r.URL.Path == "/auth/callback":
		// No way around the second step.
		id := r.URL.Query().Get("id")
		if flow, ok := s.store.otp.get(id); ok && !flow.done {
			http.Redirect(w, r, "/login/otp?id="+url.QueryEscape(id), http.StatusFound)
			return true
		}
	}
	return false
}

func (s *Server) renderOTP(w http.ResponseWriter, id string, flow otpFlow, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = otpPage.Execute(w, map[string]any{"ID": id, "Username": flow.username, "Setup": flow.setup, "Error": problem,
		"Secret": OTPSecret(flow.username), "URI": OTPURI(flow.username)})
}

func (s *Server) userByName(username string) (User, bool) {
	for _, u := range s.store.users {
		if u.Username == username {
			return u, true
		}
	}
	return User{}, false
}
