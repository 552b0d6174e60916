package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

func (r *Runner) closedLoop(ctx context.Context, runID string, files []cvat.File, slots []Slot, col *collector) []*record.Recorder {
	return r.workers(ctx, len(slots), func(i int, rec *record.Recorder) {
		col.finish(r.trial(ctx, runID, files, slots[i], nil), rec)
	})
}

// workers runs the closed loop over n units (trials or batches): ShardConcurrency workers, each with its own
// record.Recorder, take the units in order and run do. A unit taken after the cancel, or after --duration,
// never starts; the feeder stops at its next one.
func (r *Runner) workers(ctx context.Context, n int, do func(i int, rec *record.Recorder)) []*record.Recorder {
	start := r.clock.Now()
	queue := r.feed(ctx, start, n)
	recorders := make([]*record.Recorder, r.cfg.ShardConcurrency())
	var wg sync.WaitGroup
	for w := range recorders {
		rec := record.NewRecorder()
		recorders[w] = rec
		wg.Go(func() {
			for i := range queue {
				if ctx.Err() != nil {
					return
				}
				if r.timeUp(start) {
					continue
				}
				do(i, rec)
			}
		})
	}
	wg.Wait()
	return recorders
}

// feed hands the indices 0..n-1 to the closed loop's workers in order, until --duration is up or ctx ends.
func (r *Runner) feed(ctx context.Context, start time.Time, n int) <-chan int {
	queue := make(chan int)
	go func() {
		defer close(queue)
		for i := range n {
			if r.timeUp(start) {
				return
			}
			select {
			case queue <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return queue
}

// timeUp reports whether Config.Duration has passed since start; trials in flight then finish, no new one
// starts.
func (r *Runner) timeUp(start time.Time) bool {
	return r.cfg.Duration > 0 && !r.clock.Now().Before(start.Add(r.cfg.Duration))
}

// openLoop starts trial seq at its intended time whatever is in flight, and one collector goroutine records
// them all (it is the only user of its record.Recorder).
func (r *Runner) openLoop(ctx context.Context, runID string, files []cvat.File, slots []Slot, col *collector) []*record.Recorder {
	rec := record.NewRecorder()
	records := make(chan record.Trial)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for tr := range records {
			col.finish(tr, rec)
		}
	}()
	start := r.clock.Now()
	// At most MaxInFlight trials at once: against a server that cannot keep up, a trial due while they are
	// all in flight is dropped (recorded, never started), as k6's arrival-rate executors do, instead of piling
	// up goroutines and memory without bound or shifting the schedule of the trials after it.
	slotsFree := make(chan struct{}, r.cfg.InFlightLimit())
	var wg sync.WaitGroup
	for _, s := range slots {
		intended := IntendedStart(start, r.cfg.Rate, s.Seq)
		if r.cfg.Duration > 0 && !intended.Before(start.Add(r.cfg.Duration)) {
			break // due after --duration: not started
		}
		if d := intended.Sub(r.clock.Now()); d > 0 {
			select {
			case <-r.clock.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slotsFree <- struct{}{}:
		default:
			rec := slotRecord(runID, files, s)
			rec.IntendedAt, rec.Result = record.Stamp(intended), record.ResultDropped
			rec.Error = fmt.Sprintf("dropped: due while %d trials were in flight (--max-in-flight)", r.cfg.InFlightLimit())
			records <- rec
			continue
		}
		wg.Go(func() {
			defer func() { <-slotsFree }()
			records <- r.trial(ctx, runID, files, s, &intended)
		})
	}
	wg.Wait()
	close(records)
	<-collected
	return []*record.Recorder{rec}
}
