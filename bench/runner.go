package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

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

// Option configures what a Config cannot hold.
type Option func(*Runner) error

// WithClient sets the CVAT client. Strategies that need per-run setup (Preparer) receive it.
func WithClient(c *cvat.Client) Option {
	return func(r *Runner) error {
		if c == nil {
			return errors.New("nil cvat client")
		}
		r.api, r.client = c, c
		return nil
	}
}

// WithAPI sets the client as an interface, for fakes; strategies implementing Preparer then cannot run.
func WithAPI(api API) Option {
	return func(r *Runner) error {
		if api == nil {
			return errors.New("nil api")
		}
		r.api = api
		return nil
	}
}

// WithClock replaces the real clock.
func WithClock(c Clock) Option {
	return func(r *Runner) error {
		if c == nil {
			return errors.New("nil clock")
		}
		r.clock = c
		return nil
	}
}

// WithObserver receives live events, e.g. for Prometheus metrics.
func WithObserver(o Observer) Option {
	return func(r *Runner) error {
		if o == nil {
			return errors.New("nil observer")
		}
		r.observer = o
		return nil
	}
}

// WithGroundTruth sets where jobs-visible times come from (the emulator's timeline) instead of the estimate
// from the server's finished_date.
func WithGroundTruth(g GroundTruth) Option {
	return func(r *Runner) error {
		r.groundTruth = g
		return nil
	}
}

// WithProgress writes a one-line progress display (carriage return, no newline until the end) to w, for a
// terminal.
func WithProgress(w io.Writer) Option {
	return func(r *Runner) error {
		r.progress = w
		return nil
	}
}

// WithProgressLines writes progress to w as plain lines, at most one per every (and the last), for a log file
// or a CI log, where carriage-return updates would make one endless line.
func WithProgressLines(w io.Writer, every time.Duration) Option {
	return func(r *Runner) error {
		if every <= 0 {
			return fmt.Errorf("progress interval %v must be positive", every)
		}
		r.progress, r.progressEvery = w, every
		return nil
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(r *Runner) error {
		if l == nil {
			return errors.New("nil logger")
		}
		r.log = l
		return nil
	}
}

// WithVersion records the tool version and commit in meta.json.
func WithVersion(version, commit string) Option {
	return func(r *Runner) error {
		r.version, r.commit = version, commit
		return nil
	}
}

// WithEmulatorTerms records the embedded emulator's profile (a profile file's JSON) in meta.json.
func WithEmulatorTerms(profileFile json.RawMessage) Option {
	return func(r *Runner) error {
		if !json.Valid(profileFile) {
			return errors.New("emulator terms are not valid JSON")
		}
		r.emulatorTerms = profileFile
		return nil
	}
}

// WithFaultCounts records in meta.json how many faults the embedded emulator injected (its FaultCounts).
func WithFaultCounts(counts func() map[string]int) Option {
	return func(r *Runner) error {
		r.faultCounts = counts
		return nil
	}
}

// WithPingClock makes the run estimate the clock offset once, before the first trial, from webhook pings
// received on listen (PingOffset), instead of per trial from the upload call. publicURL, if set, is where the
// server posts. If the pings fail the run falls back on the per-trial estimate and says so in meta.json.
func WithPingClock(listen, publicURL string) Option {
	return func(r *Runner) error {
		if listen == "" {
			return errors.New("ping clock: empty listen address")
		}
		r.pingListen, r.pingURL = listen, publicURL
		return nil
	}
}

// WithStrategy replaces the registered strategy of the same name, which must be in Config.Strategies.
func WithStrategy(s strategies.Strategy) Option {
	return func(r *Runner) error {
		if s == nil || !slices.Contains(r.cfg.Strategies, s.Name()) {
			return fmt.Errorf("strategy override %v is not among the configured strategies", s)
		}
		r.strats[s.Name()] = s
		return nil
	}
}

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
	tasks    []int                 // created in this run, in creation order
	projects map[string]int        // strategy -> project id
	prepared []strategies.Preparer // Prepare succeeded or was attempted: Close them
}

// New validates cfg, builds its strategies and applies opts. A client (WithClient or WithAPI) is required.
func New(cfg Config, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
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
		s, err := strategies.New(name, cfg.Params())
		if err != nil {
			errs = append(errs, fmt.Errorf("strategy %s: %w", name, err))
			continue
		}
		r.strats[name] = s
	}
	if r.api == nil {
		errs = append(errs, errors.New("no cvat client given"))
	} else if _, ok := r.api.(ChunkAPI); !ok && cfg.ChunkMode() != ChunksNone {
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
	w    *resultsWriter
	meta Meta // as written when the trials began
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
	m.TrialsRecorded = w.freeze()
	m.Interrupted, m.Abandoned = true, true
	end := r.clock.Now().UTC()
	m.FinishedAt = &end
	r.mu.Lock()
	m.CleanupErrors = []string{fmt.Sprintf("abandoned by a second interrupt before cleanup: the %d tasks this run created "+
		"and its projects may remain (names start with %s%s)", len(r.tasks), NamePrefix, m.RunID)}
	r.mu.Unlock()
	r.live = nil
	return w.writeFinalMeta(m)
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
	runID := NewRunID(start)
	res = Result{RunID: runID, Planned: r.cfg.Trials()}

	files, err := Workload(r.cfg)
	if err != nil {
		return res, err
	}
	r.originals = newOriginalLumas(files)
	// A receiver port in use would otherwise be found only by Prepare, after the projects were created.
	if slices.Contains(r.cfg.Strategies, "webhook") {
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
	w, err := createResults(r.cfg.OutDir, runID)
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
			if rerr := os.RemoveAll(w.dir); rerr != nil { // err is set: only a failure leaves measuring false
				err = fmt.Errorf("%w (the empty results dir %s could not be removed: %v)", err, w.dir, rerr)
				return
			}
			res.Dir = ""
			return
		}
		if err == nil && cerr != nil {
			err = fmt.Errorf("close trials file: %w", cerr)
		}
	}()
	res.Dir = w.dir
	meta := Meta{
		RunID: runID, ToolVersion: r.version, ToolCommit: r.commit, Config: r.cfg, Seed: r.cfg.Seed,
		Loop: LoopClosed, TrialsPlanned: res.Planned, StartedAt: start, ServerVersion: about.Version,
		ClockOffset: OffsetStats{Method: OffsetMethod, GroundTruth: r.groundTruth != nil},
	}
	if r.cfg.Rate > 0 {
		meta.Loop = LoopOpen
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
	slots := Schedule(r.cfg)
	var recorders []*Recorder
	if r.cfg.Rate > 0 {
		recorders = r.openLoop(ctx, runID, files, slots, col)
	} else {
		recorders = r.closedLoop(ctx, runID, files, slots, col)
	}
	col.done()
	end := r.clock.Now().UTC()

	total := NewRecorder()
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

// setup creates one project per strategy and prepares the strategies that need it.
func (r *Runner) setup(ctx context.Context, runID string) error {
	r.estimateClock(ctx, runID)
	for _, name := range r.cfg.Strategies {
		spec := cvat.ProjectSpec{Name: NamePrefix + runID + "-" + name, Labels: []cvat.Label{{Name: "object"}}}
		var p cvat.Project
		failedOnce := false
		err := r.retrySetup(ctx, func() error {
			if failedOnce { // a lost answer may have created it: adopt it rather than make a second one
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
			return fmt.Errorf("create project for %s: %w", name, err)
		}
		r.mu.Lock()
		r.projects[name] = p.ID
		r.mu.Unlock()
		if prep, ok := r.strats[name].(strategies.Preparer); ok {
			r.mu.Lock()
			r.prepared = append(r.prepared, prep)
			r.mu.Unlock()
			if err := prep.Prepare(ctx, r.client, p.ID); err != nil {
				return fmt.Errorf("prepare strategy %s: %w", name, err)
			}
		}
	}
	return nil
}

// FirstContactTimeout bounds the run's first calls to the server (its version, then the credentials), retries
// included: a wrong URL, a host that drops packets or a server that is still starting fails the run within
// seconds, before anything is written or created, instead of after minutes of retries.
const FirstContactTimeout = 5 * time.Second

// checkServer reads the server version and, when the client can tell (*cvat.Client can), checks the
// credentials with GET /api/users/self. Transient answers (429, 502-504, a reset) are retried within
// FirstContactTimeout; a refused connection or an unknown host is not: nothing listens there.
func (r *Runner) checkServer(ctx context.Context) (cvat.About, error) {
	cctx, cancel := context.WithTimeout(ctx, FirstContactTimeout)
	defer cancel()
	retry := func(err error) bool { return strategies.Transient(err) && !unreachable(err) }
	// The client's errors already name the call ("server about: GET /api/server/about: 401 ..."), so they
	// are returned without another prefix.
	explain := func(err error) error {
		if ctx.Err() == nil && cctx.Err() != nil {
			return fmt.Errorf("no answer within %v: %w", FirstContactTimeout, err)
		}
		return err
	}
	var about cvat.About
	err := r.retrySetupIf(cctx, retry, func() error {
		var err error
		about, err = r.api.About(cctx)
		return err
	})
	if err != nil {
		return cvat.About{}, explain(err)
	}
	self, ok := r.api.(interface {
		Self(ctx context.Context) (cvat.User, error)
	})
	if !ok {
		return about, nil
	}
	err = r.retrySetupIf(cctx, retry, func() error {
		_, err := self.Self(cctx)
		return err
	})
	if err != nil {
		return cvat.About{}, fmt.Errorf("check credentials: %w", explain(err))
	}
	// A read-only access token reads everything and fails the first write (POST /api/projects: 403): say so
	// before the run starts.
	if r.client != nil && r.client.UsesAccessToken() {
		var tok cvat.AccessToken
		err = r.retrySetupIf(cctx, retry, func() error {
			var err error
			tok, err = r.client.AccessTokenSelf(cctx)
			return err
		})
		switch {
		case err != nil:
			return cvat.About{}, fmt.Errorf("check credentials: %w", explain(err))
		case tok.ReadOnly:
			return cvat.About{}, fmt.Errorf("check credentials: the access token %q is read-only, and a run creates "+
				"projects, tasks and webhooks: use a token created with read_only false", tok.Name)
		}
	}
	return about, nil
}

// unreachable reports whether err says that nothing answers at the address as asked: the connection was
// refused, the host name does not resolve, or TLS cannot work (https:// to plain HTTP, a certificate the
// client refuses). Waiting does not fix a wrong URL.
func unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || cvat.IsPermanentTransportError(err) {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// setupAttempts bounds the attempts of one setup call (server version, project creation) under transient
// failures: a run should not die of one 502 before its first trial.
const setupAttempts = 6

// retrySetup calls f until it succeeds, fails for good (strategies.Transient false), or setupAttempts are used,
// pausing 50 ms, 100 ms, ... on the runner's clock in between.
func (r *Runner) retrySetup(ctx context.Context, f func() error) error {
	return r.retrySetupIf(ctx, strategies.Transient, f)
}

// retrySetupIf is retrySetup with its own test of which errors are worth another attempt. The error stays on
// one line (the CLI prints it as one) and still matches both the call's error and ctx's (errors.Is).
func (r *Runner) retrySetupIf(ctx context.Context, retry func(error) bool, f func() error) error {
	pause := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !retry(err) || attempt == setupAttempts {
			return err
		}
		r.log.Debug("setup call failed, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (retries abandoned: %w)", err, ctx.Err())
		case <-r.clock.After(pause):
		}
		pause *= 2
	}
}

// findTask looks for a task of this run by its exact name in its project.
func (r *Runner) findTask(ctx context.Context, name string, projectID int) (cvat.Task, bool) {
	ts, err := r.api.ListTasks(ctx, name)
	if err != nil {
		return cvat.Task{}, false
	}
	for _, t := range ts {
		if t.Name == name && t.ProjectID != nil && *t.ProjectID == projectID {
			return t, true
		}
	}
	return cvat.Task{}, false
}

// findProject looks for this run's project by its exact name, when the client can list projects.
func (r *Runner) findProject(ctx context.Context, name string) (cvat.Project, bool) {
	l, ok := r.api.(interface {
		ListProjects(ctx context.Context, search string) ([]cvat.Project, error)
	})
	if !ok {
		return cvat.Project{}, false
	}
	ps, err := l.ListProjects(ctx, name)
	if err != nil {
		return cvat.Project{}, false
	}
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return cvat.Project{}, false
}

func (r *Runner) closedLoop(ctx context.Context, runID string, files []cvat.File, slots []Slot, col *collector) []*Recorder {
	queue := make(chan Slot)
	start := r.clock.Now()
	go func() {
		defer close(queue)
		for _, s := range slots {
			if r.timeUp(start) {
				return
			}
			select {
			case queue <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	recorders := make([]*Recorder, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range recorders {
		rec := NewRecorder()
		recorders[i] = rec
		wg.Go(func() {
			for s := range queue {
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

// timeUp reports whether Config.Duration has passed since start; trials in flight then finish, no new one
// starts.
func (r *Runner) timeUp(start time.Time) bool {
	return r.cfg.Duration > 0 && !r.clock.Now().Before(start.Add(r.cfg.Duration))
}

// openLoop starts trial seq at its intended time whatever is in flight, and one collector goroutine records
// them all (it is the only user of its Recorder).
func (r *Runner) openLoop(ctx context.Context, runID string, files []cvat.File, slots []Slot, col *collector) []*Recorder {
	rec := NewRecorder()
	records := make(chan TrialRecord)
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
			records <- TrialRecord{RunID: runID, Seq: s.Seq, Strategy: s.Strategy, ImageQuality: s.ImageQuality,
				SegmentSize: s.SegmentSize, Images: len(files), IntendedAt: timePtr(intended), Result: ResultDropped,
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
	return []*Recorder{rec}
}

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
func (r *Runner) trial(runCtx context.Context, runID string, files []cvat.File, s Slot, intended *time.Time) TrialRecord {
	rec := TrialRecord{
		RunID: runID, Seq: s.Seq, Strategy: s.Strategy, ImageQuality: s.ImageQuality, Images: len(files),
		SegmentSize: s.SegmentSize,
	}
	if intended != nil {
		rec.IntendedAt = timePtr(*intended)
	}
	r.observer.TrialStarted(s.Strategy)
	tctx, cancel := context.WithTimeout(runCtx, r.cfg.Timeout)
	defer cancel()
	tctx = cvat.WithCallObserver(tctx, func(c cvat.Call) { r.observer.APICall(s.Strategy, c) })
	fail := func(err error) TrialRecord {
		rec.Result, rec.ErrorClass = classify(runCtx, tctx, err)
		rec.Error = err.Error()
		r.complete(runCtx, &rec, nil, "", nil)
		return rec
	}

	r.mu.Lock()
	projectID := r.projects[s.Strategy]
	r.mu.Unlock()
	rec.CreateSentAt = timePtr(r.clock.Now())
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
		rec.FailedIn = PhaseCreate
		return fail(fmt.Errorf("create task: %w", err))
	}
	rec.TaskCreatedAt = timePtr(r.clock.Now())
	rec.TaskID = task.ID
	r.mu.Lock()
	r.tasks = append(r.tasks, task.ID)
	r.mu.Unlock()

	uploads := &callLog{}
	uploadSent := r.clock.Now()
	rqID, err := r.api.UploadData(cvat.WithCallObserver(tctx, uploads.observe), task.ID,
		cvat.DataSpec{ImageQuality: s.ImageQuality}, files, uploadMode(r.cfg.UploadMode))
	if err != nil {
		rec.FailedIn = PhaseUpload
		return fail(fmt.Errorf("upload data: %w", err))
	}
	uploadDone := r.clock.Now()
	rec.UploadDoneAt = timePtr(uploadDone)
	window := [2]time.Time{uploadSent, uploadDone}
	if _, isReal := r.clock.(realClock); isReal && uploads.upload != nil {
		// The client stamps calls with the real clock: use the one call that created the request, a tighter
		// window than the whole (possibly multi-batch) upload.
		c := uploads.upload
		window = [2]time.Time{c.Start, c.Start.Add(c.Duration)}
	}

	waits := &callLog{}
	out, err := r.strats[s.Strategy].Wait(cvat.WithCallObserver(tctx, waits.observe), r.api, r.clock,
		strategies.Trial{TaskID: task.ID, RqID: rqID, ProjectID: projectID, Images: len(files), UploadedAt: uploadDone})
	obtained := r.clock.Now()
	rec.Requests, rec.RequestsByEndpoint = waits.n, waits.byEndpoint
	rec.Signal = out.Signal
	switch {
	case err != nil:
		rec.Result, rec.ErrorClass = classify(runCtx, tctx, err)
		rec.Error, rec.FailedIn = fmt.Sprintf("wait: %v", err), PhaseWait
	case len(out.JobIDs) == 0:
		rec.Result, rec.ErrorClass, rec.Error, rec.FailedIn = ResultError, "other", "wait: strategy returned no job ids", PhaseWait
	default:
		rec.Result = ResultOK
		rec.JobIDs = out.JobIDs
		if !out.SeenAt.IsZero() {
			obtained = out.SeenAt
		}
		rec.JobsObtainedAt = timePtr(obtained)
	}
	jobs := r.complete(runCtx, &rec, out.Request, rqID, &window)
	r.probeChunks(runCtx, &rec, r.originals, jobs)
	return rec
}

// requestDone reports whether req carries its final server dates.
func requestDone(req *cvat.Request) bool {
	return req != nil && (req.FinishedDate != nil || req.Status == cvat.StatusFailed)
}

// finalRequest reads the creation request after the wait, outside the strategy's count, until it carries its
// finished date: strategies that only list jobs return while the request still reads "started" (jobs become
// visible a few milliseconds before finished, API.md §9.3). It gives up after 10 s and keeps what it saw.
func (r *Runner) finalRequest(runCtx context.Context, rec *TrialRecord, rqID string, seen *cvat.Request) *cvat.Request {
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
func (r *Runner) complete(runCtx context.Context, rec *TrialRecord, req *cvat.Request, rqID string, window *[2]time.Time) (jobs []cvat.Job) {
	defer Derive(rec)
	if runCtx.Err() != nil || rec.TaskID == 0 {
		return
	}
	if rqID != "" && !requestDone(req) {
		req = r.finalRequest(runCtx, rec, rqID, req)
	}
	var offset time.Duration
	haveOffset := false
	if req != nil {
		rec.RequestCreatedAt = timePtr(req.CreatedDate)
		if req.StartedDate != nil {
			rec.RequestStartedAt = timePtr(*req.StartedDate)
		}
		if req.FinishedDate != nil {
			rec.RequestFinishedAt = timePtr(*req.FinishedDate)
		}
		if r.runOffset != nil {
			offset, haveOffset = r.runOffset.Offset, true
			rec.ClockOffsetMs, rec.ClockOffsetErrorMs = floatPtr(ms(offset)), floatPtr(ms(r.runOffset.Bound))
		} else if window != nil {
			if off, bound, ok := EstimateOffset(req.CreatedDate, window[0], window[1]); ok {
				offset, haveOffset = off, true
				rec.ClockOffsetMs, rec.ClockOffsetErrorMs = floatPtr(ms(off)), floatPtr(ms(bound))
			}
		}
	}
	if rec.Result != ResultOK {
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
			rec.JobsVisibleAt, rec.JobsVisibleSource = timePtr(t), VisibleFromEmulator
			return
		}
	}
	if haveOffset && rec.RequestFinishedAt != nil {
		rec.JobsVisibleAt = timePtr(ToLocal(*rec.RequestFinishedAt, offset))
		rec.JobsVisibleSource = VisibleFromServerFinished
		// The lower end of the bracket: the jobs were committed after the newest job row was inserted. One
		// listing after the wait, outside the strategy's request count.
		var newest time.Time
		if newest, jobs = r.newestJobCreated(runCtx, rec); !newest.IsZero() {
			rec.NewestJobCreatedAt = timePtr(newest)
			rec.JobsVisibleAfter = timePtr(ToLocal(newest, offset))
		}
	}
	return jobs
}

// newestJobCreated is the latest created_date of the task's jobs (server clock; zero when unknown), and the
// jobs it listed.
func (r *Runner) newestJobCreated(runCtx context.Context, rec *TrialRecord) (time.Time, []cvat.Job) {
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

// estimateClock runs the ping exchange on a project of its own, when WithPingClock asked for it. A failure
// is logged and leaves the per-trial estimate in charge.
func (r *Runner) estimateClock(ctx context.Context, runID string) {
	if r.pingListen == "" || r.client == nil {
		return
	}
	name := NamePrefix + runID + "-clock"
	p, err := r.api.CreateProject(ctx, cvat.ProjectSpec{Name: name, Labels: []cvat.Label{{Name: "object"}}})
	if err != nil {
		r.clockErr = fmt.Sprintf("create clock project: %v", err)
		return
	}
	r.clockProject = p.ID
	ln, err := net.Listen("tcp", r.pingListen)
	if err != nil {
		r.clockErr = fmt.Sprintf("clock receiver: %v", err)
		return
	}
	est, err := PingOffset(ctx, r.client, p.ID, ln, r.pingURL, name, 20, time.Now)
	if err != nil {
		r.clockErr = err.Error()
		r.log.Warn("clock offset by ping failed; using the per-trial estimate", "err", err)
		return
	}
	r.runOffset = &est
}

// classify maps a trial error to a result and class: a cancelled run is "canceled", the trial's own deadline a
// timeout, anything else as strategies.Classify says.
func classify(runCtx, trialCtx context.Context, err error) (result, class string) {
	switch {
	case runCtx.Err() != nil:
		return ResultCanceled, strategies.ClassCanceled
	case errors.Is(trialCtx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout, "timeout"
	default:
		return ResultError, strategies.Classify(err)
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

// cleanup deletes, by id, every task, webhook and project this run created, and nothing else. With the run
// ctx already cancelled it works on a fresh, bounded context.
func (r *Runner) cleanup(ctx context.Context, runID string) []string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []string
	r.mu.Lock()
	tasks := slices.Clone(r.tasks)
	prepared := slices.Clone(r.prepared)
	projectIDs := map[int]bool{}
	var projects []int
	for _, name := range r.cfg.Strategies {
		if id, ok := r.projects[name]; ok {
			projects = append(projects, id)
			projectIDs[id] = true
		}
	}
	r.mu.Unlock()

	deleted := map[int]bool{}
	for _, id := range tasks {
		if err := r.deleteTask(cctx, id); err != nil {
			errs = append(errs, err.Error())
		}
		deleted[id] = true
	}
	// A create cancelled in flight may have created a task whose id never reached us: find it by its exact
	// run-specific name in one of this run's projects, and delete it by id.
	if len(projects) > 0 {
		prefix := NamePrefix + runID + "-"
		found, err := r.api.ListTasks(cctx, prefix)
		if err != nil {
			errs = append(errs, fmt.Sprintf("list tasks for cleanup: %v", err))
		}
		for _, t := range found {
			if deleted[t.ID] || !strings.HasPrefix(t.Name, prefix) || t.ProjectID == nil || !projectIDs[*t.ProjectID] {
				continue
			}
			if err := r.deleteTask(cctx, t.ID); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if r.clockProject != 0 {
		projects = append(projects, r.clockProject)
	}
	for _, p := range prepared {
		if err := p.Close(cctx); err != nil {
			errs = append(errs, fmt.Sprintf("close strategy: %v", err))
		}
	}
	for _, id := range projects {
		if err := r.api.DeleteProject(cctx, id); err != nil && !errors.Is(err, cvat.ErrNotFound) {
			errs = append(errs, fmt.Sprintf("delete project %d: %v", id, err))
		}
	}
	sort.Strings(errs)
	return errs
}

// deleteTask deletes one task; a 409 means the worker still holds the task (API.md §4.3), so it tries again,
// as after a transient failure (the client's own retries of the idempotent DELETE were not enough).
func (r *Runner) deleteTask(ctx context.Context, id int) error {
	var err error
	for attempt := range 5 {
		err = r.api.DeleteTask(ctx, id)
		if err == nil || errors.Is(err, cvat.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, cvat.ErrConflict) && !strategies.Transient(err) {
			break
		}
		select {
		case <-r.clock.After(time.Duration(attempt+1) * time.Second):
		case <-ctx.Done():
			return fmt.Errorf("delete task %d: %w", id, ctx.Err())
		}
	}
	return fmt.Errorf("delete task %d: %w", id, err)
}

type nopObserver struct{}

func (nopObserver) TrialStarted(string)       {}
func (nopObserver) APICall(string, cvat.Call) {}
func (nopObserver) TrialFinished(TrialRecord) {}

// collector is where finished trials go: the observer, trials.jsonl, the worker's recorder and the progress
// line. finish is safe for concurrent use; each recorder is used by one goroutine only.
type collector struct {
	r     *Runner
	w     *resultsWriter
	total int
	start time.Time

	mu           sync.Mutex
	recorded     int
	errors       int
	canceled     int
	dropped      int
	printed      bool      // a plain progress line was written
	lastLine     time.Time // when
	offsetErrors []float64
	writeErr     error
}

func newCollector(r *Runner, w *resultsWriter, total int, start time.Time) *collector {
	c := &collector{r: r, w: w, total: total, start: start}
	c.draw()
	return c
}

func (c *collector) finish(rec TrialRecord, into *Recorder) {
	into.Record(rec)
	c.r.observer.TrialFinished(rec)
	err := c.w.Append(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recorded++
	switch rec.Result {
	case ResultOK:
	case ResultCanceled:
		c.canceled++
	case ResultDropped:
		c.dropped++
	default:
		c.errors++
	}
	if rec.ClockOffsetErrorMs != nil {
		c.offsetErrors = append(c.offsetErrors, *rec.ClockOffsetErrorMs)
	}
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
	c.drawLocked()
}

func (c *collector) draw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawLocked()
}

func (c *collector) drawLocked() {
	if c.r.progress == nil {
		return
	}
	now := c.r.clock.Now()
	elapsed := now.Sub(c.start).Truncate(time.Second)
	if c.r.progressEvery == 0 {
		fmt.Fprintf(c.r.progress, "\r%d/%d trials, %d errors, %s elapsed ", c.recorded, c.total, c.errors, elapsed)
		return
	}
	if c.printed && now.Sub(c.lastLine) < c.r.progressEvery && c.recorded < c.total {
		return
	}
	c.printed, c.lastLine = true, now
	fmt.Fprintf(c.r.progress, "progress: %d/%d trials, %d errors, %s elapsed\n", c.recorded, c.total, c.errors, elapsed)
}

func (c *collector) done() {
	if c.r.progress == nil {
		return
	}
	if c.r.progressEvery == 0 {
		c.draw()
		fmt.Fprintln(c.r.progress)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recorded < c.total { // stopped early: the last state was maybe not printed
		c.printed = false
		c.drawLocked()
	}
}
