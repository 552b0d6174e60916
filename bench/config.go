// Package bench runs the cvatbench workload: it creates CVAT tasks, attaches images, lets a wait strategy find
// the job IDs, and records one record.Trial per task plus HdrHistograms per strategy.
//
// The package knows nothing about flags or terminals beyond an optional progress writer: cmd/cvatbench turns
// flags into a Config, and report renders what the runner wrote to disk.
package bench

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/strategies"
)

// Config is everything that defines a run (record.Config: it is echoed into meta.json).
type Config = record.Config

// DefaultConfig returns the configuration `cvatbench run` uses without flags: every registered strategy on the
// embedded emulator.
func DefaultConfig() Config {
	p := strategies.DefaultParams()
	return Config{
		Strategies:       strategies.Defaults(),
		TasksPerStrategy: record.DefaultTasksPerStrategy,
		Concurrency:      record.DefaultConcurrency,
		Images:           record.DefaultImages,
		ImageSize:        record.DefaultImageSize,
		ImageFormat:      record.DefaultImageFormat,
		ImageQualities:   []int{record.DefaultImageQuality},
		SegmentSizes:     []int{record.DefaultSegmentSize},
		Seed:             record.DefaultSeed,
		Timeout:          record.DefaultTimeout,
		UploadMode:       record.DefaultUploadMode,
		SimProfile:       "cvat-default",
		OutDir:           record.DefaultOutDir,
		PollInterval:     p.PollInterval,
		SDKPeriod:        p.SDKPeriod,
		CLIPeriod:        p.CLIPeriod,
		BackoffInitial:   p.BackoffInitial,
		BackoffMax:       p.BackoffMax,
		BackoffFactor:    p.BackoffFactor,
		BackoffJitter:    p.BackoffJitter,
		SafetyPoll:       p.SafetyPoll,
		WebhookListen:    p.WebhookListen,
		WebhookURL:       p.WebhookURL,
	}
}

// strategyParams returns the strategy parameters of c.
func strategyParams(c Config) strategies.Params {
	return strategies.Params{
		PollInterval: c.PollInterval, SDKPeriod: c.SDKPeriod, CLIPeriod: c.CLIPeriod,
		BackoffInitial: c.BackoffInitial, BackoffMax: c.BackoffMax, SafetyPoll: c.SafetyPoll,
		BackoffFactor: c.BackoffFactor, BackoffJitter: c.BackoffJitter, Seed: c.Seed,
		WebhookListen: c.WebhookListen, WebhookURL: c.WebhookURL,
	}
}

// Validate reports every problem of c at once (errors.Join): the strategies it names must be registered and
// the webhook receiver's address must work, besides what Config.Validate checks. Nothing is clamped.
func Validate(c Config) error {
	var errs []error
	known := strategies.Names()
	if len(c.Strategies) == 0 {
		errs = append(errs, fmt.Errorf("no strategies given (known: %s)", strings.Join(known, ", ")))
	}
	effective := map[string]string{}
	receivers := 0
	for _, s := range c.Strategies {
		sp, err := strategies.ParseSpec(s, strategyParams(c))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := strategies.New(s, strategyParams(c)); err != nil {
			errs = append(errs, err)
		}
		if first, dup := effective[sp.Effective]; dup && first != s {
			errs = append(errs, fmt.Errorf("strategies %q and %q are the same configuration (%s)", first, s, sp.Effective))
		}
		effective[sp.Effective] = s
		if sp.Name == "webhook" {
			receivers++
		}
	}
	for _, s := range c.Strategies {
		need := strategies.NeedsWhatIf(s)
		switch {
		case need == "":
		case c.Target != "":
			errs = append(errs, fmt.Errorf("strategy %s needs the emulator's what-if %s: no CVAT release behaves so, so it "+
				"does not run against a server", s, need))
		case !slices.Contains(strings.Split(c.SimWhatIf, ","), need):
			errs = append(errs, fmt.Errorf("strategy %s needs --sim-what-if %s (an emulator what-if: no CVAT release "+
				"pre-allocates job IDs)", s, need))
		}
	}
	for _, s := range c.Strategies {
		if strategies.ProjectLevel(s) && c.Batch == 0 {
			errs = append(errs, fmt.Errorf("strategy %s waits for a batch of tasks: it needs --batch", s))
		}
		if strategies.BaseName(s) == "project-webhook" && c.Concurrency > 1 {
			if _, port, err := net.SplitHostPort(c.WebhookListen); err == nil && port != "0" {
				errs = append(errs, fmt.Errorf("strategy %s opens a receiver per batch and %d batches run at once, but the "+
					"webhook listen address %s fixes the port: use port 0", s, c.Concurrency, c.WebhookListen))
			}
		}
	}
	if c.SimWhatIf != "" && c.Target != "" {
		errs = append(errs, fmt.Errorf("what-if %q is an emulator behaviour: it needs the embedded emulator, not --url", c.SimWhatIf))
	}
	if receivers > 1 {
		if _, port, err := net.SplitHostPort(c.WebhookListen); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("%d webhook strategies need a receiver each, but the webhook listen address %s fixes the port: "+
				"use port 0", receivers, c.WebhookListen))
		}
	}
	if c.RunID != "" {
		if id, ok := LeftoverRunID(NamePrefix + c.RunID); !ok || id != c.RunID {
			errs = append(errs, fmt.Errorf("run id %q is not of the form 20261203T120000Z-1a2b (a UTC time and at least 4 hex digits), "+
				"which cleanup relies on", c.RunID))
		}
	}
	errs = append(errs, c.Validate())
	// The webhook receiver's address would otherwise fail only in Prepare, after the run's set-up.
	if usesStrategy(c, "webhook") || usesStrategy(c, "project-webhook") {
		errs = append(errs, strategies.CheckWebhookAddress(c.WebhookListen, c.WebhookURL))
	}
	return errors.Join(errs...)
}

// usesStrategy reports whether any spec of c names the registered strategy name.
func usesStrategy(c Config, name string) bool {
	return slices.ContainsFunc(c.Strategies, func(s string) bool { return strategies.BaseName(s) == name })
}

// Canonical returns c with every strategy spec that parses in its canonical spelling ("poll:interval=0.025s"
// becomes "poll:interval=25ms"), the names its rows, files and metrics carry. Specs that do not parse are
// left for Validate to report.
func Canonical(c Config) Config {
	c.Strategies = slices.Clone(c.Strategies)
	for i, s := range c.Strategies {
		if sp, err := strategies.ParseSpec(s, strategyParams(c)); err == nil {
			c.Strategies[i] = sp.Canonical
		}
	}
	return c
}
