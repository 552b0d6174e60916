package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// callLog counts the HTTP attempts of one phase of a trial; its observer may be called concurrently.
type callLog struct {
	mu         sync.Mutex
	n          int
	byEndpoint map[string]int
	upload     *cvat.Call // last data call answered 202: the call that created the request
}

func (l *callLog) observe(c cvat.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.byEndpoint == nil {
		l.byEndpoint = map[string]int{}
	}
	l.byEndpoint[fmt.Sprintf("%s %s %d", c.Method, c.Endpoint, c.Status)]++
	if c.Method == "POST" && c.Status == 202 && strings.HasSuffix(c.Endpoint, "/data") {
		cc := c
		l.upload = &cc
	}
}

// trial runs one slot: create the task, upload, wait, then complete the record.
func (r *Runner) trial(runCtx context.Context, runID string, files []cvat.File, s Slot, intended *time.Time) record.Trial {
	r.mu.Lock()
	projectID := r.projects[s.Strategy]
	r.mu.Unlock()
	tctx, cancel := context.WithTimeout(runCtx, r.cfg.Timeout)
	defer cancel()
	st, ok := r.startTrial(runCtx, tctx, runID, files, s, intended, projectID)
	if !ok {
		return st.rec
	}
	waits := &callLog{}
	out, err := r.strats[s.Strategy].Wait(cvat.WithCallObserver(st.ctx, waits.observe), r.api, r.clock, st.strategyTrial())
	return r.finishTrial(runCtx, st, out, err, r.clock.Now(), waits)
}

// slotRecord is the record of slot s before anything happened: what the schedule says of it.
func slotRecord(runID string, files []cvat.File, s Slot) record.Trial {
	return record.Trial{RunID: runID, Seq: s.Seq, Strategy: s.Strategy, ImageQuality: s.ImageQuality, Images: len(files),
		SegmentSize: s.SegmentSize}
}

// startedTrial is a trial past its upload, ready to wait.
type startedTrial struct {
	rec        record.Trial
	ctx        context.Context // the trial's (or its batch's) deadline, with the run's observer
	rqID       string
	projectID  int
	images     int
	uploadDone time.Time
	window     [2]time.Time // when the creation request was made, local clock: bounds the clock offset
}

func (st *startedTrial) strategyTrial() strategies.Trial {
	return strategies.Trial{TaskID: st.rec.TaskID, RqID: st.rqID, ProjectID: st.projectID, Images: st.images, UploadedAt: st.uploadDone}
}

// startTrial creates the task of slot s in project projectID and uploads its data, within tctx. On failure it
// returns the completed record and false.
func (r *Runner) startTrial(runCtx, tctx context.Context, runID string, files []cvat.File, s Slot, intended *time.Time,
	projectID int) (*startedTrial, bool) {
	st := &startedTrial{projectID: projectID, images: len(files), rec: slotRecord(runID, files, s)}
	rec := &st.rec
	if intended != nil {
		rec.IntendedAt = record.Stamp(*intended)
	}
	r.observer.TrialStarted(s.Strategy)
	tctx = cvat.WithCallObserver(tctx, func(c cvat.Call) { r.observer.APICall(s.Strategy, c) })
	st.ctx = tctx
	fail := func(err error) (*startedTrial, bool) {
		rec.Result, rec.ErrorClass = classify(runCtx, tctx, err)
		rec.Error = err.Error()
		r.complete(runCtx, rec, nil, "", nil)
		return st, false
	}

	rec.CreateSentAt = record.Stamp(r.clock.Now())
	spec := cvat.TaskSpec{
		Name:        fmt.Sprintf("%s%s-%s-%d", NamePrefix, runID, s.Strategy, s.Seq),
		ProjectID:   &projectID,
		SegmentSize: s.SegmentSize,
	}
	// A transient failure (no answer, 429, 502-504) is retried within the trial's deadline, so that faults
	// reach the wait strategies instead of ending trials before they wait; the latency still counts from the
	// first attempt. The name is unique per trial, so a task that a lost answer did create is adopted.
	var task cvat.Task
	failedOnce := false
	err := r.retrySetup(tctx, func() error {
		if failedOnce {
			if found, ok := r.findTask(tctx, spec.Name, projectID); ok {
				task = found
				return nil
			}
		}
		var err error
		if task, err = r.api.CreateTask(tctx, spec); err != nil {
			failedOnce = true
		}
		return err
	})
	if err != nil {
		rec.FailedIn = record.PhaseCreate
		return fail(fmt.Errorf("create task: %w", err))
	}
	rec.TaskCreatedAt = record.Stamp(r.clock.Now())
	rec.TaskID = task.ID
	r.mu.Lock()
	r.tasks = append(r.tasks, task.ID)
	r.mu.Unlock()

	uploads := &callLog{}
	uploadSent := r.clock.Now()
	rqID, err := r.api.UploadData(cvat.WithCallObserver(tctx, uploads.observe), task.ID,
		cvat.DataSpec{ImageQuality: s.ImageQuality}, files, uploadMode(r.cfg.UploadMode))
	if err != nil {
		rec.FailedIn = record.PhaseUpload
		return fail(fmt.Errorf("upload data: %w", err))
	}
	st.rqID = rqID
	st.uploadDone = r.clock.Now()
	rec.UploadDoneAt = record.Stamp(st.uploadDone)
	st.window = [2]time.Time{uploadSent, st.uploadDone}
	if _, isReal := r.clock.(realClock); isReal && uploads.upload != nil {
		// The client stamps calls with the real clock: use the one call that created the request, a tighter
		// window than the whole (possibly multi-batch) upload.
		c := uploads.upload
		st.window = [2]time.Time{c.Start, c.Start.Add(c.Duration)}
	}
	return st, true
}

// finishTrial records what the wait of st returned at returned (the clock when Wait returned), with the
// calls waits counted, and completes the record.
func (r *Runner) finishTrial(runCtx context.Context, st *startedTrial, out strategies.Outcome, err error, returned time.Time,
	waits *callLog) record.Trial {
	rec := &st.rec
	obtained := returned
	if waits != nil {
		rec.Requests, rec.RequestsByEndpoint = waits.n, waits.byEndpoint
	}
	rec.Signal = out.Signal
	switch {
	case err != nil:
		rec.Result, rec.ErrorClass = classify(runCtx, st.ctx, err)
		rec.Error, rec.FailedIn = fmt.Sprintf("wait: %v", err), record.PhaseWait
	case len(out.JobIDs) == 0:
		rec.Result, rec.ErrorClass, rec.Error, rec.FailedIn = record.ResultError, "other", "wait: strategy returned no job ids", record.PhaseWait
	default:
		rec.Result = record.ResultOK
		rec.JobIDs = out.JobIDs
		if !out.SeenAt.IsZero() {
			obtained = out.SeenAt
		}
		rec.JobsObtainedAt = record.Stamp(obtained)
	}
	jobs := r.complete(runCtx, rec, out.Request, st.rqID, &st.window)
	r.probeChunks(runCtx, rec, r.originals, jobs)
	return *rec
}

// requestDone reports whether req carries its final server dates.
func requestDone(req *cvat.Request) bool {
	return req != nil && (req.FinishedDate != nil || req.Status == cvat.StatusFailed)
}

// finalRequest reads the creation request after the wait, outside the strategy's count, until it carries its
// finished date: strategies that only list jobs return while the request still reads "started" (jobs become
// visible a few milliseconds before finished, API.md §9.3). It gives up after 10 s and keeps what it saw.
func (r *Runner) finalRequest(runCtx context.Context, rec *record.Trial, rqID string, seen *cvat.Request) *cvat.Request {
	gctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
	defer cancel()
	gctx = cvat.WithCallObserver(gctx, func(c cvat.Call) { r.observer.APICall(rec.Strategy, c) })
	pause := 10 * time.Millisecond
	for {
		rq, err := r.api.GetRequest(gctx, rqID)
		if err != nil {
			r.log.Debug("request after wait", "task", rec.TaskID, "err", err)
			return seen
		}
		seen = &rq
		if requestDone(seen) {
			return seen
		}
		select {
		case <-gctx.Done():
			return seen
		case <-r.clock.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// complete adds server dates, the jobs-visible time and the derived durations to rec. It returns the task's
// jobs when it listed them (on a real server, for the newest job row), so the chunk probe need not list again.
func (r *Runner) complete(runCtx context.Context, rec *record.Trial, req *cvat.Request, rqID string, window *[2]time.Time) (jobs []cvat.Job) {
	defer record.Derive(rec)
	if runCtx.Err() != nil || rec.TaskID == 0 {
		return
	}
	if rqID != "" && !requestDone(req) {
		req = r.finalRequest(runCtx, rec, rqID, req)
	}
	var offset time.Duration
	haveOffset := false
	if req != nil {
		rec.RequestCreatedAt = record.Stamp(req.CreatedDate)
		if req.StartedDate != nil {
			rec.RequestStartedAt = record.Stamp(*req.StartedDate)
		}
		if req.FinishedDate != nil {
			rec.RequestFinishedAt = record.Stamp(*req.FinishedDate)
		}
		if r.runOffset != nil {
			offset, haveOffset = r.runOffset.Offset, true
			rec.ClockOffsetMs, rec.ClockOffsetErrorMs = floatPtr(ms(offset)), floatPtr(ms(r.runOffset.Bound))
		} else if window != nil {
			if off, bound, ok := record.EstimateOffset(req.CreatedDate, window[0], window[1]); ok {
				offset, haveOffset = off, true
				rec.ClockOffsetMs, rec.ClockOffsetErrorMs = floatPtr(ms(off)), floatPtr(ms(bound))
			}
		}
	}
	if rec.Result != record.ResultOK {
		return
	}
	if r.groundTruth != nil {
		gctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
		t, ok, err := r.groundTruth(gctx, rec.TaskID)
		cancel()
		if err != nil {
			r.log.Debug("ground truth", "task", rec.TaskID, "err", err)
		}
		if ok {
			rec.JobsVisibleAt, rec.JobsVisibleSource = record.Stamp(t), record.VisibleFromEmulator
			return
		}
	}
	if haveOffset && rec.RequestFinishedAt != nil {
		rec.JobsVisibleAt = record.Stamp(record.ToLocal(*rec.RequestFinishedAt, offset))
		rec.JobsVisibleSource = record.VisibleFromServerFinished
		// The lower end of the bracket: the jobs were committed after the newest job row was inserted. One
		// listing after the wait, outside the strategy's request count.
		var newest time.Time
		if newest, jobs = r.newestJobCreated(runCtx, rec); !newest.IsZero() {
			rec.NewestJobCreatedAt = record.Stamp(newest)
			rec.JobsVisibleAfter = record.Stamp(record.ToLocal(newest, offset))
		}
	}
	return jobs
}

// newestJobCreated is the latest created_date of the task's jobs (server clock; zero when unknown), and the
// jobs it listed.
func (r *Runner) newestJobCreated(runCtx context.Context, rec *record.Trial) (time.Time, []cvat.Job) {
	gctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
	defer cancel()
	gctx = cvat.WithCallObserver(gctx, func(c cvat.Call) { r.observer.APICall(rec.Strategy, c) })
	page, err := r.api.ListJobs(gctx, cvat.JobsQuery{TaskID: rec.TaskID, PageSize: cvat.PageSizeAll, Sort: "id"})
	if err != nil {
		r.log.Debug("jobs after wait", "task", rec.TaskID, "err", err)
		return time.Time{}, nil
	}
	var newest time.Time
	for _, j := range page.Results {
		if j.CreatedDate.After(newest) {
			newest = j.CreatedDate
		}
	}
	return newest, page.Results
}

// classify maps a trial error to a result and class: a cancelled run is "canceled", the trial's own deadline a
// timeout, anything else as strategies.Classify says.
func classify(runCtx, trialCtx context.Context, err error) (result, class string) {
	switch {
	case runCtx.Err() != nil:
		return record.ResultCanceled, strategies.ClassCanceled
	case errors.Is(trialCtx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return record.ResultTimeout, "timeout"
	default:
		return record.ResultError, strategies.Classify(err)
	}
}

func uploadMode(s string) cvat.UploadMode {
	switch s {
	case "sdk":
		return cvat.UploadSDK
	case "tus":
		return cvat.UploadTUS
	default:
		return cvat.UploadSingle
	}
}
