package oidcflow_test

import (
	"log/slog"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The dev IdP's example router logs every request through slog.Default.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
