package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// NamePrefix starts the name of every object cvatbench creates, followed by the run id, so a human (and the
// cleanup sweep) can tell them apart from anything else on the server.
const NamePrefix = "cvatbench-"

// API is the part of the CVAT client the runner uses; *cvat.Client satisfies it, tests pass fakes.
type API interface {
	strategies.API
	About(ctx context.Context) (cvat.About, error)
	CreateProject(ctx context.Context, spec cvat.ProjectSpec) (cvat.Project, error)
	DeleteProject(ctx context.Context, id int) error
	CreateTask(ctx context.Context, spec cvat.TaskSpec) (cvat.Task, error)
	DeleteTask(ctx context.Context, id int) error
	ListTasks(ctx context.Context, search string) ([]cvat.Task, error)
	UploadData(ctx context.Context, taskID int, spec cvat.DataSpec, files []cvat.File, mode cvat.UploadMode) (string, error)
}

var _ API = (*cvat.Client)(nil)

// Clock is the runner's time source; strategies receive the same clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

var _ strategies.Clock = Clock(nil)

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// GroundTruth reports when the jobs of a task became visible on the server, on the local clock (the embedded
// emulator knows it exactly). ok is false when it is not known.
type GroundTruth func(ctx context.Context, taskID int) (visibleAt time.Time, ok bool, err error)

// Runner executes one Config. Create it with New; Run may be called once.
type Runner struct {
	cfg           Config
	api           API
	client        *cvat.Client
	clock         Clock
	observer      Observer
	groundTruth   GroundTruth
	progress      io.Writer
	progressEvery time.Duration // 0: carriage-return updates; else plain lines this far apart
	log           *slog.Logger
	version       string
	commit        string
	emulatorTerms json.RawMessage
	pingListen    string
	pingURL       string
	runOffset     *ClockEstimate // from the ping exchange, when it worked
	clockProject  int
	clockErr      string // why the ping exchange did not work
	strats        map[string]strategies.Strategy
	originals     *originalLumas // the workload's luma planes, for the chunk probe
	faultCounts   func() map[string]int

	// live is the run being measured, for Abandon.
	liveMu sync.Mutex
	live   *liveRun

	mu       sync.Mutex
	tasks    []int          // created in this run, in creation order
	projects map[string]int // strategy -> project id
	// batchProjects are the projects of project-level strategies' batches (batch.go), deleted at cleanup.
	batchProjects []int
	prepared      []strategies.Preparer // Prepare succeeded or was attempted: Close them
}

// New validates cfg (Validate), spells its strategy specs canonically (Canonical), builds its strategies and applies opts. A client (WithClient or WithAPI) is required.
func New(cfg Config, opts ...Option) (*Runner, error) {
	cfg = Canonical(cfg)
	if err := Validate(cfg); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	r := &Runner{
		cfg: cfg, clock: realClock{}, observer: nopObserver{}, log: slog.New(slog.DiscardHandler),
		version: "dev", commit: "none", strats: map[string]strategies.Strategy{}, projects: map[string]int{},
	}
	var errs []error
	for _, o := range opts {
		if err := o(r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range cfg.Strategies {
		if _, overridden := r.strats[name]; overridden {
			continue
		}
		s, err := strategies.New(name, strategyParams(cfg))
		if err != nil {
			errs = append(errs, fmt.Errorf("strategy %s: %w", name, err))
			continue
		}
		r.strats[name] = s
	}
	if r.api == nil {
		errs = append(errs, errors.New("no cvat client given"))
	} else if _, ok := r.api.(ChunkAPI); !ok && cfg.ChunkMode() != record.ChunksNone {
		errs = append(errs, fmt.Errorf("chunks %q needs a client that reads chunks (JobChunk)", cfg.ChunkMode()))
	}
	for _, name := range cfg.Strategies {
		s, ok := r.strats[name]
		if !ok {
			continue // already reported
		}
		if _, prep := s.(strategies.Preparer); prep && r.client == nil {
			errs = append(errs, fmt.Errorf("strategy %s needs per-run setup, which needs a *cvat.Client (WithClient)", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// liveRun is what Abandon needs of a run in progress.
type liveRun struct {
	w    *record.Writer
	meta record.Meta // as written when the trials began
}

// Abandon writes what a run in progress has, for a process about to exit without letting Run finish (a
// second interrupt). Every finished trial is already in trials.jsonl; Abandon stops further appends and
// rewrites meta.json with their count, interrupted and abandoned, so that report reads a complete, short run
// that says no cleanup ran. It is safe to call from any goroutine; Run must not be relied on afterwards.
func (r *Runner) Abandon() error {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	if r.live == nil {
		return nil // not measuring yet: nothing was written that needs saying
	}
	w, m := r.live.w, r.live.meta
	m.TrialsRecorded = w.Freeze()
	m.Interrupted, m.Abandoned = true, true
	end := r.clock.Now().UTC()
	m.FinishedAt = &end
	r.mu.Lock()
	m.CleanupErrors = []string{fmt.Sprintf("abandoned by a second interrupt before cleanup: the %d tasks this run created "+
		"and its projects may remain (names start with %s%s)", len(r.tasks), NamePrefix, m.RunID)}
	r.mu.Unlock()
	r.live = nil
	return w.WriteFinalMeta(m)
}

// ResultsDirName is the name of a run's results directory under OutDir: the run id, with the share for a
// shard, so that the shards of one run can write to one volume.
func ResultsDirName(cfg Config, runID string) string {
	if !cfg.Sharded() {
		return runID
	}
	return fmt.Sprintf("%s.shard-%d-of-%d", runID, cfg.ShardIndex, cfg.ShardCount)
}

// shardTag goes into the names of the projects a shard creates ("-s2"), so that shards never adopt each
// other's; task names are unique already, by the run-wide seq.
func shardTag(cfg Config) string {
	if !cfg.Sharded() {
		return ""
	}
	return fmt.Sprintf("-s%d", cfg.ShardIndex)
}

// Result is what Run reports; the results directory holds the details.
type Result struct {
	RunID         string
	Dir           string // OutDir/<run-id>
	Planned       int
	Recorded      int
	Errors        int // trials that timed out or failed
	Canceled      int // trials cut short by the interruption: not errors
	Dropped       int // open-loop trials due while MaxInFlight were in flight, never started
	Interrupted   bool
	CleanupErrors []string
}

// NewRunID returns a run id: UTC timestamp plus 4 random hex digits, sortable and unique enough per second.
func NewRunID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// RedactURL drops credentials, query and fragment from a target URL so it can be written to meta.json.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Run executes the configured trials and cleans up everything it created, also when ctx is cancelled
// (SIGINT): then scheduling stops, in-flight trials are cancelled and recorded with result "canceled" (not
// errors), and the returned error wraps ctx's error. Trial failures are results, not errors.
func (r *Runner) Run(ctx context.Context) (res Result, err error) {
	start := r.clock.Now().UTC()
	runID := cmp.Or(r.cfg.RunID, NewRunID(start))
	res = Result{RunID: runID, Planned: r.cfg.ShardTrials()}

	files, err := Workload(r.cfg)
	if err != nil {
		return res, err
	}
	r.originals = newOriginalLumas(files)
	// A receiver port in use would otherwise be found only by Prepare, after the projects were created.
	if usesStrategy(r.cfg, "webhook") {
		if err := strategies.CheckWebhookListen(r.cfg.WebhookListen); err != nil {
			return res, err
		}
	}
	// The server must answer and accept the credentials before anything is written or created: a wrong URL
	// or token fails fast and leaves nothing behind.
	about, err := r.checkServer(ctx)
	if err != nil {
		return res, err
	}
	w, err := record.Create(r.cfg.OutDir, ResultsDirName(r.cfg, runID))
	if err != nil {
		return res, err
	}
	// measuring turns true once the first trial may start. A run that fails before (project creation, a
	// strategy's Prepare, ^C during set-up) measured nothing, so its directory is removed rather than left
	// for report and compare to trip over; the directory is created early anyway, so an unwritable --out
	// fails before anything is created on the server.
	measuring := false
	defer func() {
		cerr := w.Close()
		if !measuring {
			if rerr := os.RemoveAll(w.Dir()); rerr != nil { // err is set: only a failure leaves measuring false
				err = fmt.Errorf("%w (the empty results dir %s could not be removed: %v)", err, w.Dir(), rerr)
				return
			}
			res.Dir = ""
			return
		}
		if err == nil && cerr != nil {
			err = fmt.Errorf("close trials file: %w", cerr)
		}
	}()
	res.Dir = w.Dir()
	meta := record.Meta{
		RunID: runID, ToolVersion: r.version, ToolCommit: r.commit, Config: r.cfg, Seed: r.cfg.Seed,
		Loop: record.LoopClosed, TrialsPlanned: res.Planned, StartedAt: start, ServerVersion: about.Version,
		ClockOffset: record.OffsetStats{Method: record.OffsetMethod, GroundTruth: r.groundTruth != nil},
	}
	if r.cfg.Rate > 0 {
		meta.Loop = record.LoopOpen
	}
	if r.cfg.Target == "" {
		meta.Target, meta.EmulatorProfile, meta.EmulatorTerms = "embedded", r.cfg.SimProfile, r.emulatorTerms
	} else {
		meta.Target = RedactURL(r.cfg.Target)
		meta.Config.Target = meta.Target
	}
	if err := w.WriteMeta(meta); err != nil {
		return res, err
	}

	defer func() { // cleanup always, also after a failed setup
		res.CleanupErrors = r.cleanup(ctx, runID)
		if !measuring {
			return // the directory goes away: nothing to update
		}
		meta.CleanupErrors = res.CleanupErrors
		if r.faultCounts != nil {
			meta.FaultsInjected = r.faultCounts()
		}
		end := r.clock.Now().UTC()
		meta.FinishedAt = &end
		if merr := w.WriteMeta(meta); err == nil && merr != nil {
			err = merr
		}
	}()

	if err := r.setup(ctx, runID); err != nil {
		return res, err
	}
	if est := r.runOffset; est != nil {
		meta.ClockOffset.Method = est.Method
		meta.ClockOffset.RunOffsetMs, meta.ClockOffset.RunBoundMs = floatPtr(ms(est.Offset)), floatPtr(ms(est.Bound))
		meta.ClockOffset.Pings = est.Samples
	}
	meta.ClockOffset.PingError = r.clockErr
	measuring = true
	r.liveMu.Lock()
	r.live = &liveRun{w: w, meta: meta}
	r.liveMu.Unlock()

	col := newCollector(r, w, res.Planned, start)
	slots := ShardSlots(r.cfg, Schedule(r.cfg))
	var recorders []*record.Recorder
	switch {
	case r.cfg.Rate > 0:
		recorders = r.openLoop(ctx, runID, files, slots, col)
	case r.cfg.Batch > 0:
		recorders = r.batchLoop(ctx, runID, files, slots, col)
	default:
		recorders = r.closedLoop(ctx, runID, files, slots, col)
	}
	col.done()
	end := r.clock.Now().UTC()

	total := record.NewRecorder()
	for _, rec := range recorders {
		if err := total.Merge(rec); err != nil {
			return res, err
		}
	}
	hlogs, herr := w.WriteHlogs(r.cfg.Strategies, total, start, end)
	meta.HistogramFiles = hlogs
	col.mu.Lock()
	res.Recorded, res.Errors, res.Canceled, res.Dropped = col.recorded, col.errors, col.canceled, col.dropped
	meta.DurationUp = r.cfg.Duration > 0 && col.recorded < res.Planned && ctx.Err() == nil
	meta.TrialsRecorded = col.recorded
	meta.ClockOffset.Estimates = len(col.offsetErrors)
	meta.ClockOffset.MaxErrorMs, meta.ClockOffset.MedianErrorMs = maxMedian(col.offsetErrors)
	werr := col.writeErr
	col.mu.Unlock()
	if err := errors.Join(herr, werr); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		res.Interrupted, meta.Interrupted = true, true
		return res, fmt.Errorf("run interrupted after %d of %d trials: %w", res.Recorded, res.Planned, context.Cause(ctx))
	}
	return res, nil
}

func maxMedian(v []float64) (mx, med float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)-1], s[len(s)/2]
}
