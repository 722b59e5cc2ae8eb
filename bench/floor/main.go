// Command floor is the performance floor for make bench: a bare Envoy
// ext_authz gRPC server on the same gRPC stack as zitadel-ext-authz that
// answers every Check with OK and one upstream header. Nothing can answer a
// Check faster through grpc-go, so each scenario is reported as a ratio to it.
//
// With -http it answers Envoy's HTTP ext_authz instead (200 and the same
// header, net/http): make bench's Envoy section puts both behind Envoy, as
// the least any ext_authz server can cost there over each transport.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
)

type floor struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (f *floor) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return f.resp, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	httpAuthz := flag.Bool("http", false, "answer Envoy's HTTP ext_authz (http_service) instead of gRPC")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	if *httpAuthz {
		fmt.Println("listening", ln.Addr())
		// 200 allows; Envoy copies the headers its allowed_upstream_headers name.
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("x-forwarded-user", "floor")
		}))
		return
	}
	// The same stack as ours: stream workers and batched writes
	// (wiring), so a ratio to the floor is what Check itself costs.
	s := grpc.NewServer(wiring.StackOptions()...)
	authv3.RegisterAuthorizationServer(s, &floor{resp: &authv3.CheckResponse{
		Status: &status.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
			{Header: &corev3.HeaderValue{Key: "x-forwarded-user", Value: "floor"}, Append: wrapperspb.Bool(false)},
		}}},
	}})
	fmt.Println("listening", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); s.GracefulStop() }()
	_ = wiring.ServeGRPC(s, ln)
}
