package main

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
)

// reloader re-reads the configuration when its file changes (or on SIGHUP)
// and applies without a restart: the apps (added, removed, changed; see
// wiring.SetApps), every per-app key at the top level (the default app),
// the cookie secrets and log_level. An invalid file is refused and the
// running configuration stays; changes to other keys are logged as
// needing a restart.
type reloader struct {
	args    []string
	getenv  func(string) string
	current *config.Config
	built   *wiring.Built
	level   *slog.LevelVar
	logger  *slog.Logger
	metrics *telemetry.Metrics
}

// settle is how long file events must stop before a reload: editors and
// Kubernetes ConfigMap updates write in several steps.
const settle = 250 * time.Millisecond

func (rl *reloader) run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Watch the directories, not the files: editors replace files, and
	// Kubernetes swaps a symlink (..data) to update a mounted ConfigMap or
	// Secret. The secret and key files the configuration names are watched
	// too, so a rotated secret applies without a restart.
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		rl.logger.Warn("config file not watched; reload with SIGHUP", "reason", err.Error())
	} else {
		defer watcher.Close()
	}
	watched := map[string]bool{} // files
	watch := func() {
		if watcher == nil {
			return
		}
		for _, f := range watchedFiles(rl.current) {
			if watched[f] {
				continue
			}
			watched[f] = true
			if err := watcher.Add(filepath.Dir(f)); err != nil {
				rl.logger.Warn("file not watched; reload with SIGHUP after changing it", "file", f, "reason", err.Error())
			}
		}
	}
	watch()
	var events chan fsnotify.Event
	var errs chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			rl.reload("SIGHUP")
			watch()
		case ev := <-events:
			if name, err := filepath.Abs(ev.Name); err == nil && watched[name] || filepath.Base(ev.Name) == "..data" {
				timer.Reset(settle)
			}
		case err := <-errs:
			rl.logger.Warn("config file watch", "reason", err.Error())
		case <-timer.C:
			rl.reload("file changed")
			watch()
		}
	}
}

// watchedFiles are the configuration file and the files its keys name,
// for every app.
func watchedFiles(cfg *config.Config) []string {
	abs := func(f string) string {
		if a, err := filepath.Abs(f); err == nil {
			return a
		}
		return filepath.Clean(f)
	}
	files := []string{abs(cfg.Path)}
	for _, f := range cfg.Files {
		files = append(files, abs(f))
	}
	for _, a := range cfg.Apps {
		for _, f := range a.Files {
			files = append(files, abs(f))
		}
	}
	return files
}

// reload applies the file's reloadable keys and apps, or refuses the file.
func (rl *reloader) reload(trigger string) {
	next, warnings, err := config.Load(rl.args, rl.getenv)
	if err != nil {
		rl.metrics.Reloaded(false)
		rl.logger.Error("configuration reload refused; the running configuration stays", "trigger", trigger, "error", err.Error())
		return
	}
	changed := rl.current.Changed(next)
	if len(changed) == 0 && !rl.current.AppsDiffer(next) {
		return
	}
	// The running configuration with the changes a reload applies (the key
	// table's reload column: global keys by their function, per-app keys
	// through their apps); the others keep their running values, so the
	// next diff still reports them until the process restarts.
	run := *rl.current
	run.Values = maps.Clone(rl.current.Values)
	restart := config.Reload(&run, next, changed)
	applied := slices.DeleteFunc(slices.Clone(changed), func(k string) bool { return slices.Contains(restart, k) })
	report, err := rl.built.SetApps(&run)
	if err != nil {
		rl.metrics.Reloaded(false)
		rl.logger.Error("configuration reload refused; the running configuration stays", "trigger", trigger, "error", err.Error())
		return
	}
	rl.level.Set(run.LogLevel)
	for _, w := range warnings {
		rl.logger.Warn(w)
	}
	headersChanged := !slices.Equal(config.HeaderNames(rl.current.RequestHeaders()), config.HeaderNames(run.RequestHeaders()))
	rl.current = &run
	rl.metrics.Reloaded(true)
	if headersChanged {
		logRequestHeaders(rl.logger, &run)
	}
	if len(applied) > 0 || len(report) > 0 {
		rl.logger.Info("configuration reloaded", "trigger", trigger, "applied", applied, "apps", report)
	}
	for _, k := range restart {
		rl.logger.Warn("configuration key changed; restart to apply it", "key", k)
	}
}
