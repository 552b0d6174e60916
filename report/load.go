// Package report reads a results directory written by bench and renders it. It never talks to CVAT: what it
// shows is what was saved, so `cvatbench run` and a later `cvatbench report` print the same table.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cvatbench/cvatbench/bench/record"
)

// Run is one results directory read back.
type Run struct {
	Dir    string
	Meta   record.Meta
	Trials []record.Trial
	// Histograms holds the .hlog intervals by tag ("<strategy>" end-to-end, "<strategy>.detection"), merged
	// into record.NewHistogram geometry. Empty when the run crashed before writing them.
	Histograms map[string]*hdrhistogram.Histogram
	// Truncated is true when the last line of trials.jsonl was cut short (a crash mid-write) and was skipped.
	Truncated bool
}

// Load reads meta.json, trials.jsonl and the .hlog files of dir. A missing meta.json or trials.jsonl is an
// error; a cut-off last line is skipped and flagged in Run.Truncated; a malformed line elsewhere is an error,
// and so is a file that cannot be this run's record (checkTrials).
func Load(dir string) (*Run, error) {
	run := &Run{Dir: dir, Histograms: map[string]*hdrhistogram.Histogram{}}
	b, err := os.ReadFile(filepath.Join(dir, record.MetaFile))
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	if err := json.Unmarshal(b, &run.Meta); err != nil {
		return nil, fmt.Errorf("load run: parse %s: %w", record.MetaFile, err)
	}
	f, err := os.Open(filepath.Join(dir, record.TrialsFile))
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	defer f.Close()
	// meta.json's count sizes the slice the trials are decoded into, bounded by what the file can hold, so a
	// forged count allocates nothing big.
	hint := run.Meta.TrialsRecorded
	if st, err := f.Stat(); err == nil {
		hint = min(hint, int(st.Size()/minTrialLine))
	}
	run.Trials, run.Truncated, err = record.ReadTrialsN(f, hint)
	if err != nil {
		return nil, fmt.Errorf("load run: %s: %w", record.TrialsFile, err)
	}
	sources, err := mergeSources(dir)
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	if err := checkTrials(run, sources); err != nil {
		return nil, fmt.Errorf("load run: %s: %w", record.TrialsFile, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*"+record.HlogExt))
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	for _, p := range paths {
		if err := readHlog(p, run.Histograms); err != nil {
			return nil, fmt.Errorf("load run: %w", err)
		}
	}
	return run, nil
}

// minTrialLine is less than the shortest line a run writes for a trial (about 150 bytes).
const minTrialLine = 64

// ReadTrials decodes JSON lines of trials (record.ReadTrials). An unterminated last line that does not parse
// is dropped (truncated = true): it is what a crash mid-append leaves.
func ReadTrials(r io.Reader) (trials []record.Trial, truncated bool, err error) {
	return record.ReadTrials(r)
}

func readHlog(path string, into map[string]*hdrhistogram.Histogram) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	lr := hdrhistogram.NewHistogramLogReader(f)
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
		if h == nil {
			return nil
		}
		tag := h.Tag()
		if tag == "" {
			tag = strings.TrimSuffix(filepath.Base(path), record.HlogExt)
		}
		total := into[tag]
		if total == nil {
			total = record.NewHistogram()
			into[tag] = total
		}
		if n := total.Merge(h); n > 0 {
			return fmt.Errorf("read %s: merging tag %s dropped %d values", filepath.Base(path), tag, n)
		}
	}
}

// mergeSources lists the run ids a merged directory was made from (merged.json); nil for a plain run.
func mergeSources(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, MergeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var srcs []MergeSource
	if err := json.Unmarshal(b, &srcs); err != nil {
		return nil, fmt.Errorf("parse %s: %w", MergeFile, err)
	}
	var ids []string
	for _, s := range srcs {
		ids = append(ids, s.RunID)
	}
	return ids, nil
}

// maxShownName bounds how much of a forged name an error quotes.
const maxShownName = 40

// checkTrials refuses a trials.jsonl that cannot be the record of run: a record of another run (or none:
// null, {}), a strategy meta.json does not name, an unknown result, a sequence number outside the schedule
// or twice, or, for a run that finished, another number of records than meta.json says it wrote (a file
// cut short or padded). An interrupted or crashed run (no finished_at) may hold fewer.
func checkTrials(run *Run, sources []string) error {
	m := run.Meta
	ids := map[string]bool{m.RunID: true}
	for _, id := range sources {
		ids[id] = true
	}
	strategies := map[string]bool{}
	for _, s := range m.Config.Strategies {
		strategies[s] = true
	}
	results := map[string]bool{record.ResultOK: true, record.ResultTimeout: true, record.ResultError: true, record.ResultCanceled: true, record.ResultDropped: true}
	// Seen trials per run id: a bitmap over the planned seqs (the range is checked first), else a set.
	type key struct {
		run string
		seq int
	}
	seenSet := map[key]bool{}
	seenSeq := map[string][]bool{}
	planned := m.TrialsPlanned
	if m.Config.Sharded() {
		planned = m.Config.Trials() // a shard's seqs are the whole run's
	}
	seen := func(run string, seq int) bool {
		if planned == 0 {
			dup := seenSet[key{run, seq}]
			seenSet[key{run, seq}] = true
			return dup
		}
		bits := seenSeq[run]
		if bits == nil {
			bits = make([]bool, planned)
			seenSeq[run] = bits
		}
		dup := bits[seq]
		bits[seq] = true
		return dup
	}
	for i, t := range run.Trials {
		n := i + 1
		switch {
		case !ids[t.RunID] || t.RunID == "":
			return fmt.Errorf("record %d: run_id %s is not this run's (%s)", n, shown(t.RunID), m.RunID)
		case !strategies[t.Strategy]:
			return fmt.Errorf("record %d: strategy %s is not among meta.json's strategies", n, shown(t.Strategy))
		case !results[t.Result]:
			return fmt.Errorf("record %d: result %s is not ok, timeout, error, canceled or dropped", n, shown(t.Result))
		case t.Seq < 0 || (planned > 0 && t.Seq >= planned):
			return fmt.Errorf("record %d: seq %d is outside the %d planned trials", n, t.Seq, planned)
		case !m.Config.InShard(t.Seq):
			return fmt.Errorf("record %d: seq %d is not in shard %d/%d", n, t.Seq, m.Config.ShardIndex, m.Config.ShardCount)
		case seen(t.RunID, t.Seq):
			return fmt.Errorf("record %d: trial %d of run %s appears twice", n, t.Seq, t.RunID)
		}
	}
	if m.FinishedAt != nil && (len(run.Trials) != m.TrialsRecorded || run.Truncated) {
		cut := ""
		if run.Truncated {
			cut = " and a cut-off last line"
		}
		return fmt.Errorf("%d complete records%s, but meta.json says the finished run recorded %d: the file is damaged",
			len(run.Trials), cut, m.TrialsRecorded)
	}
	return nil
}

// shown quotes a name from the file, cut to maxShownName bytes.
func shown(s string) string {
	if len(s) > maxShownName {
		return strconv.Quote(s[:maxShownName]) + "..."
	}
	return strconv.Quote(s)
}
