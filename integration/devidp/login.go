package devidp

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// LoginForm walks the IdP side of the code flow as a browser without
// JavaScript would: it opens authURL, submits username and password to the
// login form, the current one-time code when the user has a second factor
// (and "Not now" when the IdP offers to add one), and returns the redirect
// back to the client (the callback URL with code and state, or with
// error). client must not follow redirects.
func LoginForm(client *http.Client, authURL, username, password string) (*url.URL, error) {
	loc, err := redirect(client, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	id := loc.Query().Get("authRequestID")
	if id == "" {
		return loc, nil // the IdP answered the client directly (e.g. an error)
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	loc, err = redirect(client, http.MethodPost, loc.Scheme+"://"+loc.Host+"/login/username", form)
	if err != nil {
		return nil, fmt.Errorf("login form: %w", err)
	}
	for range 5 {
		if !strings.HasPrefix(loc.String(), "http://"+hostOf(authURL)) {
			return loc, nil
		}
		if loc.Path == "/login/otp" {
			form := OTPForm(loc.Query().Get("id"), username, time.Now())
			if loc, err = redirect(client, http.MethodPost, loc.Scheme+"://"+loc.Host+"/login/otp", form); err != nil {
				return nil, fmt.Errorf("one-time code: %w", err)
			}
			continue
		}
		if loc, err = redirect(client, http.MethodGet, loc.String(), nil); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("too many redirects inside the IdP")
}

// OTPForm is the second step's form for sign-in id: username's current
// code, and "not now", which the IdP reads only where it offers to add a
// second factor: a user who has one signs in with it, one who hasn't goes
// on without adding one (tests that add one say so themselves).
func OTPForm(id, username string, now time.Time) url.Values {
	return url.Values{"id": {id}, "code": {OTPCode(OTPSecret(username), now)}, "skip": {"1"}}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func redirect(client *http.Client, method, target string, form url.Values) (*url.URL, error) {
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequest(method, target, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, target, nil)
	}
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("%s %s: status %d, want a redirect (wrong password?)", method, req.URL.Path, resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, err
	}
	return loc, nil
}
