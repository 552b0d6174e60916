package bench_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
)

// contactAPI is fakeAPI with scripted answers to the first contact (About, Self) and project creation.
type contactAPI struct {
	*fakeAPI
	about   []error // answers of successive About calls; nil or exhausted: success
	self    []error // the same for Self
	project error   // CreateProject fails with it when set

	mu                                  sync.Mutex
	aboutCalls, selfCalls, projectCalls int
}

func (a *contactAPI) next(script []error, calls *int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := *calls
	*calls++
	if i < len(script) {
		return script[i]
	}
	return nil
}

func (a *contactAPI) About(ctx context.Context) (cvat.About, error) {
	if err := a.next(a.about, &a.aboutCalls); err != nil {
		return cvat.About{}, fmt.Errorf("server about: %w", err) // as *cvat.Client words it
	}
	return a.fakeAPI.About(ctx)
}

// Self makes contactAPI look like a client that can check credentials.
func (a *contactAPI) Self(context.Context) (cvat.User, error) {
	if err := a.next(a.self, &a.selfCalls); err != nil {
		return cvat.User{}, fmt.Errorf("current user: %w", err)
	}
	return cvat.User{ID: 1, Username: "admin"}, nil
}

func (a *contactAPI) CreateProject(ctx context.Context, spec cvat.ProjectSpec) (cvat.Project, error) {
	a.mu.Lock()
	a.projectCalls++
	a.mu.Unlock()
	if a.project != nil {
		return cvat.Project{}, a.project
	}
	return a.fakeAPI.CreateProject(ctx, spec)
}

func apiErr(endpoint string, status int) error {
	return &cvat.APIError{Method: "GET", Endpoint: endpoint, Status: status, Detail: "scripted"}
}

// refused is what a dial to a closed port returns, wrapped as net/http and the client wrap it.
func refused() error {
	return fmt.Errorf("GET /api/server/about: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
}

// TestRunChecksServerBeforeWritingAnything: a run that fails before its first trial (server unreachable,
// credentials rejected, set-up refused) leaves no results directory, returns no Dir, and its error names the
// failing call once. Refused connections are not retried; transient answers are.
func TestRunChecksServerBeforeWritingAnything(t *testing.T) {
	tests := []struct {
		name         string
		api          func(*contactAPI)
		ok           bool
		want         string // substring of the error
		aboutCalls   int
		selfCalls    int
		projectCalls int
	}{
		{name: "token rejected on about", api: func(a *contactAPI) { a.about = []error{apiErr("/api/server/about", 401)} },
			want: "server about: GET /api/server/about: 401", aboutCalls: 1},
		{name: "token rejected on self", api: func(a *contactAPI) { a.self = []error{apiErr("/api/users/self", 401)} },
			want: "check credentials: current user: GET /api/users/self: 401", aboutCalls: 1, selfCalls: 1},
		{name: "connection refused is not retried", api: func(a *contactAPI) { a.about = []error{refused(), refused()} },
			want: "connection refused", aboutCalls: 1},
		{name: "project creation forbidden", api: func(a *contactAPI) {
			a.project = &cvat.APIError{Method: "POST", Endpoint: "/api/projects", Status: 403, Detail: "scripted"}
		}, want: "create project for poll", aboutCalls: 1, selfCalls: 1, projectCalls: 1},
		{name: "transient about answers are retried", api: func(a *contactAPI) {
			a.about = []error{apiErr("/api/server/about", 503), apiErr("/api/server/about", 429)}
		}, ok: true, aboutCalls: 3, selfCalls: 1, projectCalls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fakeConfig(t)
			clk := newFakeClock()
			api := &contactAPI{fakeAPI: newFakeAPI(clk)}
			tc.api(api)
			opts := fakeOptions(api.fakeAPI, clk, cfg)
			opts = append(opts, bench.WithAPI(api)) // replaces the plain fake
			r, err := bench.New(cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(context.Background())
			entries, rerr := os.ReadDir(cfg.OutDir)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tc.ok {
				if err != nil || res.Dir == "" || len(entries) != 1 {
					t.Fatalf("Run = %+v, %v; out dir holds %d entries, want a run", res, err, len(entries))
				}
			} else {
				if err == nil {
					t.Fatal("Run succeeded, want an error")
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q lacks %q", err, tc.want)
				}
				if strings.Count(err.Error(), "server about") > 1 || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q repeats its prefix or spans lines", err)
				}
				if res.Dir != "" || len(entries) != 0 {
					t.Errorf("Dir %q, out dir holds %d entries: a run without trials must leave nothing", res.Dir, len(entries))
				}
				if res.Recorded != 0 {
					t.Errorf("recorded %d trials", res.Recorded)
				}
			}
			if api.aboutCalls != tc.aboutCalls || api.selfCalls != tc.selfCalls || api.projectCalls != tc.projectCalls {
				t.Errorf("calls: about %d, self %d, create project %d; want %d, %d, %d", api.aboutCalls,
					api.selfCalls, api.projectCalls, tc.aboutCalls, tc.selfCalls, tc.projectCalls)
			}
			if len(api.projects) != 0 {
				t.Errorf("projects left on the server: %v", api.projects)
			}
		})
	}
}

// TestRunFirstContactKeepsCallErrors: the error of a failed first contact still matches the client's error
// (errors.Is), so callers can tell a 401 from the rest.
func TestRunFirstContactKeepsCallErrors(t *testing.T) {
	cfg := fakeConfig(t)
	clk := newFakeClock()
	api := &contactAPI{fakeAPI: newFakeAPI(clk), self: []error{apiErr("/api/users/self", 401)}}
	r, err := bench.New(cfg, append(fakeOptions(api.fakeAPI, clk, cfg), bench.WithAPI(api))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if !errors.Is(err, cvat.ErrUnauthorized) {
		t.Fatalf("error %v does not match cvat.ErrUnauthorized", err)
	}
}
