package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/strategies"
)

// setup creates one project per strategy and prepares the strategies that need it.
func (r *Runner) setup(ctx context.Context, runID string) error {
	r.estimateClock(ctx, runID)
	for _, name := range r.cfg.Strategies {
		p, err := r.newProject(ctx, NamePrefix+runID+shardTag(r.cfg)+"-"+name)
		if err != nil {
			return fmt.Errorf("create project for %s: %w", name, err)
		}
		r.mu.Lock()
		r.projects[name] = p.ID
		r.mu.Unlock()
		if _, ok := r.strats[name].(strategies.BatchStrategy); ok {
			if err := r.checkProjectFilters(ctx, p.ID); err != nil {
				return fmt.Errorf("strategy %s: %w", name, err)
			}
		}
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

// checkProjectFilters makes, once, the two calls a project-level strategy builds on, against the run's
// (empty) project of the strategy: the jobs and the failed creation requests filtered by project. A server
// that rejects them fails the run here, before any task exists, instead of failing every batch.
func (r *Runner) checkProjectFilters(ctx context.Context, projectID int) error {
	bapi, ok := r.api.(strategies.BatchAPI)
	if !ok {
		return errors.New("project-level strategies need a client that lists requests")
	}
	err := r.retrySetup(ctx, func() error {
		_, err := bapi.ListJobs(ctx, cvat.JobsQuery{ProjectID: projectID, PageSize: 1, Sort: "id"})
		return err
	})
	if err != nil {
		return fmt.Errorf("the server rejects the jobs listing filtered by project (GET /api/jobs?project_id=): %w", err)
	}
	err = r.retrySetup(ctx, func() error {
		_, err := bapi.ListRequests(ctx, cvat.RequestFilter{Action: "create", Target: "task", ProjectID: projectID, Status: cvat.StatusFailed})
		return err
	})
	if err != nil {
		return fmt.Errorf("the server rejects the requests listing filtered by project (GET /api/requests?project_id=): %w", err)
	}
	return nil
}

// newProject creates a project of this run with retries under transient failures, adopting the one a lost
// answer created rather than making a second one.
func (r *Runner) newProject(ctx context.Context, name string) (cvat.Project, error) {
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
	return p, err
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

// estimateClock runs the ping exchange on a project of its own, when WithPingClock asked for it. A failure
// is logged and leaves the per-trial estimate in charge.
func (r *Runner) estimateClock(ctx context.Context, runID string) {
	if r.pingListen == "" || r.client == nil {
		return
	}
	name := NamePrefix + runID + shardTag(r.cfg) + "-clock"
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
