package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // writes
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.n
}

func TestBatchedLogs(t *testing.T) {
	out := &lockedBuffer{}
	w := newBatchWriter(out)
	logger := slog.New(flushingHandler{slog.NewJSONHandler(w, nil), w})

	// Info lines are batched: 100 lines, not 100 writes, and all arrive
	// within the flush interval.
	for i := range 100 {
		logger.Info("not allowed", "i", i)
	}
	testkit.Eventually(t, 5*time.Second, "100 batched lines", func() bool {
		s, _ := out.String()
		return strings.Count(s, "not allowed") == 100
	})
	if _, n := out.String(); n > 2 {
		t.Errorf("100 lines took %d writes", n)
	}

	// An Error line goes out at once, with whatever was buffered before it.
	logger.Warn("before")
	logger.Error("problem")
	if s, _ := out.String(); !strings.Contains(s, "before") || !strings.Contains(s, "problem") {
		t.Errorf("Error did not flush: %s", s)
	}

	// A full batch goes out without waiting.
	big := strings.Repeat("x", logBatchBytes)
	logger.Info("big", "v", big)
	if s, _ := out.String(); !strings.Contains(s, big) {
		t.Error("a full batch was held back")
	}
}
