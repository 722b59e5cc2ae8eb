package envoyproc_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
)

// The shipped file starts in the real Envoy with only addresses changed, and
// a route with ext_authz disabled reaches its cluster.
func TestStartsTheShippedConfig(t *testing.T) {
	echo := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("public ok")) })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go echo.Serve(ln)
	defer echo.Close()
	p, err := envoyproc.Start(envoyproc.Options{ExtAuthz: "127.0.0.1:1", OpsHTTP: "127.0.0.1:1", Echo: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	resp, err := http.Get(p.URL + "/public/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/public/x: %d, want the upstream's 200", resp.StatusCode)
	}
	// ext_authz server unreachable: status_on_error 503, upstream not reached.
	resp, err = http.Get(p.URL + "/private")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/private with the ext_authz server down: %d, want 503", resp.StatusCode)
	}
}
