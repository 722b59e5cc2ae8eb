package oidcflow

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPClientDialingKeepsHostAndURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.URL.Path)
	}))
	defer srv.Close()
	client := NewHTTPClientDialing(5*time.Second, map[string]string{"idp.invalid:8080": strings.TrimPrefix(srv.URL, "http://")})
	resp, err := client.Get("http://idp.invalid:8080/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "idp.invalid:8080 /.well-known/openid-configuration" {
		t.Errorf("server saw %q, want the issuer's Host and path", body)
	}
	// Other hosts are dialled as they are.
	if _, err := client.Get("http://other.invalid:8080/"); err == nil {
		t.Error("a host without an override was dialled somewhere")
	}
}
