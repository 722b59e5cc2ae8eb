package integration_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// The dev IdP's second factor is a real step, as ZITADEL's: after the
// password alice types her one-time code; a wrong one or none gets no code
// for the client; pat, who has none, may add one when a route asks for it,
// and is then let into /admin/.
func TestDevIdPSecondFactor(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"step_up_acr_values": "urn:zitadel:iam:mfa"}})
	idpHost := mustParse(t, st.IdP.Issuer).Host

	// alice up to the code form.
	alice := newBrowser(t, "alice", "alice-password")
	r := alice.get(st.Front.URL + "/admin/panel")
	toIdP, _ := r.Location()
	r = alice.get(toIdP.String())
	form, _ := r.Location()
	r = alice.submitLogin(form)
	otp, _ := r.Location()
	if r.StatusCode != http.StatusFound || otp.Path != "/login/otp" {
		t.Fatalf("alice's password: %s, want the one-time code step", describe(r))
	}
	id := otp.Query().Get("id")
	if page := alice.get("http://" + idpHost + otp.RequestURI()); !strings.Contains(page.Body, "Enter your one-time code") {
		t.Fatalf("the code form: %s", describe(page))
	}
	// Skipping the step gets nothing.
	if r := alice.get("http://" + idpHost + "/auth/callback?id=" + url.QueryEscape(id)); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/otp") {
		t.Fatalf("the callback without the code: %s, want back to the code form", describe(r))
	}
	if r := alice.postForm("http://"+idpHost+"/login/otp", url.Values{"id": {id}, "code": {"000000"}}); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "not right") {
		t.Fatalf("a wrong code: %s, want the form again", describe(r))
	}
	r = alice.postForm("http://"+idpHost+"/login/otp", url.Values{"id": {id}, "code": {devidp.OTPCode(devidp.OTPSecret("alice"), time.Now())}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("the right code: %s", describe(r))
	}
	resp, _ := alice.follow("http://" + idpHost + r.Header.Get("Location"))
	if saw := upstreamSaw(t, resp); saw.Path != "/admin/panel" {
		t.Fatalf("alice after her code: %+v", saw)
	}

	// pat has no second factor: /admin/ sends him to sign in with one, and
	// the dev IdP offers to add one.
	pat := newBrowser(t, "pat", "pat-password")
	upstreamSaw(t, st.login(t, pat, "/"))
	r = pat.get(st.Front.URL + "/admin/panel")
	r = pat.get(nextLink(t, r))
	form, _ = r.Location()
	r = pat.submitLogin(form)
	otp, _ = r.Location()
	page := pat.get("http://" + idpHost + otp.RequestURI())
	if !strings.Contains(page.Body, "Add a second factor") || !strings.Contains(page.Body, devidp.OTPSecret("pat")) {
		t.Fatalf("pat's step-up: %s, want the offer to add a second factor with his key", describe(page))
	}
	r = pat.postForm("http://"+idpHost+"/login/otp", url.Values{"id": {otp.Query().Get("id")}, "code": {devidp.OTPCode(devidp.OTPSecret("pat"), time.Now())}})
	resp, _ = pat.follow("http://" + idpHost + r.Header.Get("Location"))
	if saw := upstreamSaw(t, resp); saw.Path != "/admin/panel" {
		t.Fatalf("pat after adding a second factor: %+v", saw)
	}
}
