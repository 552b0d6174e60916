package bench_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

func TestLeftoverRunID(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"trial task", "cvatbench-20261127T001500Z-3f9a-poll-3", "20261127T001500Z-3f9a", true},
		{"strategy project", "cvatbench-20261127T001500Z-3f9a-webhook", "20261127T001500Z-3f9a", true},
		{"bare run id", "cvatbench-20261127T001500Z-3f9a", "20261127T001500Z-3f9a", true},
		{"long random part", "cvatbench-20261127T001500Z-3f9a0b1c-sdk", "20261127T001500Z-3f9a0b1c", true},
		{"prefix alone", "cvatbench", "", false},
		{"prefix and dash", "cvatbench-", "", false},
		{"no run id", "cvatbench-poll-3", "", false},
		{"foreign prefix", "my-cvatbench-20261127T001500Z-3f9a-poll", "", false},
		{"foreign", "foreign", "", false},
		{"upper case prefix", "CVATBENCH-20261127T001500Z-3f9a-poll", "", false},
		{"upper case hex", "cvatbench-20261127T001500Z-3F9A-poll", "", false},
		{"short random part", "cvatbench-20261127T001500Z-3f9-poll", "", false},
		{"random part glued to text", "cvatbench-20261127T001500Z-3f9ax-poll", "", false},
		{"underscore after run id", "cvatbench-20261127T001500Z-3f9a_poll", "", false},
		{"no Z", "cvatbench-20261127T001500-3f9a-poll", "", false},
		{"impossible date", "cvatbench-20261399T251500Z-3f9a-poll", "", false},
		{"non-ascii digits", "cvatbench-２0261127T001500Z-3f9a-poll", "", false},
		{"leading space", " cvatbench-20261127T001500Z-3f9a-poll", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := bench.LeftoverRunID(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("LeftoverRunID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestLeftoverRunIDParsesRunnerNames ties the parser to the names the runner really makes.
func TestLeftoverRunIDParsesRunnerNames(t *testing.T) {
	runID := bench.NewRunID(time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC))
	for _, name := range []string{
		bench.CleanupPrefix + runID + "-poll",
		bench.CleanupPrefix + runID + "-backoff-12",
		bench.CleanupPrefix + runID + "-webhook",
	} {
		if got, ok := bench.LeftoverRunID(name); !ok || got != runID {
			t.Errorf("LeftoverRunID(%q) = %q, %v; want %q", name, got, ok, runID)
		}
	}
}

// cleanupClock is the emulator's clock: settable, so objects can be created "two hours ago" without sleeping.
type cleanupClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *cleanupClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *cleanupClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
func (c *cleanupClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop // the instant profile waits for nothing; no test path arms a timer
}

// cleanupWorld is an emulator holding leftovers, foreign objects and young objects.
type cleanupWorld struct {
	admin, other *cvat.Client
	now          time.Time
	wantGone     []bench.Leftover // Created left zero; checked separately
	kept         []bench.Leftover // everything else: must survive
}

// cleanupLogin logs in to the emulator and returns a token client.
func cleanupLogin(t *testing.T, base, user, password string) *cvat.Client {
	t.Helper()
	key, err := cvat.Login(context.Background(), base, user, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCleanupWorld(t *testing.T) *cleanupWorld {
	t.Helper()
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	old := now.Add(-2 * time.Hour)
	clk := &cleanupClock{now: old}
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Clock: clk,
		Users: []cvatsim.UserSpec{{Username: "other", Password: "other-pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(schemacheck.Load(t).Middleware(t, srv.Handler())) // every response checked against CVAT's schema
	t.Cleanup(func() { hs.Close(); srv.Close() })
	w := &cleanupWorld{admin: cleanupLogin(t, hs.URL, "admin", "admin"), other: cleanupLogin(t, hs.URL, "other", "other-pw"), now: now}

	oldRun, newRun := "20261127T095900Z-3f9a", "20261127T115900Z-beef"
	ctx := context.Background()
	labels := []cvat.Label{{Name: "object"}}
	project := func(c *cvat.Client, name string) int {
		t.Helper()
		p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: name, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	task := func(c *cvat.Client, name string, projectID *int) int {
		t.Helper()
		spec := cvat.TaskSpec{Name: name, ProjectID: projectID}
		if projectID == nil {
			spec.Labels = labels
		}
		tk, err := c.CreateTask(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	webhook := func(c *cvat.Client, desc string, projectID int) int {
		t.Helper()
		wh, err := c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Description: desc,
			Type: "project", ContentType: "application/json", ProjectID: &projectID, Events: []string{"create:job"}})
		if err != nil {
			t.Fatal(err)
		}
		return wh.ID
	}
	gone := func(kind string, id int, name string) {
		w.wantGone = append(w.wantGone, bench.Leftover{Kind: kind, ID: id, Name: name, RunID: oldRun})
	}
	keep := func(kind string, id int, name string) {
		w.kept = append(w.kept, bench.Leftover{Kind: kind, ID: id, Name: name})
	}

	// Two hours ago: a killed run left a project with a webhook and a task, and a task outside projects.
	pName := "cvatbench-" + oldRun + "-webhook"
	pid := project(w.admin, pName)
	gone(bench.LeftoverProject, pid, pName)
	gone(bench.LeftoverWebhook, webhook(w.admin, pName, pid), pName)
	gone(bench.LeftoverTask, task(w.admin, pName+"-0", &pid), pName+"-0")
	gone(bench.LeftoverTask, task(w.admin, "cvatbench-"+oldRun+"-poll-1", nil), "cvatbench-"+oldRun+"-poll-1")
	// Equally old, but not ours.
	for _, name := range []string{"foreign", "cvatbench", "cvatbench-poll-1", "my-cvatbench-" + oldRun + "-poll-1", "xcvatbench-" + oldRun} {
		keep(bench.LeftoverTask, task(w.admin, name, nil), name)
	}
	otherName := "cvatbench-" + oldRun + "-poll-2"
	keep(bench.LeftoverTask, task(w.other, otherName, nil), otherName) // right name, other owner
	otherPID := project(w.other, "cvatbench-"+oldRun+"-sdk")
	keep(bench.LeftoverProject, otherPID, "cvatbench-"+oldRun+"-sdk")
	fpid := project(w.admin, "foreign-project")
	keep(bench.LeftoverProject, fpid, "foreign-project")
	keep(bench.LeftoverWebhook, webhook(w.admin, pName, fpid), pName) // our description on a foreign project
	keep(bench.LeftoverWebhook, webhook(w.admin, "cvatbench", fpid), "cvatbench")
	// Created two hours ago by the server clock, but the run id says it started a minute ago: a server clock
	// running behind must not get a live run deleted.
	keep(bench.LeftoverTask, task(w.admin, "cvatbench-"+newRun+"-skew-0", nil), "cvatbench-"+newRun+"-skew-0")

	// A minute ago: a run in progress, and a young object with an old run id.
	clk.set(now.Add(-time.Minute))
	keep(bench.LeftoverTask, task(w.admin, "cvatbench-"+newRun+"-poll-0", nil), "cvatbench-"+newRun+"-poll-0")
	keep(bench.LeftoverTask, task(w.admin, "cvatbench-"+oldRun+"-late-9", nil), "cvatbench-"+oldRun+"-late-9")
	return w
}

// exists tells whether an object is still on the server, as its owner (admin sees all) would.
func (w *cleanupWorld) exists(t *testing.T, l bench.Leftover) bool {
	t.Helper()
	ctx := context.Background()
	var err error
	switch l.Kind {
	case bench.LeftoverTask:
		_, err = w.admin.GetTask(ctx, l.ID)
	case bench.LeftoverProject:
		_, err = w.admin.GetProject(ctx, l.ID)
	case bench.LeftoverWebhook:
		_, err = w.admin.GetWebhook(ctx, l.ID)
	}
	if err != nil && !errors.Is(err, cvat.ErrNotFound) {
		t.Fatalf("get %s %d: %v", l.Kind, l.ID, err)
	}
	return err == nil
}

// cleanupIgnoreCreated compares leftovers without their server dates.
var cleanupIgnoreCreated = cmp.Transformer("noCreated", func(l bench.Leftover) bench.Leftover {
	l.Created = time.Time{}
	return l
})

func TestCleanupAgainstEmulator(t *testing.T) {
	w := newCleanupWorld(t)
	ctx := context.Background()

	got, err := bench.FindLeftovers(ctx, w.admin, time.Hour, w.now)
	if err != nil {
		t.Fatal(err)
	}
	// Deletion order: webhooks, tasks, projects, each by id.
	want := []bench.Leftover{w.wantGone[1], w.wantGone[2], w.wantGone[3], w.wantGone[0]}
	if d := cmp.Diff(want, got, cleanupIgnoreCreated); d != "" {
		t.Fatalf("FindLeftovers (-want +got):\n%s", d)
	}
	for _, l := range got {
		if !l.Created.Equal(w.now.Add(-2 * time.Hour)) {
			t.Errorf("%s %d created %v, want the server's date %v", l.Kind, l.ID, l.Created, w.now.Add(-2*time.Hour))
		}
	}

	// Finding is a dry run: nothing is gone yet.
	for _, l := range append(append([]bench.Leftover(nil), w.wantGone...), w.kept...) {
		if !w.exists(t, l) {
			t.Fatalf("%s %d %q deleted by FindLeftovers", l.Kind, l.ID, l.Name)
		}
	}

	// The other user's view: its own task and project are old leftovers of its own.
	otherGot, err := bench.FindLeftovers(ctx, w.other, time.Hour, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(otherGot) != 2 || otherGot[0].Kind != bench.LeftoverTask || otherGot[1].Kind != bench.LeftoverProject {
		t.Errorf("other user's leftovers %+v, want its task and project", otherGot)
	}

	if errs := bench.DeleteLeftovers(ctx, w.admin, got); len(errs) != 0 {
		t.Fatalf("DeleteLeftovers: %v", errs)
	}
	for _, l := range w.wantGone {
		if w.exists(t, l) {
			t.Errorf("%s %d %q survived", l.Kind, l.ID, l.Name)
		}
	}
	for _, l := range w.kept {
		if !w.exists(t, l) {
			t.Errorf("%s %d %q was deleted, it is not a leftover", l.Kind, l.ID, l.Name)
		}
	}

	// Deleting again: everything is already gone (404), which is no error.
	if errs := bench.DeleteLeftovers(ctx, w.admin, got); len(errs) != 0 {
		t.Errorf("second DeleteLeftovers: %v", errs)
	}
	again, err := bench.FindLeftovers(ctx, w.admin, time.Hour, w.now)
	if err != nil || len(again) != 0 {
		t.Errorf("after cleanup FindLeftovers = %+v, %v; want none", again, err)
	}

	// A zero age takes the young objects of our own too, and still nothing foreign.
	all, err := bench.FindLeftovers(ctx, w.admin, 0, w.now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range all {
		names = append(names, l.Name)
	}
	wantNames := []string{"cvatbench-20261127T115900Z-beef-skew-0", "cvatbench-20261127T115900Z-beef-poll-0", "cvatbench-20261127T095900Z-3f9a-late-9"}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("FindLeftovers with age 0 (-want +got):\n%s", d)
	}
}

func TestFindLeftoversRejectsNegativeAge(t *testing.T) {
	c, err := cvat.New(cvat.Config{BaseURL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bench.FindLeftovers(context.Background(), c, -time.Second, time.Now()); err == nil {
		t.Fatal("negative age accepted")
	}
}

// TestDeleteLeftoversOrderAndErrors drives a fake that records deletions and answers per id.
func TestDeleteLeftoversOrderAndErrors(t *testing.T) {
	var mu sync.Mutex
	var deleted []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deleted = append(deleted, r.Method+" "+strings.TrimSuffix(r.URL.Path, "/"))
		mu.Unlock()
		switch {
		case r.Method != http.MethodDelete:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case strings.HasSuffix(r.URL.Path, "/404") || strings.HasSuffix(r.URL.Path, "/404/"):
			w.Header().Set("Content-Type", "application/vnd.cvat+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"detail":"Not found."}`))
		case strings.HasSuffix(r.URL.Path, "/500") || strings.HasSuffix(r.URL.Path, "/500/"):
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	c, err := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Token("k"), Retry: cvat.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	in := []bench.Leftover{
		{Kind: bench.LeftoverProject, ID: 1, Name: "p"},
		{Kind: bench.LeftoverTask, ID: 2, Name: "t"},
		{Kind: bench.LeftoverWebhook, ID: 3, Name: "w"},
		{Kind: bench.LeftoverTask, ID: 404, Name: "gone"},
		{Kind: bench.LeftoverTask, ID: 500, Name: "broken"},
		{Kind: "job", ID: 6, Name: "odd"},
	}
	errs := bench.DeleteLeftovers(context.Background(), c, in)
	wantCalls := []string{"DELETE /api/webhooks/3", "DELETE /api/tasks/2", "DELETE /api/tasks/404", "DELETE /api/tasks/500", "DELETE /api/projects/1"}
	if d := cmp.Diff(wantCalls, deleted); d != "" {
		t.Errorf("deletions (-want +got):\n%s", d)
	}
	if len(errs) != 2 {
		t.Fatalf("errors %v, want one for task 500 and one for the unknown kind", errs)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "delete task 500 (broken)") || !strings.Contains(joined, `unknown kind "job"`) {
		t.Errorf("errors %q lack the failed objects", joined)
	}
	if cvat.StatusOf(errs[0])+cvat.StatusOf(errs[1]) != 500 {
		t.Errorf("the 500 is not kept in the error chain: %v", errs)
	}
}
