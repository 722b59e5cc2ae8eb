package writebatch

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pair is a real loopback TCP connection: the server side through
// Listener, the client side plain.
func pair(t *testing.T) (server net.Conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := Listener(ln).Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestBytesArriveInOrderFromManyWrites(t *testing.T) {
	server, client := pair(t)
	var want bytes.Buffer
	for i := range 5000 {
		want.Write(bytes.Repeat([]byte{byte(i)}, 1+i%1500))
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	for b := want.Bytes(); len(b) > 0; {
		n := min(len(b), 1+len(b)%1500)
		if w, err := server.Write(b[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v; want %d, nil", w, err, n)
		}
		b = b[n:]
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), want.Len())
	}
}

// The writer's caller must not reuse-corrupt what is queued: Write copies.
func TestWriteCopiesItsArgument(t *testing.T) {
	server, client := pair(t)
	buf := []byte("first")
	server.Write(buf)
	copy(buf, "XXXXX")
	server.Write([]byte("second"))
	server.Close()
	b, _ := io.ReadAll(client)
	if string(b) != "firstsecond" {
		t.Fatalf("read %q", b)
	}
}

// What is queued when gRPC closes the connection (a GOAWAY, the last
// answers) still reaches the peer.
func TestCloseWritesWhatIsQueued(t *testing.T) {
	server, client := pair(t)
	payload := bytes.Repeat([]byte("goaway"), 50_000) // larger than the socket buffers
	if _, err := server.Write(payload); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("read %d bytes, want %d", len(b), len(payload))
	}
}

// A peer that stops reading holds the writer back (the queue is bounded)
// and doesn't hold Close up for long; later Writes fail.
func TestAPeerThatDoesNotReadBlocksWritesAndCloseEndsThem(t *testing.T) {
	server, _ := pair(t)
	chunk := make([]byte, 64<<10)
	blocked := make(chan error, 1)
	go func() {
		for {
			if _, err := server.Write(chunk); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// The writer fills the socket buffers and the queue, then waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := server.(*conn)
		c.mu.Lock()
		full := len(c.queued) >= maxQueued
		c.mu.Unlock()
		if full {
			break
		}
		if time.Now().After(deadline) {
			c := server.(*conn)
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("the queue never filled: %d bytes queued, error %v, closing %v", len(c.queued), c.err, c.closing)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	select {
	case err := <-blocked:
		t.Fatalf("Write returned %v while the queue is full; want it to wait", err)
	default:
	}
	closed := make(chan error, 1)
	go func() { closed <- server.Close() }()
	select {
	case <-closed:
	case <-time.After(closeDrain + 5*time.Second):
		t.Fatal("Close waited for a peer that never reads")
	}
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the waiting Write returned %v, want net.ErrClosed", err)
	}
	if _, err := server.Write([]byte("x")); err == nil {
		t.Fatal("a Write after Close succeeded")
	}
}

// A write error (the peer reset the connection) is returned by a later
// Write, never swallowed for good.
func TestAWriteErrorIsReturnedByALaterWrite(t *testing.T) {
	server, client := pair(t)
	client.(*net.TCPConn).SetLinger(0) // close with RST
	client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := server.Write(make([]byte, 4096)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}
}

// Writes from several goroutines (gRPC has one writer, but the handshake
// and Close come from others) are each kept whole.
func TestConcurrentWritesStayWhole(t *testing.T) {
	server, client := pair(t)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				server.Write(bytes.Repeat([]byte{byte('a' + w)}, 100))
			}
		}()
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	wg.Wait()
	server.Close()
	b := <-got
	if len(b) != writers*each*100 {
		t.Fatalf("read %d bytes, want %d", len(b), writers*each*100)
	}
	for i := 0; i < len(b); i += 100 {
		if !bytes.Equal(b[i:i+100], bytes.Repeat(b[i:i+1], 100)) {
			t.Fatalf("write at %d interleaved with another", i)
		}
	}
}

// BenchmarkSmallWrites is gRPC's pattern under load: many ~1.3 KB answers
// written one at a time, read by a peer as fast as it can.
func BenchmarkSmallWrites(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "batched"}[batched]
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				io.Copy(io.Discard, c)
			}()
			l := ln
			if batched {
				l = Listener(ln)
			}
			server, err := l.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer server.Close()
			answer := make([]byte, 1340)
			b.SetBytes(int64(len(answer)))
			for b.Loop() {
				server.Write(answer)
			}
		})
	}
}

// gated is a real connection whose first Write waits for open, as a write
// does while the kernel's buffer is full or the writer is descheduled; it
// counts the writes that reach the connection.
type gated struct {
	net.Conn
	open   chan struct{}
	mu     sync.Mutex
	writes int
}

func (g *gated) Write(b []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	g.writes++
	g.mu.Unlock()
	return g.Conn.Write(b)
}

// The point of the package: what is written while a write is under way
// leaves together in the next one, not one system call per answer.
func TestAnswersWrittenMeanwhileLeaveInOneWrite(t *testing.T) {
	raw, client := pair(t)
	g := &gated{Conn: raw.(*conn).Conn, open: make(chan struct{})}
	server := newConn(g)
	if _, err := server.Write([]byte("first|")); err != nil {
		t.Fatal(err)
	}
	// The flusher takes "first|" and waits in g.Write; everything after
	// it queues.
	deadline := time.Now().Add(10 * time.Second)
	for {
		server.mu.Lock()
		taken := len(server.queued) == 0
		server.mu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher never took the first write")
		}
		time.Sleep(time.Millisecond)
	}
	var want bytes.Buffer
	want.WriteString("first|")
	for i := range 100 {
		answer := bytes.Repeat([]byte{byte('A' + i%26)}, 1340)
		want.Write(answer)
		if _, err := server.Write(answer); err != nil {
			t.Fatal(err)
		}
	}
	close(g.open)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	server.Close()
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("read %d bytes, want %d in order", len(b), want.Len())
	}
	if g.writes != 2 {
		t.Fatalf("%d writes reached the connection, want 2 (the first, then the 100 queued meanwhile together)", g.writes)
	}
}
