package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// TempDir makes a temporary directory named PREFIX-PID-random and first
// removes the PREFIX-PID-* directories of processes that are gone: a demo
// or a test run that was SIGKILLed can't clean up after itself, and its
// directory holds a configuration with secrets and private keys. Each
// caller still removes its own directory when it ends.
func TempDir(prefix string) (string, error) {
	if err := RemoveStale(os.TempDir(), prefix); err != nil {
		return "", err
	}
	return os.MkdirTemp("", fmt.Sprintf("%s-%d-", prefix, os.Getpid()))
}

// RemoveStale removes dir's PREFIX-PID-* entries whose process no longer
// runs; those of running processes (and anything else) stay.
func RemoveStale(dir, prefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || running(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove a stale %s directory: %w", prefix, err)
		}
	}
	return nil
}

// running: a process with this pid exists (EPERM: it does, not ours).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
