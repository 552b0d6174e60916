// Package strategies holds the pluggable ways of waiting for the job IDs of a freshly created CVAT task, from
// the moment its data upload returned the request id (API.md §5.5) until every job ID is known.
//
// Each strategy reproduces a named client faithfully (API.md §10) or is one of ours:
//
//	busyloop  the loop of cvat-ai/cvat#9073: GET /api/jobs?task_id with no pause until non-empty
//	poll      GET /api/jobs?task_id at a fixed interval
//	sdk       cvat-sdk 2.73.0 create_from_data + get_jobs: request status every 5 s
//	cli       cvat-cli 2.73.0 task create: the same loop every 2 s, plus the jobs listing
//	ui        the web UI's requests manager: growing base delays with +0–50 % jitter
//	backoff   exponential backoff with ±jitter over the request status
//	webhook   a local receiver for CVAT's project webhooks, with a slow safety poll
//	adaptive  polls at quantiles of the processing time learnt from earlier trials
//	project-poll     with --batch: one jobs listing of the batch's project per interval covers every task
//	project-webhook  with --batch: one webhook on the batch's project, tasks completed from deliveries alone
//	prealloc  lists the jobs right after the upload: only for the emulator's what-if prealloc-jobs
//
// Strategies make their calls through API, which *cvat.Client satisfies; bench counts the calls through
// cvat.WithCallObserver on the trial's context, so strategies do not count anything themselves. Every wait
// goes through Clock.After and honours ctx.Done(), so tests run a 5 s polling period in microseconds.
package strategies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// API is the part of the CVAT client a strategy may call while waiting.
type API interface {
	GetRequest(ctx context.Context, rqID string) (cvat.Request, error)
	ListJobs(ctx context.Context, q cvat.JobsQuery) (cvat.JobPage, error)
	ListJobsPage(ctx context.Context, nextURL string) (cvat.JobPage, error)
	GetTask(ctx context.Context, id int) (cvat.Task, error)
}

// Clock is how strategies read time and wait; tests pass a fake that advances instantly.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d); since Go 1.23 an abandoned timer is collected without firing.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Trial is one task whose jobs a strategy waits for.
type Trial struct {
	TaskID     int
	RqID       string    // the creation request id returned by the upload ("" if unknown)
	ProjectID  int       // 0: none
	Images     int       // number of uploaded images, the size term of the adaptive model
	UploadedAt time.Time // clock time when the upload's 202 arrived; zero: Wait's start
}

// Signals name what told a strategy that the job list was complete (Outcome.Signal).
const (
	SignalJobsList         = "jobs-list"
	SignalRequestFinished  = "request-finished"
	SignalRequestExpired   = "request-expired"
	SignalWebhookCreateJob = "webhook:create:job"
	SignalWebhookFirstJob  = "webhook:first-job" // the first create:job, then one listing
	SignalPreallocated     = "preallocated"      // listed right after the upload (the emulator's what-if)
	SignalWebhookCompleted = "webhook:completed:request"
	SignalSafetyPoll       = "safety-poll"
)

// Outcome is what one Wait observed.
type Outcome struct {
	JobIDs []int     // complete, ascending
	SeenAt time.Time // clock time when the IDs were known
	Signal string    // one of the Signal* constants
	// Request is the last state of the creation request seen, if any: its server dates feed the timeline.
	Request *cvat.Request
}

// Strategy waits until the job IDs of a freshly created task are known. Wait is called concurrently for
// different trials of one run.
type Strategy interface {
	Name() string
	Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error)
}

// Preparer is implemented by strategies that need per-run setup (webhook). Bench calls Prepare once per run
// with the project it created for the strategy, and Close at the end, also on SIGINT.
type Preparer interface {
	Prepare(ctx context.Context, c *cvat.Client, projectID int) error
	Close(ctx context.Context) error
}

// Params holds the knobs of every strategy; each strategy reads only its own. Start from DefaultParams.
type Params struct {
	PollInterval   time.Duration // poll: pause between two job listings
	SDKPeriod      time.Duration // sdk: status_check_period
	CLIPeriod      time.Duration // cli: --completion_verification_period
	BackoffInitial time.Duration // backoff: first pause
	BackoffMax     time.Duration // backoff: pause cap (before jitter)
	SafetyPoll     time.Duration // webhook: period of the job listing that covers lost deliveries
	BackoffFactor  float64       // backoff: growth per step, ≥ 1
	BackoffJitter  float64       // backoff: ± fraction of each pause, in [0, 1)
	Seed           int64         // ui and backoff jitter; each trial draws from (Seed, TaskID)
	WebhookListen  string        // webhook: receiver listen address, host:port
	WebhookURL     string        // webhook: URL CVAT posts to; "": http://<listen address>/hook
}

// Defaults of DefaultParams, exported for flag definitions.
const (
	DefaultPollInterval   = 100 * time.Millisecond
	DefaultSDKPeriod      = 5 * time.Second // cvat-sdk Config.status_check_period (API.md §10.1)
	DefaultCLIPeriod      = 2 * time.Second // cvat-cli --completion_verification_period (API.md §10.2)
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultBackoffFactor  = 2.0
	DefaultBackoffJitter  = 0.2
	DefaultSafetyPoll     = 10 * time.Second
	DefaultWebhookListen  = "127.0.0.1:0"
	DefaultSeed           = 1
)

// DefaultParams returns the defaults of every strategy.
func DefaultParams() Params {
	return Params{
		PollInterval:   DefaultPollInterval,
		SDKPeriod:      DefaultSDKPeriod,
		CLIPeriod:      DefaultCLIPeriod,
		BackoffInitial: DefaultBackoffInitial,
		BackoffMax:     DefaultBackoffMax,
		SafetyPoll:     DefaultSafetyPoll,
		BackoffFactor:  DefaultBackoffFactor,
		BackoffJitter:  DefaultBackoffJitter,
		Seed:           DefaultSeed,
		WebhookListen:  DefaultWebhookListen,
	}
}

// names is the registry order; the constructors validate only the parameters their strategy reads, and
// reject zero or negative values instead of defaulting them (STYLE.md §11).
var names = []string{"busyloop", "poll", "sdk", "cli", "ui", "backoff", "webhook", "adaptive", "project-poll", "project-webhook", "prealloc"}

// projectLevel are the registered strategies that wait for a whole batch (BatchStrategy); they need
// Config.Batch, and Defaults leaves them out.
var projectLevel = []string{"project-poll", "project-webhook"}

// whatIfOnly are the registered strategies that need a server behaviour no CVAT release has; Defaults leaves
// them out.
var whatIfOnly = []string{"prealloc"}

var registry = map[string]func(Params) (Strategy, error){
	"busyloop":        func(Params) (Strategy, error) { return NewBusyLoop(), nil },
	"poll":            func(p Params) (Strategy, error) { return NewPolling(p.PollInterval) },
	"sdk":             func(p Params) (Strategy, error) { return NewSDK(p.SDKPeriod) },
	"cli":             func(p Params) (Strategy, error) { return NewCLI(p.CLIPeriod) },
	"ui":              func(p Params) (Strategy, error) { return NewWebUI(p.Seed), nil },
	"backoff":         func(p Params) (Strategy, error) { return NewBackoff(p) },
	"webhook":         func(p Params) (Strategy, error) { return NewWebhook(p) },
	"adaptive":        func(Params) (Strategy, error) { return NewAdaptive(), nil },
	"prealloc":        func(p Params) (Strategy, error) { return NewPrealloc(p) },
	"project-poll":    func(p Params) (Strategy, error) { return NewProjectPoll(p.PollInterval) },
	"project-webhook": func(p Params) (Strategy, error) { return NewProjectWebhook(p) },
}

// Names returns the registered strategy names, in a fixed order.
func Names() []string { return slices.Clone(names) }

// Defaults returns the strategies a run compares when none are named: every registered one that waits per
// task and that a CVAT release can serve (not project-poll, project-webhook, prealloc).
func Defaults() []string {
	return slices.DeleteFunc(Names(), func(n string) bool { return slices.Contains(whatIfOnly, n) || slices.Contains(projectLevel, n) })
}

// ProjectLevel reports whether a strategy (spec) waits for whole batches (BatchStrategy).
func ProjectLevel(spec string) bool { return slices.Contains(projectLevel, BaseName(spec)) }

// NeedsWhatIf returns the emulator what-if a strategy (spec) needs, "" for none.
func NeedsWhatIf(spec string) string {
	if BaseName(spec) == "prealloc" {
		return WhatIfPreallocJobs
	}
	return ""
}

// New returns the strategy a spec names (NAME[:key=value]..., see ParseSpec), configured from p with the
// spec's overrides.
func New(spec string, p Params) (Strategy, error) {
	sp, err := ParseSpec(spec, p)
	if err != nil {
		return nil, err
	}
	s, err := registry[sp.Name](sp.Params)
	if err != nil {
		return nil, fmt.Errorf("strategy %s: %w", sp.Canonical, err)
	}
	return s, nil
}

var (
	_ API = (*cvat.Client)(nil) // the real client keeps fitting

	_ Strategy      = (*BusyLoop)(nil)
	_ Strategy      = (*Polling)(nil)
	_ Strategy      = (*SDK)(nil)
	_ Strategy      = (*WebUI)(nil)
	_ Strategy      = (*Backoff)(nil)
	_ Strategy      = (*Webhook)(nil)
	_ Strategy      = (*Adaptive)(nil)
	_ Strategy      = (*Prealloc)(nil)
	_ BatchStrategy = (*ProjectPoll)(nil)
	_ BatchStrategy = (*ProjectWebhook)(nil)
	_ Preparer      = (*ProjectWebhook)(nil)
	_ BatchPreparer = (*ProjectWebhook)(nil)
	_ BatchAPI      = (*cvat.Client)(nil)
	_ Preparer      = (*Webhook)(nil)
)

// RequestFailedError is a creation request that CVAT reported as failed; Message is CVAT's formatted
// exception (API.md §6.1), like the SDK's BackgroundRequestException.
type RequestFailedError struct {
	RqID    string
	Message string
}

func (e *RequestFailedError) Error() string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("creation request %s failed: %s", e.RqID, msg)
}

// ErrCancelled is the web UI's reading of a 404 after the request was seen queued or started (API.md §10.3).
var ErrCancelled = errors.New("creation request cancelled")

// ErrNoJobs means the server said the creation finished but listed no job for the task.
var ErrNoJobs = errors.New("creation finished but the task lists no jobs")

// ErrRequestExpired marks a 404 of GET /api/requests/{rq_id} for a request this trial created: it finished
// and expired (500 s TTL, or early under the emulator's expire fault) or was cancelled before the strategy saw
// it end (API.md §6.1). Strategies that give up on it wrap it together with the *cvat.APIError.
var ErrRequestExpired = errors.New("creation request gone (expired)")

// Error classes of Classify, used as table and metric labels.
const (
	ClassTimeout        = "timeout"
	ClassCanceled       = "canceled"
	ClassRequestFailed  = "request_failed"
	ClassRequestExpired = "request_expired"
	ClassHTTP429        = "http_429"
	ClassHTTP4xx        = "http_4xx"
	ClassHTTP5xx        = "http_5xx"
	ClassTransport      = "transport"
	ClassOther          = "other"
)

// Classify returns the error class of err for result tables: "timeout" (context deadline), "canceled",
// "request_failed" (CVAT reported the creation failed), "request_expired" (the creation request answered 404
// before the strategy saw it end: ErrRequestExpired, or the web UI's ErrCancelled), "http_429" (throttled,
// retries exhausted), "http_4xx" / "http_5xx" (another API answer), "transport" (no answer arrived: refused,
// reset, or the connection closed mid-answer) or "other". It returns "" for a nil error.
func Classify(err error) string {
	var rf *RequestFailedError
	var ue *url.Error
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.As(err, &rf):
		return ClassRequestFailed
	case errors.Is(err, ErrRequestExpired) || errors.Is(err, ErrCancelled):
		return ClassRequestExpired
	}
	switch s := cvat.StatusOf(err); {
	case s == http.StatusTooManyRequests:
		return ClassHTTP429
	case s >= 400 && s < 500:
		return ClassHTTP4xx
	case s >= 500 && s < 600:
		return ClassHTTP5xx
	}
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return ClassTransport
	}
	return ClassOther
}

// Transient reports whether err is a failure after which the same call may succeed: no answer arrived
// (transport), or the server answered 429, 502, 503 or 504. Setup code (creating the run's projects and
// webhook) retries those; a wait strategy decides for itself.
func Transient(err error) bool {
	switch Classify(err) {
	case ClassTransport, ClassHTTP429:
		return true
	case ClassHTTP5xx:
		switch cvat.StatusOf(err) {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// sleep waits d on clk unless ctx ends first. It checks ctx even for d ≤ 0, so no loop built on it can spin
// past a cancelled context.
func sleep(ctx context.Context, clk Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clk.After(d):
		return nil
	}
}

// allJobsQuery is the one-call listing of API.md §7.1 (TaskJobs): page_size=all&sort=id.
func allJobsQuery(taskID int) cvat.JobsQuery {
	return cvat.JobsQuery{TaskID: taskID, PageSize: cvat.PageSizeAll, Sort: "id"}
}

// listJobIDs runs q and follows next links until null, returning the IDs ascending and without duplicates.
func listJobIDs(ctx context.Context, api API, q cvat.JobsQuery) ([]int, error) {
	p, err := api.ListJobs(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list jobs of task %d: %w", q.TaskID, err)
	}
	ids := appendIDs(nil, p.Results)
	for p.Next != nil && *p.Next != "" {
		if len(p.Results) == 0 {
			return nil, fmt.Errorf("list jobs of task %d: empty page with a next link", q.TaskID)
		}
		if p, err = api.ListJobsPage(ctx, *p.Next); err != nil {
			return nil, fmt.Errorf("list jobs of task %d: %w", q.TaskID, err)
		}
		ids = appendIDs(ids, p.Results)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// patientJobIDs is listJobIDs for cvatbench's own strategies: a transient failure (no answer, 429, 502-504,
// after the client's own retries) is one missed listing, not the end of the wait, so it lists again after
// pause() until the trial's deadline. The replicas of the official SDK, CLI and web UI do not use it: they
// give up where those tools give up.
func patientJobIDs(ctx context.Context, api API, clk Clock, q cvat.JobsQuery, pause func() time.Duration) ([]int, error) {
	for {
		ids, err := listJobIDs(ctx, api, q)
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return ids, err
		}
		if err := sleep(ctx, clk, pause()); err != nil {
			return nil, err
		}
	}
}

// noPause is the pause of patientJobIDs in loops that never pause: the client's retries already waited.
func noPause() time.Duration { return 0 }

func appendIDs(ids []int, jobs []cvat.Job) []int {
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// finish builds the Outcome of a finished request: ids must be non-empty, because CVAT commits every job
// before the request reads finished (API.md §9.3).
func finish(clk Clock, ids []int, signal string, rq *cvat.Request) (Outcome, error) {
	out := Outcome{Request: rq}
	if len(ids) == 0 {
		return out, ErrNoJobs
	}
	out.JobIDs, out.SeenAt, out.Signal = ids, clk.Now(), signal
	return out, nil
}

// reqPtr copies a request for Outcome.Request.
func reqPtr(rq cvat.Request) *cvat.Request { return &rq }

// failed converts a failed request into its error.
func failed(rq cvat.Request, rqID string) error {
	id := rq.ID
	if id == "" {
		id = rqID
	}
	return &RequestFailedError{RqID: id, Message: rq.Message}
}

// trialRand returns the random source of one trial: seeded from (seed, task id), so a trial's jitter does
// not depend on how concurrent trials interleave.
func trialRand(seed int64, taskID int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(taskID)))
}

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s must be positive, got %v", name, d)
	}
	return nil
}
