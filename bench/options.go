package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// Option configures what a Config cannot hold.
type Option func(*Runner) error

// WithClient sets the CVAT client. Strategies that need per-run setup (Preparer) receive it.
func WithClient(c *cvat.Client) Option {
	return func(r *Runner) error {
		if c == nil {
			return errors.New("nil cvat client")
		}
		r.api, r.client = c, c
		return nil
	}
}

// WithAPI sets the client as an interface, for fakes; strategies implementing Preparer then cannot run.
func WithAPI(api API) Option {
	return func(r *Runner) error {
		if api == nil {
			return errors.New("nil api")
		}
		r.api = api
		return nil
	}
}

// WithClock replaces the real clock.
func WithClock(c Clock) Option {
	return func(r *Runner) error {
		if c == nil {
			return errors.New("nil clock")
		}
		r.clock = c
		return nil
	}
}

// WithObserver receives live events, e.g. for Prometheus metrics.
func WithObserver(o Observer) Option {
	return func(r *Runner) error {
		if o == nil {
			return errors.New("nil observer")
		}
		r.observer = o
		return nil
	}
}

// WithGroundTruth sets where jobs-visible times come from (the emulator's timeline) instead of the estimate
// from the server's finished_date.
func WithGroundTruth(g GroundTruth) Option {
	return func(r *Runner) error {
		r.groundTruth = g
		return nil
	}
}

// WithProgress writes a one-line progress display (carriage return, no newline until the end) to w, for a
// terminal.
func WithProgress(w io.Writer) Option {
	return func(r *Runner) error {
		r.progress = w
		return nil
	}
}

// WithProgressLines writes progress to w as plain lines, at most one per every (and the last), for a log file
// or a CI log, where carriage-return updates would make one endless line.
func WithProgressLines(w io.Writer, every time.Duration) Option {
	return func(r *Runner) error {
		if every <= 0 {
			return fmt.Errorf("progress interval %v must be positive", every)
		}
		r.progress, r.progressEvery = w, every
		return nil
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(r *Runner) error {
		if l == nil {
			return errors.New("nil logger")
		}
		r.log = l
		return nil
	}
}

// WithVersion records the tool version and commit in meta.json.
func WithVersion(version, commit string) Option {
	return func(r *Runner) error {
		r.version, r.commit = version, commit
		return nil
	}
}

// WithEmulatorTerms records the embedded emulator's profile (a profile file's JSON) in meta.json.
func WithEmulatorTerms(profileFile json.RawMessage) Option {
	return func(r *Runner) error {
		if !json.Valid(profileFile) {
			return errors.New("emulator terms are not valid JSON")
		}
		r.emulatorTerms = profileFile
		return nil
	}
}

// WithFaultCounts records in meta.json how many faults the embedded emulator injected (its FaultCounts).
func WithFaultCounts(counts func() map[string]int) Option {
	return func(r *Runner) error {
		r.faultCounts = counts
		return nil
	}
}

// WithPingClock makes the run estimate the clock offset once, before the first trial, from webhook pings
// received on listen (PingOffset), instead of per trial from the upload call. publicURL, if set, is where the
// server posts. If the pings fail the run falls back on the per-trial estimate and says so in meta.json.
func WithPingClock(listen, publicURL string) Option {
	return func(r *Runner) error {
		if listen == "" {
			return errors.New("ping clock: empty listen address")
		}
		r.pingListen, r.pingURL = listen, publicURL
		return nil
	}
}

// WithStrategy replaces the strategy of the bare spec s.Name(), which must be in Config.Strategies.
func WithStrategy(s strategies.Strategy) Option {
	return func(r *Runner) error {
		if s == nil || !slices.Contains(r.cfg.Strategies, s.Name()) {
			return fmt.Errorf("strategy override %v is not among the configured strategies", s)
		}
		r.strats[s.Name()] = s
		return nil
	}
}
