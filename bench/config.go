// Package bench runs the cvatbench workload: it creates CVAT tasks, attaches images, lets a wait strategy find
// the job IDs, and records one record.Trial per task plus HdrHistograms per strategy.
//
// The package knows nothing about flags or terminals beyond an optional progress writer: cmd/cvatbench turns
// flags into a Config, and report renders what the runner wrote to disk.
package bench

import (
	"errors"
	"fmt"
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
		Strategies:       strategies.Names(),
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
	for _, s := range c.Strategies {
		if !slices.Contains(known, s) {
			errs = append(errs, fmt.Errorf("unknown strategy %q (known: %s)", s, strings.Join(known, ", ")))
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
	if slices.Contains(c.Strategies, "webhook") {
		errs = append(errs, strategies.CheckWebhookAddress(c.WebhookListen, c.WebhookURL))
	}
	return errors.Join(errs...)
}
