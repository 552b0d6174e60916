package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cvatbench/cvatbench/bench/record"
)

// MergeFile lists, in a merged results directory, the runs it was made from.
const MergeFile = "merged.json"

// Histogram sources of a MergeSource.
const (
	FromHlog   = "hlog"   // the run's .hlog files
	FromTrials = "trials" // rebuilt from trials.jsonl: the run has no .hlog (it crashed before writing them)
)

// MergeSource is one run folded into a merge, as recorded in merged.json.
type MergeSource struct {
	RunID          string     `json:"run_id"`
	Dir            string     `json:"dir"`
	Target         string     `json:"target"`
	ServerVersion  string     `json:"server_version,omitempty"`
	ToolVersion    string     `json:"tool_version"`
	Seed           int64      `json:"seed"`
	StartedAt      time.Time  `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	Trials         int        `json:"trials"`
	HistogramsFrom string     `json:"histograms_from"` // FromHlog or FromTrials
}

// Merged is several runs combined into one.
type Merged struct {
	Run     *Run
	Sources []MergeSource
	// Warnings are differences a reader should know about (workload settings that differ between the runs,
	// histograms rebuilt from trials); they do not stop the merge.
	Warnings []string
}

// Merge combines runs, e.g. the same workload from several machines, into one run. Trials are concatenated
// in argument order and keep their own run_id and seq. Histograms are merged exactly: every source histogram
// has record.NewHistogram's geometry, and a non-zero dropped count from Merge is an error. The same run given
// twice is an error (its trials would count double).
func Merge(runs []*Run) (*Merged, error) {
	if len(runs) < 2 {
		return nil, errors.New("merge: need at least two runs")
	}
	m := &Merged{}
	seen := map[string]string{}
	shardCount := map[string]int{} // run id -> shard count of its shards; 0: given unsharded
	shardsSeen := map[string]map[int]bool{}
	var ids []string
	for _, r := range runs {
		c, key := r.Meta.Config, r.Meta.RunID
		if n, ok := shardCount[key]; ok && n != c.ShardCount {
			return nil, fmt.Errorf("merge: run %s is given as %s and as %s", key, shares(n), shares(c.ShardCount))
		}
		shardCount[key] = c.ShardCount
		if c.Sharded() {
			key = fmt.Sprintf("%s shard %d/%d", key, c.ShardIndex, c.ShardCount)
			if shardsSeen[r.Meta.RunID] == nil {
				shardsSeen[r.Meta.RunID] = map[int]bool{}
			}
			shardsSeen[r.Meta.RunID][c.ShardIndex] = true
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("merge: run %s given twice (%s and %s)", key, prev, r.Dir)
		}
		seen[key] = r.Dir
		ids = append(ids, key)
	}
	if ids := slices.Sorted(maps.Keys(shardsSeen)); len(ids) > 1 {
		return nil, fmt.Errorf("merge: shards of %d runs (%s): merge the shards of one run at a time", len(ids), strings.Join(ids, ", "))
	}
	for _, id := range slices.Sorted(maps.Keys(shardsSeen)) {
		var missing []string
		for i := range shardCount[id] {
			if !shardsSeen[id][i] {
				missing = append(missing, fmt.Sprintf("%d/%d", i, shardCount[id]))
			}
		}
		if len(missing) > 0 {
			m.Warnings = append(m.Warnings, fmt.Sprintf("run %s: shard %s missing, so the merge holds only the other shares of its trials",
				id, strings.Join(missing, ", ")))
		}
	}
	h := fnv.New32a()
	h.Write([]byte(strings.Join(ids, "\x00")))
	first := runs[0].Meta
	meta := record.Meta{
		RunID:       fmt.Sprintf("merged-%08x", h.Sum32()),
		ToolVersion: first.ToolVersion, ToolCommit: first.ToolCommit,
		Config:          first.Config,
		Target:          first.Target,
		EmulatorProfile: first.EmulatorProfile,
		ServerVersion:   first.ServerVersion,
		Seed:            first.Seed,
		Loop:            first.Loop,
		StartedAt:       first.StartedAt,
		ClockOffset:     record.OffsetStats{Method: first.ClockOffset.Method, GroundTruth: true},
	}
	meta.Config.Strategies = nil
	meta.Config.ImageQualities = nil
	meta.Config.RunID, meta.Config.ShardIndex, meta.Config.ShardCount = "", 0, 0 // the merge is the whole
	var targets []string
	finished := first.FinishedAt
	merged := &Run{Histograms: map[string]*hdrhistogram.Histogram{}}
	total := 0
	for _, r := range runs {
		total += len(r.Trials)
	}
	plannedOnce := map[string]bool{}               // sharded run ids whose planned trials are counted
	merged.Trials = make([]record.Trial, 0, total) // one copy of every trial, not one per doubling
	for _, r := range runs {
		rm := r.Meta
		src := MergeSource{RunID: rm.RunID, Dir: r.Dir, Target: rm.Target, ServerVersion: rm.ServerVersion,
			ToolVersion: rm.ToolVersion, Seed: rm.Seed, StartedAt: rm.StartedAt, FinishedAt: rm.FinishedAt,
			Trials: len(r.Trials), HistogramsFrom: FromHlog}
		for _, name := range RunStrategies(r) {
			if !slices.Contains(meta.Config.Strategies, name) {
				meta.Config.Strategies = append(meta.Config.Strategies, name)
			}
		}
		for _, q := range rm.Config.ImageQualities {
			if !slices.Contains(meta.Config.ImageQualities, q) {
				meta.Config.ImageQualities = append(meta.Config.ImageQualities, q)
			}
		}
		if !slices.Contains(targets, rm.Target) {
			targets = append(targets, rm.Target)
		}
		if rm.StartedAt.Before(meta.StartedAt) {
			meta.StartedAt = rm.StartedAt
		}
		if finished != nil && (rm.FinishedAt == nil || rm.FinishedAt.After(*finished)) {
			finished = rm.FinishedAt // nil as soon as one run did not finish
		}
		switch {
		case !rm.Config.Sharded():
			meta.TrialsPlanned += rm.TrialsPlanned
		case !plannedOnce[rm.RunID]: // the whole run's seqs, whichever shares are here
			meta.TrialsPlanned += rm.Config.Trials()
			plannedOnce[rm.RunID] = true
		}
		meta.TrialsRecorded += len(r.Trials)
		meta.Interrupted = meta.Interrupted || rm.Interrupted
		meta.Abandoned = meta.Abandoned || rm.Abandoned
		for k, v := range rm.FaultsInjected {
			if meta.FaultsInjected == nil {
				meta.FaultsInjected = map[string]int{}
			}
			meta.FaultsInjected[k] += v
		}
		meta.CleanupErrors = append(meta.CleanupErrors, rm.CleanupErrors...)
		meta.ClockOffset.GroundTruth = meta.ClockOffset.GroundTruth && rm.ClockOffset.GroundTruth
		meta.ClockOffset.Estimates += rm.ClockOffset.Estimates
		meta.ClockOffset.MaxErrorMs = max(meta.ClockOffset.MaxErrorMs, rm.ClockOffset.MaxErrorMs)
		// The median of medians is not a median: keep the worst, which stays a true bound on "typical".
		meta.ClockOffset.MedianErrorMs = max(meta.ClockOffset.MedianErrorMs, rm.ClockOffset.MedianErrorMs)
		merged.Trials = append(merged.Trials, r.Trials...)
		merged.Truncated = merged.Truncated || r.Truncated

		hists := r.Histograms
		if len(hists) == 0 && len(r.Trials) > 0 {
			hists = HistogramsFromTrials(r.Trials)
			src.HistogramsFrom = FromTrials
			m.Warnings = append(m.Warnings, fmt.Sprintf("run %s has no .hlog files; its histograms were rebuilt from trials.jsonl", rm.RunID))
		}
		for _, tag := range slices.Sorted(maps.Keys(hists)) {
			total := merged.Histograms[tag]
			if total == nil {
				total = record.NewHistogram()
				merged.Histograms[tag] = total
			}
			if n := total.Merge(hists[tag]); n > 0 {
				return nil, fmt.Errorf("merge: histogram %s of run %s dropped %d values", tag, rm.RunID, n)
			}
		}
		m.Sources = append(m.Sources, src)
		// Rows of a merge pool the runs' trials per strategy: runs that differ in how a strategy was set up or
		// what it ran against would make one row of two experiments, under one configuration in meta.json.
		if diffs := configDiffs(runs[0], r); len(diffs) > 0 {
			return nil, fmt.Errorf("merge: %s; merge only runs of one configuration", strings.Join(diffs, "; "))
		}
		if (first.Target == "embedded") != (rm.Target == "embedded") {
			return nil, fmt.Errorf("merge: run %s ran against %s and run %s against %s: an emulator's numbers and a server's do not pool",
				first.RunID, first.Target, rm.RunID, rm.Target)
		}
	}
	slices.Sort(meta.Config.ImageQualities)
	meta.Target = strings.Join(targets, ", ")
	meta.FinishedAt = finished
	for _, name := range meta.Config.Strategies {
		meta.HistogramFiles = append(meta.HistogramFiles, record.HlogFile(name))
	}
	merged.Meta = meta
	m.Run = merged
	return m, nil
}

// shares names a shard count for messages.
func shares(n int) string {
	if n == 0 {
		return "a whole run"
	}
	return fmt.Sprintf("%d shards", n)
}

// configDiffs lists the settings in which b differs from a. Seeds, output paths, targets and the webhook
// endpoints differ between machines by design; strategy lists, qualities and task counts are unioned.
func configDiffs(a, b *Run) []string {
	ja, erra := json.Marshal(a.Meta.Config)
	jb, errb := json.Marshal(b.Meta.Config)
	var ma, mb map[string]any
	if erra != nil || errb != nil || json.Unmarshal(ja, &ma) != nil || json.Unmarshal(jb, &mb) != nil {
		return []string{"cannot compare the configurations of " + a.Meta.RunID + " and " + b.Meta.RunID}
	}
	skip := []string{"seed", "out_dir", "target", "webhook_listen", "webhook_url", "strategies", "image_qualities",
		"tasks_per_strategy", "org", "shard_index", "run_id"}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(union(ma, mb))) {
		if slices.Contains(skip, k) {
			continue
		}
		va, _ := json.Marshal(ma[k])
		vb, _ := json.Marshal(mb[k])
		if string(va) != string(vb) {
			out = append(out, fmt.Sprintf("runs %s and %s differ in %s: %s vs %s", a.Meta.RunID, b.Meta.RunID, k, va, vb))
		}
	}
	return out
}

// union returns the keys of a and b.
func union[V any](a, b map[string]V) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// HistogramsFromTrials builds the .hlog histograms of trials (tags "<strategy>" and "<strategy>.detection",
// ok trials only) the way Summarize records them.
func HistogramsFromTrials(trials []record.Trial) map[string]*hdrhistogram.Histogram {
	out := map[string]*hdrhistogram.Histogram{}
	get := func(tag string) *hdrhistogram.Histogram {
		if out[tag] == nil {
			out[tag] = record.NewHistogram()
		}
		return out[tag]
	}
	for _, t := range trials {
		if t.Result != record.ResultOK {
			continue
		}
		recordMs(get(t.Strategy), t.EndToEndMs)
		recordMs(get(t.Strategy+record.DetectionTagSuffix), t.DetectionDelayMs)
	}
	return out
}

// CheckHistograms lists every tag whose .hlog histogram differs from the one rebuilt from the run's trials: the
// two files of a results directory must tell the same story.
func CheckHistograms(run *Run) []string {
	rebuilt := HistogramsFromTrials(run.Trials)
	var out []string
	for _, tag := range slices.Sorted(maps.Keys(union(rebuilt, run.Histograms))) {
		a, b := run.Histograms[tag], rebuilt[tag]
		switch {
		case a == nil && b != nil && b.TotalCount() > 0:
			out = append(out, fmt.Sprintf("histogram %s: no .hlog interval, %d values in trials", tag, b.TotalCount()))
		case b == nil && a != nil && a.TotalCount() > 0:
			out = append(out, fmt.Sprintf("histogram %s: %d values in .hlog, none in trials", tag, a.TotalCount()))
		case a != nil && b != nil && !a.Equals(b):
			out = append(out, fmt.Sprintf("histogram %s: .hlog (%d values) differs from trials (%d values)", tag,
				a.TotalCount(), b.TotalCount()))
		}
	}
	return out
}

// SummarizeHistograms is Summarize with the latency columns read from run.Histograms (the .hlog files) rather
// than from the trials; counts and requests still come from the trials. A sweep is an error: .hlog intervals
// are per strategy, not per image quality.
func SummarizeHistograms(run *Run, percentiles []float64) (*Summary, error) {
	s, err := Summarize(run, percentiles)
	if err != nil {
		return nil, err
	}
	if s.Sweep {
		return nil, errors.New("summarize histograms: a sweep needs per-quality rows, which .hlog files do not keep")
	}
	for i, row := range s.Rows {
		e2e, det := run.Histograms[row.Strategy], run.Histograms[row.Strategy+record.DetectionTagSuffix]
		if e2e == nil || det == nil {
			return nil, fmt.Errorf("summarize histograms: no .hlog interval for %s", row.Strategy)
		}
		s.Rows[i].EndToEnd = latency(e2e, s.Percentiles, row.EndToEnd.Overflow)
		s.Rows[i].Detection = latency(det, detectionPercentiles, row.Detection.Overflow)
	}
	return s, nil
}

// Write saves m as a results directory that Load reads back: meta.json, trials.jsonl (each trial with its own
// run_id), one <strategy>.hlog per strategy and merged.json. dir must not exist yet.
func (m *Merged) Write(dir string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return fmt.Errorf("write merge: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("write merge: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, record.MetaFile), m.Run.Meta); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, MergeFile), m.Sources); err != nil {
		return err
	}
	if err := writeTrials(filepath.Join(dir, record.TrialsFile), m.Run.Trials); err != nil {
		return err
	}
	end := intervalEnd(m.Run)
	for _, name := range m.Run.Meta.Config.Strategies {
		if err := WriteHlog(filepath.Join(dir, name+record.HlogExt), name, m.Run.Histograms, m.Run.Meta.StartedAt, end); err != nil {
			return err
		}
	}
	m.Run.Dir = dir
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func writeTrials(path string, trials []record.Trial) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write trials: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write trials: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	for _, t := range trials {
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode trial %s/%d: %w", t.RunID, t.Seq, err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write trials: %w", err)
	}
	return nil
}

// WriteHlog writes path in bench's layout: the end-to-end interval of strategy (tag "<strategy>") and its
// detection interval (tag "<strategy>.detection") from hists, both covering [start, end]. A missing histogram
// is written empty, so every strategy's file has both tags.
func WriteHlog(path, strategy string, hists map[string]*hdrhistogram.Histogram, start, end time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write hlog: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write hlog: %w", cerr)
		}
	}()
	lw := hdrhistogram.NewHistogramLogWriter(f) // base time 0: absolute timestamps
	if err := errors.Join(lw.OutputLogFormatVersion(), lw.OutputStartTime(start.UnixMilli()), lw.OutputLegend()); err != nil {
		return fmt.Errorf("write hlog %s: %w", strategy, err)
	}
	for _, tag := range []string{strategy, strategy + record.DetectionTagSuffix} {
		h := record.NewHistogram()
		if src := hists[tag]; src != nil {
			if n := h.Merge(src); n > 0 {
				return fmt.Errorf("write hlog %s: dropped %d values", tag, n)
			}
		}
		h.SetTag(tag)
		h.SetStartTimeMs(start.UnixMilli())
		h.SetEndTimeMs(end.UnixMilli())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("write hlog %s: %w", tag, err)
		}
	}
	return nil
}

// intervalEnd is when the run's .hlog interval ends: its finish time, or for a run that never finished the
// last time a trial saw its jobs (never before the start: a negative interval is skipped by log readers).
func intervalEnd(run *Run) time.Time {
	if run.Meta.FinishedAt != nil {
		return *run.Meta.FinishedAt
	}
	end := run.Meta.StartedAt
	for _, t := range run.Trials {
		if t.JobsObtainedAt != nil && t.JobsObtainedAt.After(end) {
			end = *t.JobsObtainedAt
		}
	}
	return end
}
