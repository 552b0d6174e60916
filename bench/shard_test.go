package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/report"
)

// nameRecorder notes the name of every task and project created through it.
type nameRecorder struct {
	next  http.Handler
	mu    sync.Mutex
	names []string
}

func (n *nameRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && (r.URL.Path == "/api/tasks" || r.URL.Path == "/api/projects") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var spec struct{ Name string }
		if json.Unmarshal(body, &spec) == nil {
			n.mu.Lock()
			n.names = append(n.names, r.URL.Path+" "+spec.Name)
			n.mu.Unlock()
		}
	}
	n.next.ServeHTTP(w, r)
}

// TestShardsMergeIntoOneRun runs 4 shards of one run at once against one emulator: each runs its share, the
// names never collide, each cleans up what it created, and the merge of the 4 results directories is the
// whole run (every seq once, n the sum). A missing shard is named in the merge's warnings; a shard given
// twice is refused.
func TestShardsMergeIntoOneRun(t *testing.T) {
	names := &nameRecorder{}
	srv, base := newSimBehind(t, func(h http.Handler) http.Handler { names.next = h; return names })

	const shards = 4
	out := t.TempDir()
	cfg := bench.DefaultConfig()
	cfg.Strategies = []string{"poll", "sdk", "webhook"}
	cfg.TasksPerStrategy, cfg.Concurrency, cfg.Images, cfg.ImageSize = 6, 4, 2, "16x12"
	cfg.Timeout = 30 * time.Second
	cfg.PollInterval, cfg.SDKPeriod, cfg.SafetyPoll = time.Millisecond, time.Millisecond, 50*time.Millisecond
	cfg.WebhookListen = "127.0.0.1:0"
	cfg.Target, cfg.OutDir, cfg.RunID, cfg.ShardCount = base, out, "20261203T120000Z-5a4d", shards
	var wg sync.WaitGroup
	results := make([]bench.Result, shards)
	errs := make([]error, shards)
	for i := range shards {
		client := loginClient(t, base, "admin", "admin") // here: t.Fatal belongs to the test's goroutine
		wg.Go(func() {
			c := cfg
			c.ShardIndex = i
			results[i], errs[i] = runShard(c, client)
		})
	}
	wg.Wait()
	var runs []*report.Run
	total := 0
	for i, res := range results {
		share := cfg
		share.ShardIndex = i
		total += res.Recorded
		if errs[i] != nil || res.Errors != 0 || len(res.CleanupErrors) != 0 || res.Recorded != share.ShardTrials() {
			t.Fatalf("shard %d: %v, result %+v", i, errs[i], res)
		}
		if want := filepath.Join(out, fmt.Sprintf("%s.shard-%d-of-4", cfg.RunID, i)); res.Dir != want {
			t.Errorf("shard %d wrote %s, want %s", i, res.Dir, want)
		}
		run, err := report.Load(res.Dir)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	if total != cfg.Trials() {
		t.Errorf("the shards ran %d trials, the run has %d", total, cfg.Trials())
	}
	if n := srv.TaskCount(); n != 0 {
		t.Errorf("%d tasks left after the shards' cleanups", n)
	}
	names.mu.Lock()
	sorted := slices.Sorted(slices.Values(names.names))
	names.mu.Unlock()
	if len(sorted) != cfg.Trials()+shards*len(cfg.Strategies) || len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		t.Errorf("%d creations, names repeat: %q", len(sorted), sorted)
	}

	m, err := report.Merge(runs)
	if err != nil || len(m.Warnings) != 0 {
		t.Fatalf("merge: %v, warnings %q", err, m.Warnings)
	}
	seqs := map[int]int{}
	for _, tr := range m.Run.Trials {
		seqs[tr.Seq]++
	}
	if len(m.Run.Trials) != cfg.Trials() || len(seqs) != cfg.Trials() || m.Run.Meta.TrialsPlanned != cfg.Trials() {
		t.Errorf("merged %d trials, %d seqs, planned %d; want %d each", len(m.Run.Trials), len(seqs), m.Run.Meta.TrialsPlanned, cfg.Trials())
	}
	sum, err := report.Summarize(m.Run, []float64{50})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range sum.Rows {
		if row.N != cfg.TasksPerStrategy {
			t.Errorf("merged row %s: n %d, want %d", row.Strategy, row.N, cfg.TasksPerStrategy)
		}
	}
	if m, err := report.Merge(runs[:3]); err != nil || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "shard 3/4 missing") {
		t.Errorf("merge of 3 shards: %v, warnings %q; want shard 3/4 named missing", err, m.Warnings)
	}
	if _, err := report.Merge([]*report.Run{runs[0], runs[1], runs[1]}); err == nil || !strings.Contains(err.Error(), "shard 1/4 given twice") {
		t.Errorf("a shard given twice: %v", err)
	}
	other := *runs[1]
	other.Meta.RunID = "20261203T130000Z-0b0b"
	if _, err := report.Merge([]*report.Run{runs[0], &other}); err == nil || !strings.Contains(err.Error(), "shards of 2 runs") {
		t.Errorf("shards of two runs: %v", err)
	}
}

func runShard(cfg bench.Config, client *cvat.Client) (bench.Result, error) {
	r, err := bench.New(cfg, bench.WithClient(client), bench.WithClock(fastClock{}))
	if err != nil {
		return bench.Result{}, err
	}
	return r.Run(context.Background())
}
