package report

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cvatbench/cvatbench/bench/record"
)

// DefaultPercentiles are the end-to-end percentiles of the summary table.
var DefaultPercentiles = []float64{50, 90, 99}

// detectionPercentiles are fixed: detection delay is a secondary column.
var detectionPercentiles = []float64{50, 99}

// Summary is a run reduced to one row per strategy (and image quality, in a sweep). Plain values, JSON-ready.
type Summary struct {
	RunID       string    `json:"run_id"`
	Percentiles []float64 `json:"percentiles"`
	Sweep       bool      `json:"sweep"` // more than one image quality or segment size: rows are per strategy and cell
	// SegmentSweep: more than one segment size, so rows are per strategy, quality and segment size.
	SegmentSweep bool  `json:"segment_sweep,omitempty"`
	Rows         []Row `json:"rows"`
	// VisibleSources counts, over all ok trials, where jobs_visible_at came from ("emulator",
	// "server_finished_date"); detection delays are only as good as that source.
	VisibleSources map[string]int `json:"visible_sources,omitempty"`
	// OffsetMaxErrorMs is the largest ± bound of the clock-offset estimates (meta.json).
	OffsetMaxErrorMs float64 `json:"offset_max_error_ms"`
	// Server names what the numbers were measured on: "emulator profile cvat-default", "CVAT 2.73.0 at URL".
	Server string `json:"server,omitempty"`
	// Interrupted: the run was cut short (Ctrl-C); Canceled trials of it are in no row's n.
	Interrupted bool `json:"interrupted,omitempty"`
	Canceled    int  `json:"canceled,omitempty"`
	Abandoned   bool `json:"abandoned,omitempty"` // a second interrupt ended it before cleanup
	// FaultsInjected counts the emulator's injected faults by key (run --sim-faults).
	FaultsInjected map[string]int `json:"faults_injected,omitempty"`
	// Dropped open-loop trials were due while --max-in-flight trials were in flight and never started: the
	// server did not keep up with the rate. They are in no row's n.
	Dropped     int `json:"dropped,omitempty"`
	MaxInFlight int `json:"max_in_flight,omitempty"` // the bound they met; set when Dropped > 0
	// Quality is what the chunk probes measured, per image quality; nil when the run did not probe.
	Quality *QualitySummary `json:"quality,omitempty"`
	// Batch is the run's batch size (record.Config.Batch), 0 outside batch runs.
	Batch int `json:"batch,omitempty"`
	// WhatIf is the emulator what-if the run ran under (record.Config.SimWhatIf): behaviour no CVAT has.
	WhatIf string `json:"what_if,omitempty"`
	// Bounds are the optimal-polling bounds of the run's cells (bound.go), which Row.BoundMs reads.
	Bounds []CellBound `json:"bounds,omitempty"`
}

// WaitErrors are the errors of trials whose strategy ran: the strategy's own.
func (r Row) WaitErrors() int { return r.Errors - r.SetupErrors }

// ErrorRate is the strategy's error rate: WaitErrors over the trials that got as far as its wait (0 when
// none did).
func (r Row) ErrorRate() float64 {
	if waited := r.N - r.SetupErrors; waited > 0 {
		return float64(r.WaitErrors()) / float64(waited)
	}
	return 0
}

// Row summarises the trials of one strategy (and image quality).
type Row struct {
	Strategy      string         `json:"strategy"`
	ImageQuality  int            `json:"image_quality,omitempty"` // the rows' image quality; 0 if the run mixes qualities outside a sweep
	SegmentSize   int            `json:"segment_size,omitempty"`  // in segment-size sweeps
	N             int            `json:"n"`                       // trials recorded
	OK            int            `json:"ok"`
	Errors        int            `json:"errors"`                    // N - OK: timeouts and errors, in every phase
	ErrorsByClass map[string]int `json:"errors_by_class,omitempty"` // the strategy's: of trials that failed waiting
	// SetupErrors are the errors of trials that failed creating the task or uploading its data, before the
	// strategy ran: not the strategy's doing (record.Trial.FailedIn). They are in Errors, not in ErrorRate.
	SetupErrors        int            `json:"setup_errors,omitempty"`
	SetupErrorsByClass map[string]int `json:"setup_errors_by_class,omitempty"`
	EndToEnd           Latency        `json:"end_to_end"` // ok trials; at Summary.Percentiles
	Detection          Latency        `json:"detection"`  // ok trials with a jobs-visible time; at p50 and p99
	// Requests made by the strategy while waiting, over ok trials.
	RequestsMean float64 `json:"requests_mean"`
	RequestsP50  int     `json:"requests_p50"`
	// DetectionMeanMs is the mean detection delay of the ok trials with a jobs-visible time (exact, from the
	// trials): the figure the optimal-polling bound is in.
	DetectionMeanMs *float64 `json:"detection_mean_ms,omitempty"`
	// BoundMs is the cell's optimal-polling bound at RequestsMean: the least mean detection delay any fixed
	// schedule of jobs listings reaches with that many listings on average. BoundGapMs is DetectionMeanMs
	// minus it; negative means below the bound. nil below one request, where no listing schedule goes.
	BoundMs    *float64 `json:"bound_ms,omitempty"`
	BoundGapMs *float64 `json:"bound_gap_ms,omitempty"`
	// Batch runs: the batches of the row with an ok trial, and the p50 (nearest rank) and max of their
	// makespans, first create sent → last job list obtained.
	Batches       int     `json:"batches,omitempty"`
	MakespanP50Ms float64 `json:"makespan_p50_ms,omitempty"`
	MakespanMaxMs float64 `json:"makespan_max_ms,omitempty"`
}

// Latency is a distribution read from an HdrHistogram (values are bucket edges, 3 significant digits).
type Latency struct {
	N         int64      `json:"n"`
	Quantiles []Quantile `json:"quantiles,omitempty"`
	MaxMs     float64    `json:"max_ms"`
	// Overflow counts values the histogram could not hold (negative or above 30 min); they are not in N.
	Overflow int `json:"overflow,omitempty"`
}

// Quantile is one percentile value.
type Quantile struct {
	P  float64 `json:"p"` // percentile in (0, 100]
	Ms float64 `json:"ms"`
}

// At returns the value at percentile p, if it was computed and the distribution is not empty.
func (l Latency) At(p float64) (ms float64, ok bool) {
	if l.N == 0 {
		return 0, false
	}
	for _, q := range l.Quantiles {
		if q.P == p {
			return q.Ms, true
		}
	}
	return 0, false
}

// ValidatePercentiles rejects percentiles outside (0, 100] and duplicates.
func ValidatePercentiles(ps []float64) error {
	var errs []error
	seen := map[float64]bool{}
	for _, p := range ps {
		switch {
		case math.IsNaN(p) || p <= 0 || p > 100:
			errs = append(errs, fmt.Errorf("percentile %g is outside (0, 100]", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("percentile %g given twice", p))
		}
		seen[p] = true
	}
	if len(ps) == 0 {
		errs = append(errs, errors.New("no percentiles given"))
	}
	return errors.Join(errs...)
}

// Summarize reduces the raw trials of run through HdrHistograms (record.NewHistogram geometry), so its numbers
// match the .hlog files. Rows follow the run's strategy order, then image quality ascending.
func Summarize(run *Run, percentiles []float64) (*Summary, error) {
	return summarize(run, percentiles, detectionPercentiles, true)
}

// summarizeLean is Summarize without the optimal-polling bounds, for the readers that do not show them:
// over a million trials the bound takes about 3 s per cell.
func summarizeLean(run *Run, percentiles []float64) (*Summary, error) {
	return summarize(run, percentiles, detectionPercentiles, false)
}

// summarize is Summarize with a choice of detection percentiles (thresholds may ask for any) and of
// whether to compute the bounds.
func summarize(run *Run, percentiles, detPercentiles []float64, bounds bool) (*Summary, error) {
	if err := ValidatePercentiles(percentiles); err != nil {
		return nil, err
	}
	type key struct {
		strategy string
		quality  int
		segment  int
	}
	qualities := map[int]bool{}
	for _, t := range run.Trials {
		qualities[t.ImageQuality] = true
	}
	for _, q := range run.Meta.Config.ImageQualities {
		qualities[q] = true
	}
	segmentSweep := isSegmentSweep(run)
	s := &Summary{
		RunID: run.Meta.RunID, Percentiles: slices.Clone(percentiles), Sweep: len(qualities) > 1 || segmentSweep,
		SegmentSweep: segmentSweep, VisibleSources: map[string]int{}, OffsetMaxErrorMs: run.Meta.ClockOffset.MaxErrorMs,
		Server: serverName(run.Meta),
	}
	order := map[string]int{}
	for i, name := range run.Meta.Config.Strategies {
		order[name] = i
	}
	single := 0 // outside a sweep, rows still name the run's one image quality
	for q := range qualities {
		single = q
	}
	s.Interrupted, s.Abandoned = run.Meta.Interrupted, run.Meta.Abandoned
	s.FaultsInjected = run.Meta.FaultsInjected
	s.WhatIf = run.Meta.Config.SimWhatIf
	s.Batch = run.Meta.Config.Batch
	groups := map[key][]record.Trial{}
	visible := map[[2]int][]float64{} // bound samples by cell
	for _, t := range run.Trials {
		if canceledByInterrupt(t) {
			s.Canceled++
			continue
		}
		if t.Result == record.ResultDropped {
			s.Dropped++
			s.MaxInFlight = run.Meta.Config.InFlightLimit()
			continue
		}
		k := key{t.Strategy, single, 0}
		if s.Sweep {
			k.quality = t.ImageQuality
		}
		if segmentSweep {
			k.segment = t.SegmentSize
		}
		groups[k] = append(groups[k], t)
		if v, ok := visibleAfterUpload(t); ok && bounds {
			visible[[2]int{k.quality, k.segment}] = append(visible[[2]int{k.quality, k.segment}], v)
		}
		if _, ok := order[t.Strategy]; !ok {
			order[t.Strategy] = len(order) + 1<<20 // unknown strategies after the configured ones
		}
		if t.Result == record.ResultOK && t.JobsVisibleSource != "" {
			s.VisibleSources[t.JobsVisibleSource]++
		}
	}
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b key) int {
		return cmp.Or(cmp.Compare(order[a.strategy], order[b.strategy]), cmp.Compare(a.strategy, b.strategy),
			cmp.Compare(a.quality, b.quality), cmp.Compare(a.segment, b.segment))
	})
	e2e, det := record.NewHistogram(), record.NewHistogram() // reused: Reset between rows (188 KB each)
	for _, k := range keys {
		e2e.Reset()
		det.Reset()
		row := summarizeRow(k.strategy, k.quality, groups[k], percentiles, detPercentiles, e2e, det)
		row.SegmentSize = k.segment
		s.Rows = append(s.Rows, row)
	}
	if len(s.VisibleSources) == 0 {
		s.VisibleSources = nil
	}
	s.Quality = summarizeQuality(run)
	s.Bounds = boundCells(visible)
	setBoundGaps(s)
	return s, nil
}

func summarizeRow(strategy string, quality int, trials []record.Trial, ps, detPs []float64, e2e, det *hdrhistogram.Histogram) Row {
	row := Row{Strategy: strategy, ImageQuality: quality, N: len(trials)}
	var e2eOver, detOver, detN int
	var reqs []float64
	detSum := 0.0
	makespans := map[int]float64{} // batch -> makespan
	for _, t := range trials {
		if t.Result != record.ResultOK {
			row.Errors++
			byClass := &row.ErrorsByClass
			if t.FailedIn == record.PhaseCreate || t.FailedIn == record.PhaseUpload {
				row.SetupErrors++
				byClass = &row.SetupErrorsByClass
			}
			if *byClass == nil {
				*byClass = map[string]int{}
			}
			(*byClass)[cmp.Or(t.ErrorClass, t.Result)]++
			continue
		}
		row.OK++
		reqs = append(reqs, t.WaitRequests())
		if t.Batch > 0 && t.BatchMakespanMs != nil {
			makespans[t.Batch] = *t.BatchMakespanMs
		}
		if !recordMs(e2e, t.EndToEndMs) {
			e2eOver++
		}
		if !recordMs(det, t.DetectionDelayMs) {
			detOver++
		}
		if t.DetectionDelayMs != nil {
			detSum += *t.DetectionDelayMs
			detN++
		}
	}
	if detN > 0 {
		m := detSum / float64(detN)
		row.DetectionMeanMs = &m
	}
	row.EndToEnd = latency(e2e, ps, e2eOver)
	row.Detection = latency(det, detPs, detOver)
	if len(reqs) > 0 {
		row.RequestsMean = mean(reqs)
		slices.Sort(reqs)
		row.RequestsP50 = int(math.Round(reqs[(len(reqs)+1)/2-1])) // nearest rank, as HdrHistogram does
	}
	if len(makespans) > 0 {
		ms := slices.Sorted(maps.Values(makespans))
		row.Batches = len(ms)
		row.MakespanP50Ms = ms[(len(ms)+1)/2-1]
		row.MakespanMaxMs = ms[len(ms)-1]
	}
	return row
}

// recordMs adds v (ms) to h; false if it was present but out of range.
func recordMs(h *hdrhistogram.Histogram, v *float64) bool {
	if v == nil {
		return true
	}
	return h.RecordValue(int64(math.Round(*v*float64(time.Millisecond)))) == nil
}

func latency(h *hdrhistogram.Histogram, ps []float64, overflow int) Latency {
	l := Latency{N: h.TotalCount(), Overflow: overflow}
	if l.N == 0 {
		return l
	}
	for _, p := range ps {
		l.Quantiles = append(l.Quantiles, Quantile{P: p, Ms: nsToMs(h.ValueAtPercentile(p))})
	}
	l.MaxMs = nsToMs(h.Max())
	return l
}

func nsToMs(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

// canceledByInterrupt: the trial was cut short by the run's interruption, which says nothing about its
// strategy. Runs recorded before ResultCanceled wrote such trials as errors of class "canceled".
func canceledByInterrupt(t record.Trial) bool {
	return t.Result == record.ResultCanceled || (t.Result == record.ResultError && t.ErrorClass == "canceled")
}

// isSegmentSweep reports whether run varies the segment size (trials or configuration).
func isSegmentSweep(run *Run) bool {
	return varies(run, func(t record.Trial) int { return t.SegmentSize }, run.Meta.Config.SegmentSizes)
}

// varies reports whether a setting takes more than one value over run's trials and configured values.
func varies(run *Run, of func(record.Trial) int, configured []int) bool {
	seen := map[int]bool{}
	for _, t := range run.Trials {
		seen[of(t)] = true
	}
	for _, v := range configured {
		seen[v] = true
	}
	return len(seen) > 1
}

// cellName names a row's cell in a sweep: " q70", " q70 s5"; "" outside a sweep.
func cellName(s *Summary, row Row) string {
	name := ""
	if s.Sweep {
		name += " q" + strconv.Itoa(row.ImageQuality)
	}
	if s.SegmentSweep {
		name += " s" + strconv.Itoa(row.SegmentSize)
	}
	return name
}

// serverName says what a run measured: the emulator and its profile, or the server's version and address.
func serverName(m record.Meta) string {
	switch {
	case m.Target == "embedded" && m.EmulatorProfile != "":
		return "emulator profile " + m.EmulatorProfile
	case m.Target == "embedded":
		return "emulator"
	case m.ServerVersion != "":
		return "CVAT " + m.ServerVersion + " at " + m.Target
	default:
		return m.Target
	}
}
