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
	start := r.clock.Now()
	queue := r.feed(ctx, start, len(slots))
	recorders := make([]*record.Recorder, r.cfg.ShardConcurrency())
	var wg sync.WaitGroup
	for i := range recorders {
		rec := record.NewRecorder()
		recorders[i] = rec
		wg.Go(func() {
			for i := range queue {
				s := slots[i]
				if ctx.Err() != nil {
					return // a slot taken after the cancel never started
				}
				if r.timeUp(start) {
					continue // nor one after --duration; the feeder stops at its next slot
				}
				col.finish(r.trial(ctx, runID, files, s, nil), rec)
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
			records <- record.Trial{RunID: runID, Seq: s.Seq, Strategy: s.Strategy, ImageQuality: s.ImageQuality,
				SegmentSize: s.SegmentSize, Images: len(files), IntendedAt: record.Stamp(intended), Result: record.ResultDropped,
				Error: fmt.Sprintf("dropped: due while %d trials were in flight (--max-in-flight)", r.cfg.InFlightLimit())}
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
