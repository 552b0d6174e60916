// Package report reads a results directory written by bench and renders it. It never talks to CVAT: what it
// shows is what was saved, so `cvatbench run` and a later `cvatbench report` print the same table.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cvatbench/cvatbench/bench"
)

// Run is one results directory read back.
type Run struct {
	Dir    string
	Meta   bench.Meta
	Trials []bench.TrialRecord
	// Histograms holds the .hlog intervals by tag ("<strategy>" end-to-end, "<strategy>.detection"), merged
	// into bench.NewHistogram geometry. Empty when the run crashed before writing them.
	Histograms map[string]*hdrhistogram.Histogram
	// Truncated is true when the last line of trials.jsonl was cut short (a crash mid-write) and was skipped.
	Truncated bool
}

// Load reads meta.json, trials.jsonl and the .hlog files of dir. A missing meta.json or trials.jsonl is an
// error; a cut-off last line is skipped and flagged in Run.Truncated; a malformed line elsewhere is an error.
func Load(dir string) (*Run, error) {
	run := &Run{Dir: dir, Histograms: map[string]*hdrhistogram.Histogram{}}
	b, err := os.ReadFile(filepath.Join(dir, bench.MetaFile))
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	if err := json.Unmarshal(b, &run.Meta); err != nil {
		return nil, fmt.Errorf("load run: parse %s: %w", bench.MetaFile, err)
	}
	f, err := os.Open(filepath.Join(dir, bench.TrialsFile))
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	defer f.Close()
	run.Trials, run.Truncated, err = ReadTrials(f)
	if err != nil {
		return nil, fmt.Errorf("load run: %s: %w", bench.TrialsFile, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*"+bench.HlogExt))
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

// ReadTrials decodes JSON lines of TrialRecords. An unterminated last line that does not parse is dropped
// (truncated = true): it is what a crash mid-append leaves.
func ReadTrials(r io.Reader) (trials []bench.TrialRecord, truncated bool, err error) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec bench.TrialRecord
			if err := json.Unmarshal(line, &rec); err != nil {
				if errors.Is(rerr, io.EOF) && !bytes.HasSuffix(line, []byte("\n")) {
					return trials, true, nil
				}
				return nil, false, fmt.Errorf("line %d: %w", n, err)
			}
			trials = append(trials, rec)
		}
		if errors.Is(rerr, io.EOF) {
			return trials, false, nil
		}
		if rerr != nil {
			return nil, false, rerr
		}
	}
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
			tag = strings.TrimSuffix(filepath.Base(path), bench.HlogExt)
		}
		total := into[tag]
		if total == nil {
			total = bench.NewHistogram()
			into[tag] = total
		}
		if n := total.Merge(h); n > 0 {
			return fmt.Errorf("read %s: merging tag %s dropped %d values", filepath.Base(path), tag, n)
		}
	}
}
