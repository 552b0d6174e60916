package report

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/google/go-cmp/cmp"
)

// saveRun writes run as bench would: meta.json, trials.jsonl and <strategy>.hlog from its trials; hlog=false
// leaves the .hlog files out, as a crash before the end does.
func saveRun(t *testing.T, run *Run, hlog bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), run.Meta.RunID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if run.Meta.StartedAt.IsZero() {
		run.Meta.StartedAt = time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	}
	if err := writeJSON(filepath.Join(dir, record.MetaFile), run.Meta); err != nil {
		t.Fatal(err)
	}
	if err := writeTrials(filepath.Join(dir, record.TrialsFile), run.Trials); err != nil {
		t.Fatal(err)
	}
	if hlog {
		hists := HistogramsFromTrials(run.Trials)
		for _, s := range RunStrategies(run) {
			if err := WriteHlog(filepath.Join(dir, s+record.HlogExt), s, hists, run.Meta.StartedAt, run.Meta.StartedAt.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func loadAll(t *testing.T, dirs ...string) []*Run {
	t.Helper()
	var runs []*Run
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

func TestMergeIsExact(t *testing.T) {
	a := syntheticRun("run-a", 30, 1, 1)
	b := syntheticRun("run-b", 20, 2, 1.7) // another machine, slower
	b.Meta.Config.Strategies = []string{"backoff", "poll"}
	b.Meta.Target = "http://cvat-2:8080"
	runs := loadAll(t, saveRun(t, a, true), saveRun(t, b, true))
	m, err := Merge(runs)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if err := m.Write(out); err != nil {
		t.Fatal(err)
	}
	merged, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	// Trials: concatenated in argument order, each with its own run id.
	want := append(slices.Clone(a.Trials), b.Trials...)
	if diff := cmp.Diff(want, merged.Trials); diff != "" {
		t.Errorf("merged trials (-want +got):\n%s", diff)
	}
	// Histograms: the merge of the .hlog files is the histogram of the concatenated trials, bucket for bucket.
	if probs := CheckHistograms(merged); len(probs) > 0 {
		t.Errorf("histograms differ from trials: %v", probs)
	}
	// The table from the merged histograms equals the table from the concatenated raw trials.
	ps := []float64{50, 90, 99, 99.9}
	fromHist, err := SummarizeHistograms(merged, ps)
	if err != nil {
		t.Fatal(err)
	}
	fromTrials, err := Summarize(&Run{Meta: merged.Meta, Trials: want}, ps)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromTrials, fromHist); diff != "" {
		t.Errorf("table from merged histograms differs from table from trials (-trials +hist):\n%s", diff)
	}
	if n := fromHist.Rows[0].EndToEnd.N; n != 50 {
		t.Errorf("poll end-to-end n %d, want 50", n)
	}
	// Meta and sources.
	mm := merged.Meta
	if mm.TrialsRecorded != 100 || !slices.Equal(mm.Config.Strategies, []string{"poll", "backoff"}) ||
		mm.Target != ", http://cvat-2:8080" && !strings.Contains(mm.Target, "http://cvat-2:8080") {
		t.Errorf("meta %+v", mm)
	}
	if _, err := os.Stat(filepath.Join(out, MergeFile)); err != nil {
		t.Error(err)
	}
	if len(m.Sources) != 2 || m.Sources[1].RunID != "run-b" || m.Sources[1].HistogramsFrom != FromHlog {
		t.Errorf("sources %+v", m.Sources)
	}
}

func TestMergeEdgeCases(t *testing.T) {
	t.Run("same run twice", func(t *testing.T) {
		dir := saveRun(t, syntheticRun("run-a", 5, 1, 1), true)
		if _, err := Merge(loadAll(t, dir, dir)); err == nil || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("one run", func(t *testing.T) {
		if _, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 5, 1, 1), true))); err == nil {
			t.Error("merged a single run")
		}
	})
	t.Run("crashed run without hlog", func(t *testing.T) {
		m, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 5, 1, 1), true), saveRun(t, syntheticRun("run-b", 5, 2, 1), false)))
		if err != nil {
			t.Fatal(err)
		}
		if m.Sources[1].HistogramsFrom != FromTrials || !strings.Contains(strings.Join(m.Warnings, "\n"), "run-b has no .hlog") {
			t.Errorf("sources %+v warnings %v", m.Sources, m.Warnings)
		}
		if probs := CheckHistograms(m.Run); len(probs) > 0 {
			t.Errorf("%v", probs)
		}
	})
	t.Run("different workload settings are refused", func(t *testing.T) {
		b := syntheticRun("run-b", 5, 2, 1)
		b.Meta.Config.PollInterval = 250 * time.Millisecond
		b.Meta.Config.Seed = 9 // differs by design: not a reason
		_, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 5, 1, 1), true), saveRun(t, b, true)))
		if err == nil || !strings.Contains(err.Error(), "poll_interval_ms") || strings.Contains(err.Error(), "seed") {
			t.Errorf("Merge = %v, want a refusal naming poll_interval_ms only", err)
		}
		c := syntheticRun("run-c", 5, 2, 1)
		c.Meta.Config.Seed = 9
		if _, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 5, 1, 1), true), saveRun(t, c, true))); err != nil {
			t.Errorf("runs that differ only in seed: %v", err)
		}
	})
	t.Run("an emulator run with a server run is refused", func(t *testing.T) {
		b := syntheticRun("run-b", 5, 2, 1)
		b.Meta.Target = "http://cvat.example:8080"
		a := syntheticRun("run-a", 5, 1, 1)
		a.Meta.Target = "embedded"
		_, err := Merge(loadAll(t, saveRun(t, a, true), saveRun(t, b, true)))
		if err == nil || !strings.Contains(err.Error(), "do not pool") {
			t.Errorf("Merge = %v", err)
		}
	})
	t.Run("existing output directory", func(t *testing.T) {
		m, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 5, 1, 1), true), saveRun(t, syntheticRun("run-b", 5, 2, 1), true)))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Write(t.TempDir()); err == nil {
			t.Error("overwrote an existing directory")
		}
	})
}

func TestCheckHistogramsFindsDisagreement(t *testing.T) {
	run := loadAll(t, saveRun(t, syntheticRun("run-a", 10, 1, 1), true))[0]
	run.Trials = run.Trials[1:] // one trial fewer than the .hlog counted
	if probs := CheckHistograms(run); len(probs) != 2 || !strings.Contains(probs[0], "differs") {
		t.Errorf("problems %v", probs)
	}
}

// TestHlogReadByJavaHdrHistogram runs HdrHistogram's own HistogramLogProcessor on a merged .hlog when the jar
// is available (env HDRHISTOGRAM_JAR, e.g. ~/.m2/repository/org/hdrhistogram/HdrHistogram/2.2.2/HdrHistogram-2.2.2.jar).
func TestHlogReadByJavaHdrHistogram(t *testing.T) {
	jar := os.Getenv("HDRHISTOGRAM_JAR")
	if jar == "" {
		t.Skip("set HDRHISTOGRAM_JAR to HdrHistogram's jar (org.hdrhistogram:HdrHistogram) to run this check")
	}
	m, err := Merge(loadAll(t, saveRun(t, syntheticRun("run-a", 30, 1, 1), true), saveRun(t, syntheticRun("run-b", 30, 2, 1), true)))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if err := m.Write(out); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", "-cp", jar, "org.HdrHistogram.HistogramLogProcessor",
		"-i", filepath.Join(out, "poll.hlog"), "-tag", "poll", "-outputValueUnitRatio", "1e6")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if !strings.Contains(string(b), "Total count    =           60") {
		t.Errorf("HistogramLogProcessor output:\n%s", b)
	}
}
