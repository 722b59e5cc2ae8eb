package integration_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// chromiumPath finds Debian's Chromium. CI installs it (.ci/run); outside CI
// a machine without it skips this one test with a clear message.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run must apt-get install chromium")
	}
	t.Skip("chromium not installed (apt-get install -y chromium); CI always runs this test")
	return ""
}

// A real browser: open a protected page, fill the IdP's login form, land on
// the echo page with x-forwarded-user.
func TestChromiumLogin(t *testing.T) {
	exe := chromiumPath(t)
	st := startStack(t, stackOptions{})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	err := chromedp.Do(ctx,
		chromedp.Navigate(st.Front.URL+"/hello?from=chromium"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		// alice's second factor: the dev IdP asks for her one-time code
		// (what her authenticator app would show).
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), devidp.OTPCode(devidp.OTPSecret("alice"), time.Now())),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("headers")),
	)
	if err != nil {
		t.Fatalf("chromium login: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("headers")))
	if err != nil {
		t.Fatalf("read the echo page: %v", err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if location != st.Front.URL+"/hello?from=chromium" {
		t.Errorf("landed on %s, want the page first opened", location)
	}
	for _, want := range []string{"x-forwarded-user", "user-alice", "x-forwarded-email", "alice@example.com", "x-forwarded-groups", "admin,reader"} {
		if !strings.Contains(table, want) {
			t.Errorf("echo page lacks %q:\n%s", want, table)
		}
	}
}
