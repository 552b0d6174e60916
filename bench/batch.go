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
	return r.workers(ctx, len(batches), func(b int, rec *record.Recorder) {
		// A batch's id is its first trial's seq + 1: unique across the shards of a run, so merged shards keep
		// their batches apart.
		for _, tr := range r.batch(ctx, runID, files, batches[b], batches[b][0].Seq+1) {
			col.finish(tr, rec)
		}
	})
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

	// Each task waits from its own upload's 202 on, as a pipeline that hands each task to its waiter would:
	// a per-task strategy in the upload's goroutine (the upload slot freed first), a project-level one by
	// receiving the task on the batch's channel.
	var (
		wg    sync.WaitGroup
		ready chan strategies.IndexedTrial
		pl    *projectWait
	)
	if projectLevel {
		ready = make(chan strategies.IndexedTrial, len(slots))
		pl = r.startProjectWait(bctx, bs, projectID, ready, waits)
	}
	sem := make(chan struct{}, min(len(slots), batchUploadParallel))
	for i, s := range slots {
		sem <- struct{}{}
		wg.Go(func() {
			st, ok := r.startTrial(runCtx, bctx, runID, files, s, nil, projectID)
			<-sem
			switch {
			case !ok:
				out[i] = st.rec
			case projectLevel:
				pl.add(i, st)
				ready <- strategies.IndexedTrial{Index: i, Trial: st.strategyTrial()}
			default:
				waits := &callLog{}
				o, err := strat.Wait(cvat.WithCallObserver(st.ctx, waits.observe), r.api, r.clock, st.strategyTrial())
				out[i] = r.finishTrial(runCtx, st, o, err, r.clock.Now(), waits)
			}
		})
	}
	wg.Wait()
	if projectLevel {
		close(ready)
		pl.finish(runCtx, bctx, r, out)
	}
	stamp()
	return out
}

// projectWait is a project-level strategy's wait over one batch, running while the batch uploads.
type projectWait struct {
	mu      sync.Mutex
	started map[int]*startedTrial
	results map[int]projectResult
	waits   *callLog
	over    chan struct{}
}

type projectResult struct {
	out      strategies.Outcome
	err      error
	returned time.Time
}

// startProjectWait starts bs over the trials sent on ready.
func (r *Runner) startProjectWait(bctx context.Context, bs strategies.BatchStrategy, projectID int,
	ready chan strategies.IndexedTrial, waits *callLog) *projectWait {
	pw := &projectWait{started: map[int]*startedTrial{}, results: map[int]projectResult{}, waits: waits, over: make(chan struct{})}
	bapi, ok := r.api.(strategies.BatchAPI)
	go func() {
		defer close(pw.over)
		if !ok {
			for t := range ready {
				pw.record(t.Index, strategies.Outcome{}, errors.New("project-level strategies need a client that lists requests"), r.clock.Now())
			}
			return
		}
		wctx := cvat.WithCallObserver(bctx, func(c cvat.Call) { r.observer.APICall(bs.Name(), c) })
		bs.WaitBatch(cvat.WithCallObserver(wctx, waits.observe), bapi, r.clock, projectID, ready,
			func(i int, o strategies.Outcome, err error) { pw.record(i, o, err, r.clock.Now()) })
		for range ready { // a strategy that returned early: the rest were never waited for
		}
	}()
	return pw
}

func (pw *projectWait) add(i int, st *startedTrial) {
	pw.mu.Lock()
	pw.started[i] = st
	pw.mu.Unlock()
}

func (pw *projectWait) record(i int, o strategies.Outcome, err error, at time.Time) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if _, dup := pw.results[i]; !dup {
		pw.results[i] = projectResult{o, err, at}
	}
}

// finish waits for the strategy and records every started trial; the batch's waiting requests are shared by
// the tasks that waited (Trial.RequestsShare).
func (pw *projectWait) finish(runCtx, bctx context.Context, r *Runner, out []record.Trial) {
	<-pw.over
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if len(pw.started) == 0 {
		return
	}
	share := float64(pw.waits.n) / float64(len(pw.started))
	for i, st := range pw.started {
		res, ok := pw.results[i]
		if !ok {
			err := bctx.Err()
			if err == nil {
				err = errors.New("the batch strategy returned without an answer for this task")
			}
			res = projectResult{err: err, returned: r.clock.Now()}
		}
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
	rec := slotRecord(runID, files, s)
	rec.FailedIn, rec.CreateSentAt = record.PhaseCreate, record.Stamp(r.clock.Now())
	r.observer.TrialStarted(s.Strategy)
	rec.Result, rec.ErrorClass = classify(runCtx, bctx, err)
	rec.Error = err.Error()
	record.Derive(&rec)
	return rec
}

// createProject creates a batch's project and tracks it for cleanup.
func (r *Runner) createProject(ctx context.Context, name string) (int, error) {
	p, err := r.newProject(ctx, name)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.batchProjects = append(r.batchProjects, p.ID)
	r.mu.Unlock()
	return p.ID, nil
}
