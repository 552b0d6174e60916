package bench_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvatsim"
)

// BenchmarkBatch runs one batch of n tasks with project-poll against the embedded emulator's instant profile
// and reports the peak heap per task, sampled every millisecond while the batch runs (emulator and runner
// together, after a GC before the run): memory flat in the batch size means the same figure for 100 and
// 1,000 tasks.
func BenchmarkBatch(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			for b.Loop() {
				peak := runBatchOnce(b, n)
				b.ReportMetric(peak/float64(n), "peak-heap-B/task")
			}
		})
	}
}

func runBatchOnce(b *testing.B, n int) float64 {
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	cfg := bench.DefaultConfig()
	cfg.Strategies = []string{"project-poll"}
	cfg.TasksPerStrategy, cfg.Batch, cfg.Concurrency = n, n, 1
	cfg.Images, cfg.ImageSize, cfg.SegmentSizes = 1, "16x12", []int{1}
	cfg.Timeout, cfg.PollInterval = 5*time.Minute, 10*time.Millisecond
	cfg.OutDir = b.TempDir()
	admin := loginClient(b, hs.URL, "admin", "admin")
	r, err := bench.New(cfg, bench.WithClient(admin))
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	})
	res, err := r.Run(context.Background())
	close(stop)
	wg.Wait()
	if err != nil || res.Errors != 0 {
		b.Fatalf("run: %v, %+v", err, res)
	}
	return float64(peak) - float64(before.HeapInuse)
}
