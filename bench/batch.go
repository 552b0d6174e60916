package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// batchUploadParallel bounds the creates and uploads of one batch in flight at once: a pipeline sends its
// tasks together, but not thousands of uploads at the same instant.
const batchUploadParallel = 8

// batchLoop is the closed loop of a batch run: Concurrency workers, each running one batch at a time.
func (r *Runner) batchLoop(ctx context.Context, runID string, files []cvat.File, slots []Slot, col *collector) []*record.Recorder {
	batches := Batches(r.cfg, slots)
	queue := make(chan int)
	start := r.clock.Now()
	go func() {
		defer close(queue)
		for i := range batches {
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
	recorders := make([]*record.Recorder, r.cfg.ShardConcurrency())
	var wg sync.WaitGroup
	for i := range recorders {
		rec := record.NewRecorder()
		recorders[i] = rec
		wg.Go(func() {
			for b := range queue {
				if ctx.Err() != nil || r.timeUp(start) {
					continue
				}
				for _, tr := range r.batch(ctx, runID, files, batches[b], b+1) {
					col.finish(tr, rec)
				}
			}
		})
	}
	wg.Wait()
	return recorders
}

// batch runs one batch: its tasks are created and uploaded together (batchUploadParallel at a time), then
// waited for, per task by a per-task strategy, or all at once by a project-level one in a project of the
// batch's own. Config.Timeout bounds the whole batch. Every task created is tracked for cleanup, whatever
// fails.
func (r *Runner) batch(runCtx context.Context, runID string, files []cvat.File, slots []Slot, number int) []record.Trial {
	name := slots[0].Strategy
	strat := r.strats[name]
	bs, projectLevel := strat.(strategies.BatchStrategy)
	bctx, cancel := context.WithTimeout(runCtx, r.cfg.Timeout)
	defer cancel()
	out := make([]record.Trial, len(slots))
	stamp := func() {
		for i := range out {
			out[i].Batch, out[i].BatchSize = number, len(slots)
		}
		setMakespan(out)
	}

	r.mu.Lock()
	projectID := r.projects[name]
	r.mu.Unlock()
	waits := &callLog{} // a project-level strategy's calls for the whole batch, its set-up included
	if projectLevel {
		id, err := r.createProject(bctx, fmt.Sprintf("%s%s%s-%s-b%d", NamePrefix, runID, shardTag(r.cfg), name, number))
		if err != nil {
			for i, s := range slots {
				out[i] = r.setupFailure(runCtx, bctx, runID, files, s, fmt.Errorf("create batch project: %w", err))
			}
			stamp()
			return out
		}
		projectID = id
		if bp, ok := strat.(strategies.BatchPreparer); ok {
			pctx := cvat.WithCallObserver(cvat.WithCallObserver(bctx, func(c cvat.Call) { r.observer.APICall(name, c) }), waits.observe)
			if err := bp.PrepareBatch(pctx, projectID); err != nil {
				for i, s := range slots {
					out[i] = r.setupFailure(runCtx, bctx, runID, files, s, fmt.Errorf("prepare batch: %w", err))
				}
				stamp()
				return out
			}
		}
	}

	started := make([]*startedTrial, len(slots))
	sem := make(chan struct{}, min(len(slots), batchUploadParallel))
	var wg sync.WaitGroup
	for i, s := range slots {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			st, ok := r.startTrial(runCtx, bctx, runID, files, s, nil, projectID)
			if ok {
				started[i] = st
			} else {
				out[i] = st.rec
			}
		})
	}
	wg.Wait()

	if projectLevel {
		r.waitProjectLevel(runCtx, bctx, bs, projectID, started, out, waits)
	} else {
		for i, st := range started {
			if st == nil {
				continue
			}
			wg.Go(func() {
				waits := &callLog{}
				o, err := strat.Wait(cvat.WithCallObserver(st.ctx, waits.observe), r.api, r.clock, st.strategyTrial())
				out[i] = r.finishTrial(runCtx, st, o, err, r.clock.Now(), waits)
			})
		}
		wg.Wait()
	}
	stamp()
	return out
}

// waitProjectLevel runs a project-level strategy over the started trials of a batch and records each: the
// batch's waiting requests are shared by the tasks that waited (Trial.RequestsShare).
func (r *Runner) waitProjectLevel(runCtx, bctx context.Context, bs strategies.BatchStrategy, projectID int,
	started []*startedTrial, out []record.Trial, waits *callLog) {
	var idx []int
	var trials []strategies.Trial
	for i, st := range started {
		if st != nil {
			idx = append(idx, i)
			trials = append(trials, st.strategyTrial())
		}
	}
	if len(trials) == 0 {
		return
	}
	type result struct {
		out      strategies.Outcome
		err      error
		returned time.Time
		set      bool
	}
	results := make([]result, len(trials))
	var mu sync.Mutex
	bapi, ok := r.api.(strategies.BatchAPI)
	if !ok {
		for k := range trials {
			results[k] = result{err: errors.New("project-level strategies need a client that lists requests"), set: true}
		}
	} else {
		wctx := cvat.WithCallObserver(bctx, func(c cvat.Call) { r.observer.APICall(bs.Name(), c) })
		bs.WaitBatch(cvat.WithCallObserver(wctx, waits.observe), bapi, r.clock, projectID, trials,
			func(k int, o strategies.Outcome, err error) {
				now := r.clock.Now()
				mu.Lock()
				defer mu.Unlock()
				if !results[k].set {
					results[k] = result{out: o, err: err, returned: now, set: true}
				}
			})
	}
	share := float64(waits.n) / float64(len(trials))
	for k, i := range idx {
		res := results[k]
		if !res.set {
			err := bctx.Err()
			if err == nil {
				err = errors.New("the batch strategy returned without an answer for this task")
			}
			res = result{err: err, returned: r.clock.Now()}
		}
		st := started[i]
		out[i] = r.finishTrial(runCtx, st, res.out, res.err, res.returned, nil)
		out[i].RequestsShare = &share
	}
}

// setMakespan puts the batch's makespan on every trial: its first create_sent_at to its last
// jobs_obtained_at, over the ok trials.
func setMakespan(trials []record.Trial) {
	var first, last time.Time
	for _, t := range trials {
		if t.CreateSentAt != nil && (first.IsZero() || t.CreateSentAt.Before(first)) {
			first = *t.CreateSentAt
		}
		if t.Result == record.ResultOK && t.JobsObtainedAt != nil && t.JobsObtainedAt.After(last) {
			last = *t.JobsObtainedAt
		}
	}
	if first.IsZero() || last.IsZero() {
		return
	}
	m := float64(last.Sub(first).Nanoseconds()) / 1e6
	for i := range trials {
		trials[i].BatchMakespanMs = &m
	}
}

// setupFailure is the record of a slot whose batch could not start: it failed creating, before any task.
func (r *Runner) setupFailure(runCtx, bctx context.Context, runID string, files []cvat.File, s Slot, err error) record.Trial {
	rec := record.Trial{RunID: runID, Seq: s.Seq, Strategy: s.Strategy, ImageQuality: s.ImageQuality, Images: len(files),
		SegmentSize: s.SegmentSize, FailedIn: record.PhaseCreate, CreateSentAt: record.Stamp(r.clock.Now())}
	r.observer.TrialStarted(s.Strategy)
	rec.Result, rec.ErrorClass = classify(runCtx, bctx, err)
	rec.Error = err.Error()
	record.Derive(&rec)
	return rec
}

// createProject creates a project of this run, adopting the one a lost answer created, and tracks it for
// cleanup.
func (r *Runner) createProject(ctx context.Context, name string) (int, error) {
	spec := cvat.ProjectSpec{Name: name, Labels: []cvat.Label{{Name: "object"}}}
	var p cvat.Project
	failedOnce := false
	err := r.retrySetup(ctx, func() error {
		if failedOnce {
			if found, ok := r.findProject(ctx, spec.Name); ok {
				p = found
				return nil
			}
		}
		var err error
		if p, err = r.api.CreateProject(ctx, spec); err != nil {
			failedOnce = true
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.batchProjects = append(r.batchProjects, p.ID)
	r.mu.Unlock()
	return p.ID, nil
}
