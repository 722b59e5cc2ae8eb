package integration_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// The findings of a black-box probe (issue "Findings of a black-box
// probe"), each through the server's own listeners or the front proxy.

// The operations listener (reachable from the internet for back-channel
// logout) closes a connection whose body trickles in past
// http_read_timeout, and a keep-alive connection idle past
// http_idle_timeout.
func TestOpsListenerClosesSlowAndIdleConnections(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"http_read_timeout": "1s", "http_idle_timeout": "1s"}})
	addr := st.Server.HTTPAddr

	// A declared 65 KB body sent a byte every 100 ms would take 6.5 s.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /oauth2/backchannel_logout HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 65000\r\n\r\n", addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := slow.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	if !closedWithin(slow, 4*time.Second) {
		t.Error("a body trickling in stayed open past http_read_timeout (1s)")
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(idle, 4*time.Second) {
		t.Error("an idle keep-alive connection stayed open past http_idle_timeout (1s)")
	}
}

// closedWithin reads from c until the server closes it or d passes.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// rawCodec sends bytes as they are, so a test can send what proto.Marshal
// refuses to write; answers are decoded as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// checkRaw sends wire bytes as a CheckRequest to the server's gRPC
// listener (no Envoy: direct callers and older Envoys don't sanitise).
func checkRaw(t *testing.T, s *server, wire []byte) (*authv3.CheckResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var resp authv3.CheckResponse
	err = conn.Invoke(t.Context(), "/envoy.service.auth.v3.Authorization/Check", wire, &resp)
	return &resp, err
}

// A CheckRequest with invalid UTF-8 in a string, or broken protobuf, is a
// Denied 400, counted and logged: never a gRPC error, which Envoy with
// failure_mode_allow would let through.
func TestUndecodableCheckRequestIsDenied(t *testing.T) {
	st := startStack(t, stackOptions{})
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/", Host: "app.example", Headers: map[string]string{"x-probe": "\x01\x02"}}}}}
	valid, _ := proto.Marshal(req)
	invalid := []byte(strings.Replace(string(valid), "\x01\x02", "\xff\xfe", 1))
	for name, tc := range map[string]struct {
		wire   []byte
		reason string
	}{
		"invalid UTF-8": {invalid, "invalid_utf8"},
		"truncated":     {valid[:len(valid)-2], "malformed_request"},
	} {
		resp, err := checkRaw(t, st.Server, tc.wire)
		if err != nil {
			t.Fatalf("%s: gRPC error %v, want a Denied answer", name, err)
		}
		if resp.GetDeniedResponse().GetStatus().GetCode() != 400 {
			t.Errorf("%s: %v, want Denied 400", name, resp)
		}
		waitFor(t, "the "+tc.reason+" log line and metric", func() bool {
			return strings.Contains(st.Server.Logs(), `"reason":"`+tc.reason+`"`) &&
				strings.Contains(scrape(t, st.Server), `zitadel_ext_authz_checks_total{app="none",decision="error",reason="`+tc.reason+`"} 1`)
		})
	}
}

// 18,000 values of one header in header_map (Envoy's encode_raw_headers),
// 3.6 MB in all, are joined once: the Check costs the server milliseconds
// of CPU, where joining one value at a time took seconds.
func TestRepeatedHeadersCostLinearTime(t *testing.T) {
	st := startStack(t, stackOptions{})
	value := strings.Repeat("v", 200)
	hm := &corev3.HeaderMap{}
	for range 18000 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "x-r", Value: value})
	}
	hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: ":authority", Value: "app.example"})
	wire, err := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/", Host: "app.example", HeaderMap: hm}}}})
	if err != nil {
		t.Fatal(err)
	}
	before := cpuSeconds(t, st.Server)
	resp, err := checkRaw(t, st.Server, wire)
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("Check: %v %v, want the 401 an API caller without a token gets", resp, err)
	}
	used := cpuSeconds(t, st.Server) - before
	t.Logf("one Check with 18,000 repeated headers: %.2f s of the server's CPU", used)
	if used > 1 {
		t.Errorf("one Check with 18,000 repeated headers used %.2f s of the server's CPU", used)
	}
}

// cpuSeconds is the server's process_cpu_seconds_total.
func cpuSeconds(t *testing.T, s *server) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^process_cpu_seconds_total (\S+)$`).FindStringSubmatch(scrape(t, s))
	if m == nil {
		t.Fatal("/metrics has no process_cpu_seconds_total")
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// A flood of forged logout tokens, each with a 40,000-character kid,
// can't grow the log: refusals are short Info lines, a few a second, and
// the metric counts every one.
func TestForgedLogoutFloodKeepsTheLogSmall(t *testing.T) {
	st := startStack(t, stackOptions{})
	enc := base64.RawURLEncoding.EncodeToString
	forged := enc([]byte(`{"alg":"RS256","kid":"`+strings.Repeat("k", 40000)+`"}`)) + "." +
		enc([]byte(`{"iss":"x","sub":"alice","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`)) + "." + enc([]byte("sig"))
	logBefore := len(st.Server.Logs())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				resp, err := http.PostForm("http://"+st.Server.HTTPAddr+"/oauth2/backchannel_logout", url.Values{"logout_token": {forged}})
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("forged logout token: %d, want 400", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "200 refusals counted", func() bool {
		return strings.Contains(scrape(t, st.Server), `zitadel_ext_authz_backchannel_logouts_total{outcome="invalid_logout_token"} 200`)
	})
	grown := st.Server.Logs()[logBefore:]
	if len(grown) > 20_000 {
		t.Errorf("200 forged logouts added %d bytes to the log", len(grown))
	}
	for line := range strings.SplitSeq(grown, "\n") {
		if !strings.Contains(line, "back-channel logout refused") {
			continue
		}
		if len(line) > 1000 || !strings.Contains(line, `"level":"INFO"`) {
			t.Errorf("refusal line (%d bytes): %.300s", len(line), line)
		}
	}
}

// A return URL that decodes to invalid UTF-8 is refused like any other
// bad rd: the login starts and comes back to "/".
func TestReturnURLWithInvalidUTF8(t *testing.T) {
	st := startStack(t, stackOptions{})
	alice := newBrowser(t, "alice", "alice-password")
	resp, hops := alice.follow(st.Front.URL + "/oauth2/start?rd=%2F%FF")
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login with rd=%%2F%%FF: %s via %v", describe(resp), hops)
	}
	if got := upstreamSaw(t, resp); got.Path != "/" {
		t.Errorf("came back to %q, want /", got.Path)
	}
}
