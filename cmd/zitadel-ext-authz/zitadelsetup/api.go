package zitadelsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// The Management API client: waiting for ZITADEL, one call with its errors.

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitForZitadel retries until the PAT file exists and GET /orgs/me
// answers 200 with it, or o.Wait passes.
func waitForZitadel(ctx context.Context, o Options) (*api, error) {
	deadline := time.Now().Add(o.Wait)
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		a, err := tryZitadel(ctx, o)
		if err == nil {
			return a, nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ZITADEL not ready after %s: %w", o.Wait, err)
		}
		o.Logger.Info("waiting for ZITADEL", "attempt", attempt, "reason", err.Error())
		if err := o.Sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func tryZitadel(ctx context.Context, o Options) (*api, error) {
	pat, err := os.ReadFile(o.PATFile)
	if err != nil {
		return nil, fmt.Errorf("personal access token: %w", err)
	}
	token := strings.TrimSpace(string(pat))
	if token == "" {
		return nil, fmt.Errorf("personal access token: %s is empty", o.PATFile)
	}
	a := &api{base: strings.TrimSuffix(o.Issuer, "/") + "/management/v1", token: token, client: o.HTTPClient}
	var org struct {
		Org struct {
			ID string `json:"id"`
		} `json:"org"`
	}
	if err := a.call(ctx, http.MethodGet, "/orgs/me", nil, &org); err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			// A PAT that ZITADEL refuses won't start working by waiting.
			return nil, &permanentError{fmt.Errorf("ZITADEL refused the personal access token in %s: %w", o.PATFile, err)}
		}
		return nil, err
	}
	return a, nil
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// api is a Management API v1 client.
type api struct {
	base   string
	token  string
	client *http.Client
}

type statusError struct {
	method, path string
	code         int
	message      string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.code, e.message)
}

func (a *api) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
			if len(e.Message) > 200 {
				e.Message = e.Message[:200]
			}
		}
		return &statusError{method: method, path: path, code: resp.StatusCode, message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
