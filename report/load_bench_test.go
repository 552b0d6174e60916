package report

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
)

// writeBigRun writes a finished run of n trials shaped like real ones (every timestamp and derived figure
// set) for the loader benchmarks.
func writeBigRun(b *testing.B, n int) string {
	return writeBigShard(b, n, 0, 0)
}

// writeBigShard writes shard index of count (count 0: a whole run) of a run of n trials per shard.
func writeBigShard(b *testing.B, n, index, count int) string {
	b.Helper()
	dir := b.TempDir()
	strats := []string{"poll", "sdk", "backoff", "webhook"}
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	total := n * max(count, 1)
	meta := record.Meta{RunID: "big", Config: record.Config{Strategies: strats, ImageQualities: []int{70}, TasksPerStrategy: total / len(strats),
		ShardIndex: index, ShardCount: count, RunID: "20261203T120000Z-5a4d"},
		Target: "embedded", Loop: record.LoopClosed, TrialsPlanned: n, TrialsRecorded: n, StartedAt: start, FinishedAt: &end}
	if count == 0 {
		meta.Config.RunID = ""
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, record.MetaFile), mb, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, record.TrialsFile))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range n {
		t0 := start.Add(time.Duration(i) * time.Millisecond)
		at := func(ms int) *time.Time { t := t0.Add(time.Duration(ms) * time.Millisecond); return &t }
		seq := i*max(count, 1) + index
		tr := record.Trial{RunID: "big", Seq: seq, Strategy: strats[seq%len(strats)], ImageQuality: 70, Images: 10, SegmentSize: 5,
			TaskID: 1000 + i, Result: record.ResultOK, JobIDs: []int{3 * i, 3*i + 1}, CreateSentAt: at(0), TaskCreatedAt: at(40),
			UploadDoneAt: at(120), JobsObtainedAt: at(400 + i%300), JobsVisibleAt: at(390), RequestCreatedAt: at(110),
			RequestStartedAt: at(130), RequestFinishedAt: at(395), Requests: 3 + i%4,
			RequestsByEndpoint: map[string]int{"GET /api/jobs 200": 2, "GET /api/requests/{rq_id} 200": 1 + i%4}}
		record.Derive(&tr)
		if err := enc.Encode(tr); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkLoad1M loads and validates a run of 1,000,000 trials (issue: under 3 s).
func BenchmarkLoad1M(b *testing.B) {
	dir := writeBigRun(b, 1_000_000)
	st, _ := os.Stat(filepath.Join(dir, record.TrialsFile))
	b.SetBytes(st.Size())
	b.ResetTimer()
	for b.Loop() {
		run, err := Load(dir)
		if err != nil || len(run.Trials) != 1_000_000 {
			b.Fatalf("load: %v", err)
		}
	}
}

func BenchmarkLoad100k(b *testing.B) {
	dir := writeBigRun(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// A forged trials_recorded does not size anything: the file's size bounds the slice the trials go into, and
// the count mismatch is reported.
func TestLoadForgedCountAllocatesNothingBig(t *testing.T) {
	dir := t.TempDir()
	end := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	meta := record.Meta{RunID: "r", Config: record.Config{Strategies: []string{"poll"}}, TrialsPlanned: 2,
		TrialsRecorded: 1 << 40, StartedAt: end.Add(-time.Minute), FinishedAt: &end}
	trials := []record.Trial{{RunID: "r", Seq: 0, Strategy: "poll", Result: record.ResultOK}, {RunID: "r", Seq: 1, Strategy: "poll", Result: record.ResultOK}}
	if err := writeJSON(filepath.Join(dir, record.MetaFile), meta); err != nil {
		t.Fatal(err)
	}
	if err := writeTrials(filepath.Join(dir, record.TrialsFile), trials); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "2 complete records, but meta.json says the finished run recorded 1099511627776") {
		t.Fatalf("Load = %v, want the count mismatch", err)
	}
}

// BenchmarkMerge16x100k loads 16 shards of 100,000 trials each and merges them (issue: under 5 s).
func BenchmarkMerge16x100k(b *testing.B) {
	var dirs []string
	for i := range 16 {
		dirs = append(dirs, writeBigShard(b, 100_000, i, 16))
	}
	b.ResetTimer()
	for b.Loop() {
		var runs []*Run
		for _, d := range dirs {
			run, err := Load(d)
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, run)
		}
		m, err := Merge(runs) // the shards have no .hlog files: their histograms are rebuilt from the trials
		if err != nil || len(m.Run.Trials) != 1_600_000 {
			b.Fatalf("merge: %v, %d trials", err, len(m.Run.Trials))
		}
	}
}
