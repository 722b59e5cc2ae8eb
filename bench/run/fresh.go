package main

import (
	"context"
	"fmt"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// credentialLife is how long a login's session or a token stays the thing
// its row names: the dev IdP's access tokens live 5 minutes (zitadel/oidc's
// example storage), and past that a session Check refreshes the session
// (a Set-Cookie h2load never returns, so every request refreshes again or
// is sent to log in) and a bearer Check answers 401. A full make bench
// runs for more than 20 minutes: rows measured later would measure those
// paths under the row's name.
const credentialLife = 5 * time.Minute

// renewMargin is the life a scenario's credentials must have left after
// the next load, or they are renewed before it.
const renewMargin = time.Minute

// cellBudget is the load time of one cell: rounds of a floor load and a
// scenario load, each d after h2load's one-second warm-up, and a few
// seconds for starting h2load and reading its log.
func cellBudget(rounds int, d time.Duration) time.Duration {
	return time.Duration(rounds)*2*(d+time.Second) + 5*time.Second
}

// fresh makes sure s's credentials outlive the next budget of load: when
// they would not, it logs in or gets tokens again (s.renew), checks the
// new request's answer and writes its frame.
func (s *scenario) fresh(budget time.Duration) error {
	if s.renew == nil || time.Since(s.since)+budget < credentialLife-renewMargin {
		return nil
	}
	req, err := s.renew()
	if err != nil {
		return fmt.Errorf("%s: new credentials: %w", s.name, err)
	}
	fmt.Fprintf(os.Stderr, "  %s: new credentials (the last ones were %v old)\n", s.name, time.Since(s.since).Round(time.Second))
	s.req, s.since, s.reason = req, time.Now(), ""
	return s.prepare()
}

// prepare checks the scenario's answer with a real gRPC client and writes
// its pre-encoded gRPC frame for h2load.
func (s *scenario) prepare() error {
	if err := s.verify(); err != nil {
		return err
	}
	return s.write()
}

// verify checks that s.req still gets the answer the row names. It runs
// before and after every cell: a row whose answer changed under load (an
// expired session, a revoked token) measured another path, and the run
// stops rather than report it.
func (s *scenario) verify() error {
	conn, err := grpc.NewClient(s.proc.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, s.req)
	if err != nil {
		return err
	}
	got := 0
	if resp.GetStatus().GetCode() != 0 {
		got = int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	if got != s.want {
		return fmt.Errorf("%s: answer %d, want %d (%v)", s.name, got, s.want, resp)
	}
	// The same answer for another reason is another path: a session
	// that had to be refreshed (session_renewed) is allowed too.
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if s.reason == "" {
		s.reason = reason
	} else if reason != s.reason {
		return fmt.Errorf("%s: answered for the reason %q, want %q", s.name, reason, s.reason)
	}
	return nil
}
