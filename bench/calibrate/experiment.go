package calibrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
)

// Options configure Run.
type Options struct {
	Design Design
	// Server is the target as recorded (a URL without credentials, or "embedded"); Auth names the method.
	Server, Auth string
	// Basic, when set, is a client of the same user with Basic auth: the basic_auth term is the difference.
	Basic *cvat.Client
	// Receiver says the server can post webhooks to a listener of Net (a server on this host): the clock
	// offset comes from pings, the webhook hop from create:job deliveries. Without it both stay unmeasured.
	Receiver bool
	// Net is how calibrate listens and dials locally; the zero value is TCP on 127.0.0.1.
	Net Network
	// WebhookURL, when set, is where the server posts (a receiver behind a proxy or another host's name);
	// empty: the listener's own address.
	WebhookURL string
	// Progress receives one line per step; nil: none.
	Progress io.Writer
	Seed     int64
}

// Network opens local listeners and connections: TCP on 127.0.0.1 by default, an in-memory network in tests.
type Network struct {
	Listen func() (net.Listener, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (n Network) listen() (net.Listener, error) {
	if n.Listen != nil {
		return n.Listen()
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// httpClient is a client over n's Dial, or nil (the default transport).
func (n Network) httpClient() *http.Client {
	if n.Dial == nil {
		return nil
	}
	return &http.Client{Transport: &http.Transport{DialContext: n.Dial}}
}

// Error is a failed experiment: the term it could not measure and why.
type Error struct {
	Term string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("cannot fit %s: %v", e.Term, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// experiment is one Run in progress.
type experiment struct {
	c       *cvat.Client
	opts    Options
	d       Design
	runID   string
	project int
	files   map[int][]cvat.File // by image count

	mu      sync.Mutex
	live    map[int]bool // tasks created and not yet deleted
	hooks   *hookReceiver
	samples *Samples
	done    int
}

// Run executes the design against the server c talks to and returns the raw samples. Everything it creates
// carries the name cvatbench-<run id>-calibrate… and is deleted by id before it returns, also on error or
// cancellation; nothing else on the server is touched.
func Run(ctx context.Context, c *cvat.Client, opts Options) (*Samples, error) {
	d := opts.Design
	if err := d.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	e := &experiment{c: c, opts: opts, d: d, runID: bench.NewRunID(start), files: map[int][]cvat.File{}, live: map[int]bool{},
		samples: &Samples{Server: opts.Server, Auth: opts.Auth, StartedAt: start.UTC(), Design: d}}
	about, err := c.About(ctx)
	if err != nil {
		return nil, &Error{"anything", fmt.Errorf("server: %w", err)}
	}
	e.samples.Version = about.Version
	for _, p := range d.Points {
		if err := e.images(p.Images); err != nil {
			return nil, err
		}
	}
	if err := e.images(1); err != nil {
		return nil, err
	}
	defer e.cleanup(ctx)
	p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: e.name("calibrate"), Labels: []cvat.Label{{Name: "object"}}})
	if err != nil {
		return nil, &Error{"api_write", fmt.Errorf("create project: %w", err)}
	}
	e.project = p.ID
	e.setupReceiver(ctx)

	steps := []func(context.Context) error{e.sequential, e.visibility, e.concurrent, e.endpoints, e.measureOverhead}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	e.samples.FinishedAt = time.Now().UTC()
	e.progressf("calibrate: %d creations measured in %.0fs", e.done, time.Since(start).Seconds())
	return e.samples, nil
}

func (e *experiment) name(suffix string) string { return bench.NamePrefix + e.runID + "-" + suffix }

func (e *experiment) progressf(format string, args ...any) {
	if e.opts.Progress != nil {
		fmt.Fprintf(e.opts.Progress, format+"\n", args...)
	}
}

func (e *experiment) images(n int) error {
	if _, ok := e.files[n]; ok {
		return nil
	}
	f, err := bench.GenerateImages(n, e.d.ImageWidth, e.d.ImageHeight, "jpeg", e.opts.Seed)
	if err != nil {
		return err
	}
	e.files[n] = f
	return nil
}

// setupReceiver measures the clock offset with pings and starts the create:job receiver; without a listen
// address, or if the server cannot reach it, both are left out and the samples say why.
func (e *experiment) setupReceiver(ctx context.Context) {
	if !e.opts.Receiver {
		e.samples.ClockNote = "no webhook receiver: the clock offset is taken as 0 (commit_to_finished assumes one clock) and webhook_hop is not measured"
		return
	}
	ln, err := e.opts.Net.listen()
	if err != nil {
		e.samples.ClockNote = "no clock receiver (" + err.Error() + "): the clock offset is taken as 0 and webhook_hop is not measured"
		return
	}
	est, err := bench.PingOffset(ctx, e.c, e.project, ln, e.opts.WebhookURL, e.name("calibrate-clock"), e.d.ClockPings, time.Now)
	if err != nil {
		e.samples.ClockNote = "webhook pings failed (" + err.Error() + "): the clock offset is taken as 0 and webhook_hop is not measured"
		return
	}
	e.samples.Clock = &est
	e.progressf("calibrate: clock offset %+.2f ms ± %.2f ms (%d pings)", ms(est.Offset), ms(est.Bound), est.Samples)
	h, err := startHookReceiver(ctx, e.c, e.project, e.opts.Net, e.opts.WebhookURL, e.name("calibrate-hop"))
	if err != nil {
		e.samples.ClockNote = "webhook receiver for create:job failed (" + err.Error() + "): webhook_hop is not measured"
		return
	}
	e.hooks = h
}

// sequential runs the points one creation at a time, interleaved so drift hits every point alike.
func (e *experiment) sequential(ctx context.Context) error {
	total := len(e.d.Points) * e.d.Repeats
	for r := range e.d.Repeats {
		for i, p := range e.d.Points {
			cr, err := e.createAndWait(ctx, p, PhaseSequential)
			if err != nil {
				return err
			}
			e.samples.Creations = append(e.samples.Creations, cr)
			if n := r*len(e.d.Points) + i + 1; n%7 == 0 || n == total {
				e.progressf("calibrate: sequential %d/%d", n, total)
			}
		}
	}
	return nil
}

// visibility polls the jobs listing of one-image creations tightly: the bracket of the commit, for the
// commit → finished term.
func (e *experiment) visibility(ctx context.Context) error {
	p := Point{Name: "1img-visibility", Images: 1, Quality: 70}
	for range e.d.VisibilityTrials {
		cr, rqID, err := e.start(ctx, p, PhaseVisibility)
		if err != nil {
			return err
		}
		var lastEmpty time.Time
		deadline := time.Now().Add(e.d.Timeout)
		for {
			page, err := e.c.ListJobs(ctx, cvat.JobsQuery{TaskID: cr.TaskID, PageSize: cvat.PageSizeAll})
			if err != nil {
				return &Error{"commit_to_finished", fmt.Errorf("list jobs: %w", err)}
			}
			got := time.Now()
			if page.Count > 0 {
				if !lastEmpty.IsZero() {
					cr.VisibleAfter, cr.VisibleBefore = &lastEmpty, &got
				}
				break
			}
			lastEmpty = got
			if time.Now().After(deadline) {
				return e.stuck(ctx, cr, rqID)
			}
			if err := sleep(ctx, e.d.VisibilityPollGap); err != nil {
				return err
			}
		}
		if err := e.finish(ctx, &cr, rqID); err != nil {
			return err
		}
		e.samples.Creations = append(e.samples.Creations, cr)
	}
	e.progressf("calibrate: visibility %d/%d", e.d.VisibilityTrials, e.d.VisibilityTrials)
	return nil
}

// concurrent uploads twice the expected number of workers at once, several rounds: the worker count and
// the stretch of processing on a shared CPU.
func (e *experiment) concurrent(ctx context.Context) error {
	k := 2 * e.d.ExpectedWorkers
	p := Point{Name: "1img-concurrent", Images: 1, Quality: 70}
	for round := range e.d.ConcurrentRounds {
		tasks := make([]Creation, k)
		for i := range tasks {
			t, err := e.createTask(ctx, p, PhaseConcurrent)
			if err != nil {
				return err
			}
			t.Round, t.InFlight = round+1, k
			tasks[i] = t
		}
		errs := make([]error, k)
		var wg sync.WaitGroup
		for i := range tasks {
			wg.Go(func() {
				rqID, err := e.upload(ctx, &tasks[i], p)
				if err == nil {
					err = e.finish(ctx, &tasks[i], rqID)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		e.samples.Creations = append(e.samples.Creations, tasks...)
		e.progressf("calibrate: concurrent round %d/%d (%d at once)", round+1, e.d.ConcurrentRounds, k)
	}
	return nil
}

// endpoints samples the reads the strategies make, on a one-job and a ten-job task, and Basic auth.
func (e *experiment) endpoints(ctx context.Context) error {
	one, oneRq, err := e.start(ctx, Point{Name: "1img", Images: 1, Quality: 70}, PhaseEndpoints)
	if err != nil {
		return err
	}
	if err := e.wait(ctx, &one, oneRq); err != nil {
		return err
	}
	ten, tenRq, err := e.start(ctx, Point{Name: "10img-10jobs", Images: 10, SegmentSize: 1, Quality: 70}, PhaseEndpoints)
	if err != nil {
		return err
	}
	if err := e.wait(ctx, &ten, tenRq); err != nil {
		return err
	}
	type read struct {
		endpoint string
		jobs     int
		call     func(c *cvat.Client) error
	}
	reads := []read{
		{"GET /api/requests/{rq_id}", 0, func(c *cvat.Client) error { _, err := c.GetRequest(ctx, oneRq); return err }},
		{"GET /api/jobs", 1, func(c *cvat.Client) error {
			_, err := c.ListJobs(ctx, cvat.JobsQuery{TaskID: one.TaskID, PageSize: cvat.PageSizeAll})
			return err
		}},
		{"GET /api/jobs", 10, func(c *cvat.Client) error {
			_, err := c.ListJobs(ctx, cvat.JobsQuery{TaskID: ten.TaskID, PageSize: cvat.PageSizeAll})
			return err
		}},
		{"GET /api/tasks/{id}", 0, func(c *cvat.Client) error { _, err := c.GetTask(ctx, one.TaskID); return err }},
	}
	sample := func(c *cvat.Client, prefix string, r read) error {
		t0 := time.Now()
		if err := r.call(c); err != nil {
			return &Error{"api_read", fmt.Errorf("%s: %w", r.endpoint, err)}
		}
		e.samples.Endpoints = append(e.samples.Endpoints, EndpointSample{Endpoint: prefix + r.endpoint, Jobs: r.jobs, Ms: ms(time.Since(t0))})
		return nil
	}
	for range e.d.EndpointSamples {
		for _, r := range reads {
			if err := sample(e.c, "", r); err != nil {
				return err
			}
		}
	}
	if e.opts.Basic != nil {
		self := read{"GET /api/users/self", 0, func(c *cvat.Client) error { _, err := c.Self(ctx); return err }}
		for range min(e.d.EndpointSamples, 8) { // a Basic call costs a password hash: a few are enough
			for _, p := range []struct {
				c      *cvat.Client
				prefix string
			}{{e.c, ""}, {e.opts.Basic, "basic:"}} {
				if err := sample(p.c, p.prefix, self); err != nil {
					return err
				}
			}
		}
	}
	for _, cr := range []*Creation{&one, &ten} {
		if err := e.remove(ctx, cr); err != nil {
			return err
		}
		e.samples.Creations = append(e.samples.Creations, *cr)
	}
	e.progressf("calibrate: endpoints %d samples", len(e.samples.Endpoints))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OverheadProbe is the constant read and write latency of the emulator measureOverhead samples; the fit
// subtracts it from what it measures there.
const OverheadProbe = time.Millisecond

// measureOverhead samples the same calls against an embedded emulator whose reads and writes cost exactly
// OverheadProbe: what the client, the loopback, the emulator's handling and its timer's lateness add. The fit
// subtracts that from the server's latencies, so that the emulator replaying the profile, which adds the same
// again, shows the server's latency and not the server's plus its own.
func (e *experiment) measureOverhead(ctx context.Context) error {
	probe := cvatsim.Profile{Name: "overhead-probe", APIRead: cvatsim.Dist{Base: OverheadProbe}, APIWrite: cvatsim.Dist{Base: OverheadProbe}}
	srv, err := cvatsim.New(cvatsim.Options{Profile: probe, Username: "calibrate", Password: "calibrate-overhead"})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := e.opts.Net.listen()
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	hc := e.opts.Net.httpClient()
	key, err := cvat.Login(ctx, base, "calibrate", "calibrate-overhead", hc)
	if err != nil {
		return err
	}
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key), HTTPClient: hc})
	if err != nil {
		return err
	}
	sub := &experiment{c: c, opts: Options{Seed: e.opts.Seed}, d: e.d, runID: e.runID, files: e.files, live: map[int]bool{},
		samples: &Samples{}}
	p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: sub.name("overhead"), Labels: []cvat.Label{{Name: "object"}}})
	if err != nil {
		return err
	}
	sub.project = p.ID
	if err := sub.endpoints(ctx); err != nil {
		return err
	}
	e.samples.Overhead = sub.samples.Endpoints
	for _, cr := range sub.samples.Creations {
		e.samples.Overhead = append(e.samples.Overhead, EndpointSample{Endpoint: "POST /api/tasks", Ms: cr.CreateMs})
	}
	return nil
}
