package integration_test

import (
	"log/slog"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer = testkit.Buffer

func newTestLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
