package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

func mustCodec(t testing.TB, secrets ...string) *Codec {
	t.Helper()
	var keys [][]byte
	for _, s := range secrets {
		keys = append(keys, []byte(s))
	}
	c, err := NewCodec(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const secretA = "0123456789abcdef0123456789abcdef"
const secretB = "fedcba9876543210fedcba9876543210"

func TestCodecRoundTrip(t *testing.T) {
	c := mustCodec(t, secretA)
	in := &sessionpb.Session{Subject: "id1", Email: "a@example.com", Groups: []string{"admin"}, ExpiresAt: 42}
	v, err := c.Seal("_oauth2_proxy", PurposeSession, in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "a@example.com") || strings.ContainsAny(v, ";, \"=") {
		t.Fatalf("sealed value leaks plaintext or is not cookie-safe: %q", v)
	}
	out := &sessionpb.Session{}
	if err := c.Open("_oauth2_proxy", PurposeSession, v, out); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("Open: got %v, want %v", out, in)
	}
}

func TestCodecRejects(t *testing.T) {
	c := mustCodec(t, secretA)
	v, _ := c.Seal("_oauth2_proxy", PurposeSession, &sessionpb.Session{Subject: "id1"})
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	foreign, _ := mustCodec(t, secretB).Seal("_oauth2_proxy", PurposeSession, &sessionpb.Session{Subject: "id1"})
	asState, _ := c.Seal("_oauth2_proxy", PurposeState, &sessionpb.Session{Subject: "id1"})

	cases := []struct{ name, cookie, value string }{
		{"tampered", "_oauth2_proxy", base64.RawURLEncoding.EncodeToString(flipped)},
		{"truncated", "_oauth2_proxy", v[:len(v)/2]},
		{"empty", "_oauth2_proxy", ""},
		{"not base64", "_oauth2_proxy", "%%%"},
		{"foreign key", "_oauth2_proxy", foreign},
		{"other cookie name", "other", v},
		{"state sealed as session", "_oauth2_proxy", asState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := &sessionpb.Session{}
			if err := c.Open(tc.cookie, PurposeSession, tc.value, out); !errors.Is(err, ErrNoSession) {
				t.Fatalf("Open(%s): got %v, want ErrNoSession", tc.name, err)
			}
			if out.GetSubject() != "" {
				t.Fatalf("Open(%s) filled the message", tc.name)
			}
		})
	}
}

func TestCodecRotation(t *testing.T) {
	old := mustCodec(t, secretB)
	v, _ := old.Seal("n", PurposeSession, &sessionpb.Session{Subject: "id1"})
	rotated := mustCodec(t, secretA, secretB)
	if err := rotated.Open("n", PurposeSession, v, &sessionpb.Session{}); err != nil {
		t.Fatalf("a cookie sealed with an older secret must still open: %v", err)
	}
}

func TestDecodeSecret(t *testing.T) {
	b32 := bytes.Repeat([]byte{0xfb}, 32)
	cases := []struct {
		name, in string
		want     []byte
		wantErr  bool
	}{
		{"raw 16", "0123456789abcdef", []byte("0123456789abcdef"), false},
		{"raw 32", "0123456789!bcdef0123456789!bcdef", []byte("0123456789!bcdef0123456789!bcdef"), false},
		// oauth2-proxy semantics: 32 characters that are valid base64 of 24 bytes are the 24 bytes.
		{"32 chars that are base64 of 24 bytes", secretA, mustB64(secretA), false},
		{"std base64 32", base64.StdEncoding.EncodeToString(b32), b32, false},
		{"url base64 32 unpadded", base64.RawURLEncoding.EncodeToString(b32), b32, false},
		{"too short", "short", nil, true},
		{"placeholder", "{SUPPLY_SOME_SECRET_HERE}", nil, true},
	}
	for _, tc := range cases {
		got, err := DecodeSecret(tc.in)
		if (err != nil) != tc.wantErr || !bytes.Equal(got, tc.want) {
			t.Errorf("DecodeSecret(%s): got %x, %v; want %x, err=%v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzCodecOpen(f *testing.F) {
	c := mustCodec(f, secretA)
	sealed := &sessionpb.Session{Subject: "id1", AccessToken: "at"}
	v, _ := c.Seal("_oauth2_proxy", PurposeSession, sealed)
	f.Add(v)
	f.Add(v[:10])
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		out := &sessionpb.Session{}
		if err := c.Open("_oauth2_proxy", PurposeSession, value, out); err != nil {
			return
		}
		// Only values this key sealed open (the seeds were sealed in another
		// process, with another nonce, so compare contents): AES-GCM makes a
		// forgery practically impossible, so anything else is a bug.
		if !proto.Equal(out, sealed) {
			t.Fatalf("opened a value that was never sealed: %q → %v", value, out)
		}
	})
}
