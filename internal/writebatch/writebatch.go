// Package writebatch batches a connection's writes: Write queues the bytes
// and returns, and one goroutine per connection writes everything queued
// in one system call. grpc-go writes each answer (or the few that finished
// together) with its own write when an answer is larger than 1,000 bytes
// (its loopy writer batches only smaller ones): under load that is one
// system call per Check for the writer and one wake-up per Check for the
// reader (Envoy). With this, the answers that finish while a write is in
// the kernel leave together in the next one.
package writebatch

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// maxQueued bounds the bytes queued per connection: a Write beyond it
// waits for the kernel to take what is queued (a peer that doesn't read
// holds its writers back instead of growing the queue).
const maxQueued = 256 << 10

// closeDrain bounds how long Close waits for queued bytes (a GOAWAY, the
// last answers) to reach a peer that has stopped reading.
const closeDrain = time.Second

// Listener wraps l: every accepted connection batches its writes.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newConn(c), nil
}

// conn queues writes for its flusher goroutine.
type conn struct {
	net.Conn
	mu      sync.Mutex
	cond    sync.Cond
	queued  []byte // bytes to write next
	spare   []byte // the buffer being written, reused for the next batch
	err     error  // the first write error: every later Write returns it
	closing bool
	done    chan struct{} // the flusher ended
}

func newConn(c net.Conn) *conn {
	w := &conn{Conn: c, done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.flush()
	return w
}

// Write queues b (copied) and returns; an earlier write's error is
// returned instead.
func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.queued) >= maxQueued {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.queued = append(c.queued, b...)
	c.cond.Broadcast()
	return len(b), nil
}

// flush writes what is queued, batch after batch, until Close.
func (c *conn) flush() {
	defer close(c.done)
	c.mu.Lock()
	for {
		for len(c.queued) == 0 && !c.closing && c.err == nil {
			c.cond.Wait()
		}
		if len(c.queued) == 0 || c.err != nil {
			c.mu.Unlock()
			return
		}
		if !c.closing {
			// Let the goroutines that are ready (the Checks finishing
			// now, gRPC's writer) add their answers to this batch first:
			// being woken by a Write, the flusher would otherwise run
			// before them and write one answer at a time.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		batch := c.queued
		c.queued = c.spare[:0]
		c.cond.Broadcast() // the queue has room again: waiting writers go on
		c.mu.Unlock()
		_, err := c.Conn.Write(batch)
		c.mu.Lock()
		if cap(batch) <= maxQueued*2 {
			c.spare = batch[:0]
		}
		if err != nil {
			c.err = err
		}
		c.cond.Broadcast()
	}
}

// Close writes what is queued (for at most closeDrain), then closes.
func (c *conn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeDrain))
	<-c.done
	return c.Conn.Close()
}
