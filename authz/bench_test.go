package authz

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

// realisticRequest is a CheckRequest as a browser's request arrives from
// Envoy: about 15 headers (envoy-ext-authz.md §1) and a session cookie of
// about 1.5 KB next to the app's own cookies.
func realisticRequest(cookie string) *authv3.CheckRequest {
	return envoyRequest("GET", "/dashboard/reports?year=2026&sort=desc", map[string]string{
		"accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"accept-encoding":           "gzip, deflate, br, zstd",
		"accept-language":           "en-US,en;q=0.9,de;q=0.8",
		"user-agent":                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"cookie":                    "theme=dark; _ga=GA1.1.123456789.1700000000; " + cookie,
		"referer":                   "https://app.example.com/dashboard",
		"sec-fetch-dest":            "document",
		"sec-fetch-mode":            "navigate",
		"sec-fetch-site":            "same-origin",
		"upgrade-insecure-requests": "1",
		"x-forwarded-for":           "203.0.113.7",
		"x-envoy-external-address":  "203.0.113.7",
	})
}

func benchSession() *sessionpb.Session {
	s := alice()
	s.AccessToken = strings.Repeat("A", 600)
	s.IdToken = strings.Repeat("I", 500)
	return s
}

// benchSessionLarge has ZITADEL-sized tokens (make bench's large session): a
// JWT access token with roles, an ID token with roles, e-mail and name, a
// refresh token; its cookie is about 3.6 KB.
func benchSessionLarge() *sessionpb.Session {
	s := alice()
	s.Email, s.PreferredUsername = "zara.nakamura@engineering.example.com", "zara"
	s.Groups = []string{"admin", "editor", "billing.viewer"}
	s.AccessToken = strings.Repeat("A", 1100)
	s.IdToken = strings.Repeat("I", 1300)
	s.RefreshToken = strings.Repeat("R", 80)
	return s
}

// BenchmarkCheck is a Check with a valid session cookie, with the decoded
// session cache (hit) and without it (every Check decrypts and decodes),
// for the small session and the ZITADEL-sized one.
func BenchmarkCheck(b *testing.B) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	for _, bc := range []struct {
		name    string
		cache   bool
		session func() *sessionpb.Session
	}{{"session_cache_hit", true, benchSession}, {"session_cache_miss", false, benchSession},
		{"large_session_cache_hit", true, benchSessionLarge}, {"large_session_cache_miss", false, benchSessionLarge}} {
		b.Run(bc.name, func(b *testing.B) {
			var s *Server
			var cookie string
			if bc.cache {
				srv, jar := newTestServer(b, Config{PassAccessToken: true}, &stubIdP{}, cache)
				s, cookie = srv, sessionCookie(b, jar, bc.session())
				cache.Wait()
			} else {
				srv, jar := newTestServer(b, Config{PassAccessToken: true}, &stubIdP{}, nil)
				s, cookie = srv, sessionCookie(b, jar, bc.session())
			}
			req := realisticRequest(cookie)
			ctx := b.Context()
			if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
				b.Fatalf("setup: not allowed: %v", resp)
			}
			b.ReportMetric(float64(len(cookie)), "cookie-bytes")
			b.ReportAllocs()
			for b.Loop() {
				resp, _ := s.Check(ctx, req)
				if resp.GetStatus().GetCode() != 0 {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkCheckUnauthenticated is the login-redirect path.
func BenchmarkCheckUnauthenticated(b *testing.B) {
	s, _ := newTestServer(b, Config{SkipProviderButton: true}, &stubIdP{}, nil)
	req := realisticRequest("other=1")
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := s.Check(b.Context(), req)
		if resp.GetDeniedResponse().GetStatus().GetCode() != 302 {
			b.Fatal("not redirected")
		}
	}
}

// BenchmarkCheckBearer is a Check with a cached bearer token, JWT and opaque,
// through the real oidcflow.Provider and its ristretto token cache, against
// the dev IdP (the first Check of each token fills the cache).
func BenchmarkCheckBearer(b *testing.B) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	jwtApp := devidp.Client{ID: "api-jwt@bench", Secret: "s", RedirectURIGlobs: []string{"http://127.0.0.1:*/oauth2/callback"}, JWTAccessTokens: true}
	idp, err := devidp.Start(devidp.Options{Clients: []devidp.Client{devidp.DefaultClient(), jwtApp}})
	if err != nil {
		b.Fatal(err)
	}
	defer idp.Close()
	cache, err := ristretto.NewCache(&ristretto.Config[string, *oidcflow.TokenEntry]{NumCounters: 10000, MaxCost: 1 << 25, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	web := devidp.DefaultClient()
	p, err := oidcflow.New(oidcflow.Config{Issuer: idp.Issuer, ClientID: web.ID, ClientSecret: web.Secret},
		oidcflow.WithBearer(oidcflow.BearerConfig{ExtraAudiences: []string{jwtApp.ID}}, cache), oidcflow.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Serve(ctx)
	for deadline := time.Now().Add(10 * time.Second); !p.Ready(); {
		if time.Now().After(deadline) {
			b.Fatal("provider not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s, _ := newTestServer(b, Config{PassAccessToken: true}, &stubIdP{}, nil)
	s.bearerAuth = p
	for _, bc := range []struct {
		name   string
		client devidp.Client
	}{{"jwt_cached", jwtApp}, {"opaque_cached", web}} {
		b.Run(bc.name, func(b *testing.B) {
			tok, err := idp.Tokens(ctx, bc.client, "alice", "alice-password")
			if err != nil {
				b.Fatal(err)
			}
			req := realisticRequest("other=1")
			req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + tok.AccessToken
			req.Attributes.Request.Http.Headers["accept"] = "application/json"
			if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
				b.Fatalf("setup: not allowed: %v", resp)
			}
			cache.Wait()
			b.ReportMetric(float64(len(tok.AccessToken)), "token-bytes")
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkCheckEncoded is a cached-session Check plus the encoding gRPC
// does for its answer, with and without the dynamic metadata (what the
// metadata costs on the wire and in time).
func BenchmarkCheckEncoded(b *testing.B) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	srv, jar := newTestServer(b, Config{PassAccessToken: true}, &stubIdP{}, cache)
	req := realisticRequest(sessionCookie(b, jar, benchSession()))
	srv.Check(b.Context(), req)
	cache.Wait()
	for _, withMeta := range []bool{true, false} {
		name := "with_metadata"
		if !withMeta {
			name = "without_metadata"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			size := 0
			for b.Loop() {
				resp, _ := srv.Check(b.Context(), req)
				if !withMeta {
					resp.ProtoReflect().SetUnknown(nil) // where the encoded metadata rides
				}
				out, err := proto.Marshal(resp)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size), "response-bytes")
		})
	}
}
