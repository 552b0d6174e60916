package strategies

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Webhook event keys (API.md §8.2) and receiver limits.
const (
	eventCreateJob       = "create:job"
	eventUpdateTask      = "update:task"
	eventCompletedCreate = "completed:request[create:task]"
	eventPing            = "ping"

	signatureHeader  = "X-Signature-256"
	signaturePrefix  = "sha256="
	maxHookBody      = 1 << 20 // CVAT payloads are a few KiB; 1 MiB bounds a hostile or broken sender
	maxBufferedTasks = 4096    // tasks with events but no Wait yet; beyond that events are dropped (safety poll)
)

// hookClient is the part of *cvat.Client that Prepare and Close use; tests substitute a fake.
type hookClient interface {
	About(ctx context.Context) (cvat.About, error)
	GetProject(ctx context.Context, id int) (cvat.Project, error)
	WebhookEvents(ctx context.Context, webhookType string) ([]string, error)
	CreateWebhook(ctx context.Context, spec cvat.WebhookSpec) (cvat.Webhook, error)
	PingWebhook(ctx context.Context, id int) (cvat.WebhookDelivery, error)
	DeleteWebhook(ctx context.Context, id int) error
}

var _ hookClient = (*cvat.Client)(nil)

// Webhook waits for CVAT to push the news: Prepare starts a local HTTP receiver and creates a project webhook
// pointing at it; Wait returns on the first delivery that proves the job list is complete.
//
//   - Every version: CVAT queues each create:job delivery at the import worker's commit (API.md §8.4), and
//     that one commit holds every job of the task (§9.3). So the first create:job delivery already means the
//     list is complete: one GET /api/jobs?task_id&page_size=all&sort=id returns it (signal
//     "webhook:first-job"), one delivery hop after the commit. The rules below are what remains when that
//     listing is empty, which CVAT does not do: its single webhook worker sends a task's N create:job
//     deliveries one after another, and completed:request only after them, about 40 ms a hop.
//
//   - CVAT 2.73 and later (About version, or the events list when the version does not parse): events
//     create:job and completed:request[create:task]. A finished completed:request is delivered after the
//     commit (API.md §8.4), so one GET /api/jobs?task_id&page_size=all&sort=id then returns every ID
//     (signal "webhook:completed:request"); a failed one is a *RequestFailedError with CVAT's message.
//
//   - Older servers have no creation-completed event: events create:job and update:task. The worker's
//     update:task after the job loop carries jobs.count = N; once N create:job events were seen for the task,
//     their job ids are the complete list and no call is needed (signal "webhook:create:job").
//
// Deliveries are routed by task id. Events that arrive before Wait registers the task (create:job may even
// arrive before the upload call returns) are buffered per task. Deliveries can be lost (a blocked egress
// proxy, a retry 5 s or 5 min later, API.md §8.6), so Wait also lists the jobs every Params.SafetyPoll: a lost
// delivery costs latency, never a hang (signal "safety-poll"); when that listing is empty and the request id
// is known, the request status is read as well, so a failed creation without a completed:request delivery
// (servers before 2.73) still ends the wait.
//
// The receiver accepts only POSTs of at most 1 MiB whose X-Signature-256 is "sha256=" + hex HMAC-SHA256 of
// the raw body under the run's secret (32 random bytes, hex; never logged or put in errors), with a JSON body
// naming the webhook this Prepare created: 413, 401 or 400 otherwise. 4xx answers are final for CVAT, which
// retries only ≥ 500, 408 and 429.
type Webhook struct {
	safetyPoll time.Duration
	listen     string
	publicURL  string
	// deliveriesOnly (project-webhook) completes a task from its deliveries alone, without the listing on the
	// first create:job: N create:job and the update:task with jobs.count N. A batch's tasks then cost no call
	// each; the batch's safety poll lists the whole project.
	deliveriesOnly bool

	mu        sync.Mutex
	client    hookClient
	srv       *http.Server
	targetURL string
	secret    []byte
	hookID    int
	completed bool // the server sends completed:request[create:task]
	pings     int
	tasks     map[int]*hookTask
	done      map[int]bool // tasks whose Wait returned; their late events are ignored
}

// hookTask is what the receiver learnt about one task.
type hookTask struct {
	jobIDs    map[int]bool
	jobsCount int           // jobs.count of the latest update:task
	request   *cvat.Request // the completed:request[create:task] payload
	notify    chan struct{} // capacity 1: "something changed"
}

// NewWebhook returns the webhook strategy from p.SafetyPoll, p.WebhookListen and p.WebhookURL. It opens
// nothing: Prepare does. Everything Prepare would only find out by listening is checked here (see
// CheckWebhookAddress), so a bad address is bad input before the run creates anything.
func NewWebhook(p Params) (*Webhook, error) {
	var errs []error
	if err := positive("webhook safety poll", p.SafetyPoll); err != nil {
		errs = append(errs, err)
	}
	if err := CheckWebhookAddress(p.WebhookListen, p.WebhookURL); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Webhook{safetyPoll: p.SafetyPoll, listen: p.WebhookListen, publicURL: p.WebhookURL}, nil
}

// CheckWebhookAddress reports what is wrong with the receiver's listen address (host:port, numeric port in
// 0..65535) and the URL CVAT delivers to (absolute http or https, or "" for http://<listen address>/hook).
// A receiver on all interfaces (0.0.0.0, ::, or no host) needs that URL: its own address names no host CVAT
// could reach. Config validation calls it too, so these errors come before any set-up.
func CheckWebhookAddress(listen, publicURL string) error {
	var errs []error
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("webhook listen address %q: %w", listen, err))
	} else {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("webhook listen address %q: port %q is not a number in 0..65535", listen, port))
		}
		if publicURL == "" && (host == "" || net.ParseIP(host).IsUnspecified()) {
			errs = append(errs, fmt.Errorf("webhook listen address %q is on all interfaces: set the webhook URL CVAT should deliver to", listen))
		}
	}
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook url %q must be an absolute http or https URL", publicURL))
		}
	}
	return errors.Join(errs...)
}

// CheckWebhookListen binds listen for a moment and lets it go, so that a port in use is found before a run
// creates anything on the server (Prepare binds it again). Port 0 always passes.
func CheckWebhookListen(listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	return ln.Close()
}

// Name returns "webhook".
func (*Webhook) Name() string { return "webhook" }

// TargetURL returns the URL CVAT delivers to, once Prepare succeeded.
func (w *Webhook) TargetURL() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.targetURL
}

// Prepare starts the receiver, creates a webhook on project projectID and pings it. On any failure it
// removes what it created.
func (w *Webhook) Prepare(ctx context.Context, c *cvat.Client, projectID int) error {
	return w.prepare(ctx, c, projectID)
}

func (w *Webhook) prepare(ctx context.Context, c hookClient, projectID int) (err error) {
	if projectID <= 0 {
		return errors.New("webhook strategy needs a project: tasks outside projects trigger no project webhooks (API.md §8.3)")
	}
	w.mu.Lock()
	busy := w.client != nil
	w.mu.Unlock()
	if busy {
		return errors.New("webhook strategy already prepared")
	}

	completed, err := serverHasCompletedEvent(ctx, c)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	secret := hex.EncodeToString(key) // 64 characters, CVAT's limit

	ln, err := net.Listen("tcp", w.listen)
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	target := w.publicURL
	if target == "" {
		if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			ln.Close()
			return fmt.Errorf("webhook receiver listens on all interfaces (%s): set the webhook URL CVAT should use", w.listen)
		}
		target = "http://" + ln.Addr().String() + "/hook"
	}
	srv := &http.Server{Handler: http.HandlerFunc(w.serveHook), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed after Shutdown

	w.mu.Lock()
	w.client, w.srv, w.targetURL, w.secret, w.completed = c, srv, target, []byte(secret), completed
	w.hookID, w.pings = 0, 0
	w.tasks, w.done = map[int]*hookTask{}, map[int]bool{}
	w.mu.Unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Close(context.WithoutCancel(ctx)))
		}
	}()

	events := []string{eventCreateJob, eventUpdateTask}
	switch {
	case completed && w.deliveriesOnly: // update:task's jobs.count completes a task; completed:request ends a failed one
		events = []string{eventCreateJob, eventUpdateTask, eventCompletedCreate}
	case completed:
		events = []string{eventCreateJob, eventCompletedCreate}
	}
	// The description repeats the project's name (cvatbench-<run-id>-<strategy>), so `cvatbench cleanup`
	// recognises a webhook left behind by an interrupted run (description is limited to 128 characters).
	description := "cvatbench webhook strategy"
	if p, perr := c.GetProject(ctx, projectID); perr == nil && p.Name != "" && len(p.Name) <= 128 {
		description = p.Name
	}
	spec := cvat.WebhookSpec{TargetURL: target, Description: description, Type: "project",
		ContentType: "application/json", Secret: secret, IsActive: new(true), ProjectID: &projectID,
		Events: events}
	if strings.HasPrefix(target, "http:") {
		spec.EnableSSL = new(false)
	}
	var hook cvat.Webhook
	failedOnce := false
	err = retrySetup(ctx, func() error {
		if failedOnce { // a lost answer may have created it: adopt instead of creating a second one
			if found, ok := findWebhook(ctx, c, target, projectID); ok {
				hook = found
				return nil
			}
		}
		var err error
		if hook, err = c.CreateWebhook(ctx, spec); err != nil {
			failedOnce = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create webhook for project %d: %w", projectID, err)
	}
	w.mu.Lock()
	w.hookID = hook.ID
	w.mu.Unlock()

	var d cvat.WebhookDelivery
	err = retrySetup(ctx, func() error { // a repeated ping is harmless
		var err error
		d, err = c.PingWebhook(ctx, hook.ID)
		return err
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	pings := w.pings
	w.mu.Unlock()
	if d.StatusCode == nil || *d.StatusCode/100 != 2 {
		status := "no status"
		if d.StatusCode != nil {
			status = "status " + strconv.Itoa(*d.StatusCode)
		}
		return fmt.Errorf("ping of webhook %d to %s got %s: CVAT could not reach the receiver. A self-hosted "+
			"CVAT sends deliveries through its Smokescreen egress proxy, which blocks private, loopback and "+
			"docker addresses unless SMOKESCREEN_OPTS=\"--allow-address=<receiver ip>\" is set for the server "+
			"and the webhook worker (API.md §8.6); or set a webhook URL that CVAT can reach", hook.ID, target, status)
	}
	if pings == 0 {
		return fmt.Errorf("ping of webhook %d to %s got %d but this receiver saw no ping: the URL reaches "+
			"another server", hook.ID, target, *d.StatusCode)
	}
	return nil
}

// setupAttempts bounds the attempts of one Prepare call under transient failures (Transient).
const setupAttempts = 6

// retrySetup calls f until it succeeds, fails for good, or setupAttempts are used, pausing 50 ms, 100 ms, ...
// in between. Prepare runs once per run, outside any trial, so it may wait on the real clock.
func retrySetup(ctx context.Context, f func() error) error {
	pause := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !Transient(err) || attempt == setupAttempts {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
}

// findWebhook looks for a webhook of this receiver on the project, when the client can list webhooks.
func findWebhook(ctx context.Context, c hookClient, target string, projectID int) (cvat.Webhook, bool) {
	l, ok := c.(interface {
		ListWebhooks(ctx context.Context) ([]cvat.Webhook, error)
	})
	if !ok {
		return cvat.Webhook{}, false
	}
	hooks, err := l.ListWebhooks(ctx)
	if err != nil {
		return cvat.Webhook{}, false
	}
	for _, h := range hooks {
		if h.TargetURL == target && h.ProjectID != nil && *h.ProjectID == projectID {
			return h, true
		}
	}
	return cvat.Webhook{}, false
}

// serverHasCompletedEvent reports whether the server sends completed:request[create:task] (2.73 and later).
func serverHasCompletedEvent(ctx context.Context, c hookClient) (bool, error) {
	var about cvat.About
	err := retrySetup(ctx, func() error {
		var err error
		about, err = c.About(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("server version: %w", err)
	}
	if major, minor, ok := parseVersion(about.Version); ok {
		return major > 2 || major == 2 && minor >= 73, nil
	}
	events, err := c.WebhookEvents(ctx, "project")
	if err != nil {
		return false, fmt.Errorf("server version %q unknown: %w", about.Version, err)
	}
	return slices.Contains(events, eventCompletedCreate), nil
}

// parseVersion reads "2.73.0", "v2.73.1-dev" and the like.
func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	digits := func(s string) (int, bool) {
		end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
		if end == 0 {
			return 0, false
		}
		if end > 0 {
			s = s[:end]
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	major, ok1 := digits(parts[0])
	minor, ok2 := digits(parts[1])
	return major, minor, ok1 && ok2
}

// Close deletes the webhook Prepare created (only that id; an already deleted one is fine) and stops the
// receiver. Trials still waiting fall back on their safety poll.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	client, srv, id := w.client, w.srv, w.hookID
	w.client, w.srv, w.hookID, w.secret, w.targetURL = nil, nil, 0, nil, ""
	w.mu.Unlock()
	var errs []error
	if client != nil && id != 0 {
		if err := client.DeleteWebhook(ctx, id); err != nil && !errors.Is(err, cvat.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete webhook %d: %w", id, err))
		}
	}
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			errs = append(errs, fmt.Errorf("stop webhook receiver: %w", err))
		}
	}
	return errors.Join(errs...)
}

// hookPayload holds the fields of CVAT's payloads (API.md §8.5) that routing needs. create:job payloads are
// built before the commit, so only the job's id and task_id are trusted (§8.4).
type hookPayload struct {
	Event     string `json:"event"`
	WebhookID *int   `json:"webhook_id"`
	Webhook   *struct {
		ID int `json:"id"`
	} `json:"webhook"` // ping carries the webhook object instead of webhook_id
	Job *struct {
		ID     int `json:"id"`
		TaskID int `json:"task_id"`
	} `json:"job"`
	Task *struct {
		ID   int `json:"id"`
		Jobs struct {
			Count int `json:"count"`
		} `json:"jobs"`
	} `json:"task"`
	Request *cvat.Request `json:"request"`
}

// serveHook is the receiver's handler.
func (w *Webhook) serveHook(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxHookBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(rw, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "cannot read payload", http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	secret, hookID := w.secret, w.hookID
	w.mu.Unlock()
	if !validSignature(secret, r.Header.Get(signatureHeader), body) {
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Event == "" {
		http.Error(rw, "malformed payload", http.StatusBadRequest)
		return
	}
	id := 0
	switch {
	case p.WebhookID != nil:
		id = *p.WebhookID
	case p.Webhook != nil:
		id = p.Webhook.ID
	}
	if hookID == 0 || id != hookID {
		http.Error(rw, "unknown webhook", http.StatusBadRequest)
		return
	}
	if err := w.route(p); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	rw.WriteHeader(http.StatusOK)
}

// validSignature checks header = "sha256=" + hex HMAC-SHA256(secret, body) in constant time.
func validSignature(secret []byte, header string, body []byte) bool {
	if len(secret) == 0 || !strings.HasPrefix(header, signaturePrefix) {
		return false
	}
	got, err := hex.DecodeString(strings.TrimPrefix(header, signaturePrefix))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// route records one authenticated event for its task and wakes the task's Wait.
func (w *Webhook) route(p hookPayload) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var st *hookTask
	switch p.Event {
	case eventPing:
		w.pings++
		return nil
	case eventCreateJob:
		if p.Job == nil || p.Job.ID <= 0 || p.Job.TaskID <= 0 {
			return errors.New("create:job without job id and task_id")
		}
		if st = w.taskLocked(p.Job.TaskID, false); st != nil {
			st.jobIDs[p.Job.ID] = true
		}
	case eventUpdateTask:
		if p.Task == nil || p.Task.ID <= 0 {
			return errors.New("update:task without task id")
		}
		if st = w.taskLocked(p.Task.ID, false); st != nil {
			st.jobsCount = p.Task.Jobs.Count
		}
	case eventCompletedCreate:
		if p.Request == nil || p.Request.Operation.TaskID == nil || *p.Request.Operation.TaskID <= 0 {
			return errors.New("completed:request without request.operation.task_id")
		}
		if st = w.taskLocked(*p.Request.Operation.TaskID, false); st != nil {
			st.request = p.Request
		}
	default:
		return nil // other events of the project are not ours to judge
	}
	if st != nil {
		select {
		case st.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

// taskLocked returns the state of a task, creating it. For events (waiting false) it returns nil for tasks
// whose Wait already returned and when too many tasks are buffered. w.mu must be held.
func (w *Webhook) taskLocked(taskID int, waiting bool) *hookTask {
	if st, ok := w.tasks[taskID]; ok {
		return st
	}
	if !waiting && (w.done[taskID] || len(w.tasks) >= maxBufferedTasks) {
		return nil
	}
	delete(w.done, taskID)
	st := &hookTask{jobIDs: map[int]bool{}, notify: make(chan struct{}, 1)}
	w.tasks[taskID] = st
	return st
}

// Wait returns when the events received for t.TaskID prove its job list complete, or when the safety poll
// finds the jobs.
func (w *Webhook) Wait(ctx context.Context, api API, clk Clock, t Trial) (Outcome, error) {
	w.mu.Lock()
	if w.client == nil {
		w.mu.Unlock()
		return Outcome{}, errors.New("webhook strategy not prepared")
	}
	st := w.taskLocked(t.TaskID, true)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.tasks, t.TaskID)
		if w.done != nil {
			w.done[t.TaskID] = true
		}
		w.mu.Unlock()
	}()

	var (
		last   *cvat.Request
		safety <-chan time.Time // armed after the first look at the buffered events
		listed bool             // the listing on the first create:job was made
	)
	for {
		w.mu.Lock()
		var ids []int
		if st.jobsCount > 0 && len(st.jobIDs) == st.jobsCount {
			ids = sortedKeys(st.jobIDs)
		}
		rq := st.request
		firstJob := len(st.jobIDs) > 0 && !listed && !w.deliveriesOnly
		w.mu.Unlock()
		switch {
		case ids != nil:
			return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalWebhookCreateJob, Request: last}, nil
		case rq != nil && rq.Status == cvat.StatusFinished:
			ids, err := patientJobIDs(ctx, api, clk, allJobsQuery(t.TaskID), noPause)
			if err != nil {
				return Outcome{Request: rq}, err
			}
			return finish(clk, ids, SignalWebhookCompleted, rq)
		case rq != nil && rq.Status == cvat.StatusFailed:
			return Outcome{Request: rq}, failed(*rq, t.RqID)
		case rq != nil:
			return Outcome{Request: rq}, fmt.Errorf("completed:request for task %d with status %q", t.TaskID, rq.Status)
		case firstJob && rq == nil:
			// CVAT queues create:job at the worker's commit, which holds every job of the task: one listing
			// now returns them all, one delivery hop after the commit instead of N behind one worker.
			listed = true
			ids, err := patientJobIDs(ctx, api, clk, allJobsQuery(t.TaskID), noPause)
			if err != nil {
				return Outcome{Request: rq}, err
			}
			if len(ids) > 0 {
				return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalWebhookFirstJob, Request: rq}, nil
			}
			continue // not what CVAT does: wait for the other signals
		}

		if safety == nil && !w.deliveriesOnly { // project-webhook: the batch's safety poll covers the task
			safety = clk.After(w.safetyPoll)
		}
		select {
		case <-ctx.Done():
			return Outcome{Request: last}, ctx.Err()
		case <-st.notify:
		case <-safety:
			out, done, err := w.safetyCheck(ctx, api, clk, t, &last)
			if done || err != nil {
				return out, err
			}
			safety = clk.After(w.safetyPoll)
		}
	}
}

// safetyCheck lists the task's jobs; when there are none yet and the request id is known it reads the
// request, so that a failure without a delivery ends the wait. Errors of that status read are ignored (the
// request may have expired): the next safety poll tries again.
func (w *Webhook) safetyCheck(ctx context.Context, api API, clk Clock, t Trial, last **cvat.Request) (Outcome, bool, error) {
	ids, err := listJobIDs(ctx, api, allJobsQuery(t.TaskID))
	if err != nil && Transient(err) && ctx.Err() == nil {
		return Outcome{}, false, nil // a missed safety poll: the next one, or a delivery, follows
	}
	if err != nil {
		return Outcome{Request: *last}, true, err
	}
	if len(ids) == 0 && t.RqID != "" {
		rq, err := api.GetRequest(ctx, t.RqID)
		if err == nil {
			*last = reqPtr(rq)
			switch rq.Status {
			case cvat.StatusFailed:
				return Outcome{Request: *last}, true, failed(rq, t.RqID)
			case cvat.StatusFinished: // finished between the two calls: the jobs are there now
				if ids, err = listJobIDs(ctx, api, allJobsQuery(t.TaskID)); err != nil {
					return Outcome{Request: *last}, true, err
				}
			}
		}
	}
	if len(ids) == 0 {
		return Outcome{}, false, nil
	}
	return Outcome{JobIDs: ids, SeenAt: clk.Now(), Signal: SignalSafetyPoll, Request: *last}, true, nil
}

func sortedKeys(m map[int]bool) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
