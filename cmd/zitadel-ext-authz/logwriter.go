package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
)

// Log output is batched: one line per denied request is a write(2) per
// request, which cost the unauthenticated scenarios of make bench about a
// fifth of their throughput. Lines reach the real writer within
// logFlushEvery, at logBatchBytes, at every Error line, and at exit. Warn
// lines are batched too: an IdP outage makes one per request (its 503).
const (
	logFlushEvery = 100 * time.Millisecond
	logBatchBytes = 32 << 10
)

type batchWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	pending bool
	timer   *time.Timer
}

func newBatchWriter(w io.Writer) *batchWriter {
	b := &batchWriter{w: w, buf: make([]byte, 0, logBatchBytes)}
	b.timer = time.AfterFunc(time.Hour, b.Flush)
	b.timer.Stop()
	return b
}

// Write buffers p (one log record: slog handlers write each record once).
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBatchBytes {
		return len(p), b.flushLocked()
	}
	if !b.pending {
		b.pending = true
		b.timer.Reset(logFlushEvery)
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (b *batchWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *batchWriter) flushLocked() error {
	b.pending = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// flushingHandler flushes the batch after every Error record, so failures
// show up at once.
type flushingHandler struct {
	slog.Handler
	out *batchWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelError {
		h.out.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.out}
}

// logUnit is the server's log output: a batch over stderr, the level a
// reload can change, and the logger on top. It starts first and stops
// last, so every unit's last line, and "stopped", get out.
type logUnit struct {
	out    *batchWriter
	level  *slog.LevelVar
	logger *slog.Logger
}

func newLogUnit(cfg *config.Config, stderr io.Writer) *logUnit {
	u := &logUnit{out: newBatchWriter(stderr), level: new(slog.LevelVar)}
	u.level.Set(cfg.LogLevel)
	u.logger = newLogger(cfg, u.level, u.out)
	return u
}

// newLogger logs to a batch over w; the caller flushes it at exit.
func newLogger(cfg *config.Config, level slog.Leveler, w *batchWriter) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(flushingHandler{h, w})
}

// Start does nothing: the batch flushes itself from the first line on.
func (u *logUnit) Start(context.Context) error { return nil }

// Stop writes what is buffered.
func (u *logUnit) Stop(context.Context) { u.out.Flush() }
