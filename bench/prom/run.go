package prom

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/prometheus/client_golang/prometheus"
)

// Quantiles are the quantiles of cvatbench_run_time_to_jobs_seconds as Prometheus fractions. This is the only
// list: HDR is asked for q*100 (it takes percent), never the reverse (99.9/100 is 0.9990000000000001 and would
// miss quantile="0.999").
var Quantiles = []float64{0.5, 0.9, 0.99, 0.999}

// RunInfo describes a finished run for the end-of-run gauges.
type RunInfo struct {
	Duration          time.Duration // wall clock of the whole run
	CompletedAt       time.Time     // when the run ended
	ThresholdFailures int           // thresholds the run violated
	Success           bool          // the run completed and passed its thresholds
}

// Run holds the end-of-run metrics of one finished run, computed once from the raw records. Its collectors
// are read-only and safe for concurrent use.
type Run struct {
	info  RunInfo
	build BuildInfo
	strat map[string]*runStrategy
}

type runStrategy struct {
	h        *hdrhistogram.Histogram // end-to-end ns of ok trials
	sum      float64                 // exact sum of the recorded values, seconds
	overflow int                     // values outside the histogram range
}

// NewRun builds the end-of-run metrics from records: per strategy, the end-to-end times of its ok trials go
// into one HDR histogram (record.NewHistogram). Strategies whose trials all failed still appear, with a zero
// count and NaN quantiles.
func NewRun(records []record.Trial, info RunInfo, build BuildInfo) *Run {
	r := &Run{info: info, build: build, strat: map[string]*runStrategy{}}
	for _, rec := range records {
		s := r.strat[rec.Strategy]
		if s == nil {
			s = &runStrategy{h: record.NewHistogram()}
			r.strat[rec.Strategy] = s
		}
		if rec.Result != record.ResultOK || rec.EndToEndMs == nil {
			continue
		}
		ns := int64(math.Round(*rec.EndToEndMs * float64(time.Millisecond)))
		if err := s.h.RecordValue(ns); err != nil {
			s.overflow++ // out of range: counted, never silently folded into the quantiles
			continue
		}
		s.sum += float64(ns) / 1e9
	}
	return r
}

// Strategies returns the strategies of the run, sorted.
func (r *Run) Strategies() []string { return slices.Sorted(maps.Keys(r.strat)) }

// Overflow returns how many end-to-end times of strategy fell outside the HDR range and are missing from the
// summary.
func (r *Run) Overflow(strategy string) int {
	if s := r.strat[strategy]; s != nil {
		return s.overflow
	}
	return 0
}

// Collector returns the end-of-run metrics of strategy with constLabels on every series. Pushing passes nil:
// strategy and target are then the grouping key, and a pushed series carrying them as labels would be
// rejected. Serving or a textfile passes {"strategy": s} (and "target"), so strategies stay apart.
func (r *Run) Collector(strategy string, constLabels prometheus.Labels) (prometheus.Collector, error) {
	s := r.strat[strategy]
	if s == nil {
		return nil, fmt.Errorf("no trials of strategy %q in this run", strategy)
	}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, constLabels) }
	return &runCollector{
		run: r, s: s,
		summary:     d(NameRunTimeToJobs, "Exact HDR quantiles of the time to job IDs of the run's ok trials."),
		duration:    d(NameRunDuration, "Wall-clock duration of the whole run."),
		completion:  d(NameRunLastCompletion, "When the run ended, successful or not."),
		success:     d(NameRunLastSuccess, "When the run last ended successfully; absent from a failed run's push, so the previous value stays."),
		thresholds:  d(NameRunThresholdFailure, "Thresholds the run violated."),
		withSuccess: r.info.Success,
	}, nil
}

// Registry returns a new registry holding the end-of-run metrics of strategy, without strategy or target
// labels, plus cvatbench_build_info: what Push sends for one group.
func (r *Run) Registry(strategy string) (*prometheus.Registry, error) {
	c, err := r.Collector(strategy, nil)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	if err := reg.Register(newBuildInfo(r.build, nil)); err != nil {
		return nil, err
	}
	return reg, nil
}

// RegisterLabelled registers the end-of-run metrics of every strategy on reg with strategy, and the given
// extra const labels (e.g. target), as labels: the form for a served endpoint or a textfile, where one
// registry holds all strategies.
func (r *Run) RegisterLabelled(reg prometheus.Registerer, extra prometheus.Labels) error {
	for _, name := range r.Strategies() {
		c, err := r.Collector(name, mergeLabels(extra, prometheus.Labels{"strategy": name}))
		if err != nil {
			return err
		}
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register run metrics of %s: %w", name, err)
		}
	}
	return nil
}

type runCollector struct {
	run                                                *Run
	s                                                  *runStrategy
	summary, duration, completion, success, thresholds *prometheus.Desc
	withSuccess                                        bool
}

func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.summary
	ch <- c.duration
	ch <- c.completion
	if c.withSuccess {
		ch <- c.success
	}
	ch <- c.thresholds
}

func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.h.TotalCount()
	q := make(map[float64]float64, len(Quantiles))
	for _, f := range Quantiles {
		if n == 0 {
			q[f] = math.NaN() // Prometheus' convention for a summary without observations
			continue
		}
		q[f] = float64(c.s.h.ValueAtQuantile(f*100)) / 1e9
	}
	ch <- prometheus.MustNewConstSummary(c.summary, uint64(n), c.s.sum, q)
	info := c.run.info
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, info.Duration.Seconds())
	ch <- prometheus.MustNewConstMetric(c.completion, prometheus.GaugeValue, unixSeconds(info.CompletedAt))
	if c.withSuccess {
		ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, unixSeconds(info.CompletedAt))
	}
	ch <- prometheus.MustNewConstMetric(c.thresholds, prometheus.GaugeValue, float64(info.ThresholdFailures))
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
