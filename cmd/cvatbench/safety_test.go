package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/report"
)

// safetyPassword is distinctive so that a leak anywhere is found by a plain substring search.
const safetyPassword = "S3cr3t-pw-Zq8"

// TestInterruptCleansUpAndLeavesValidResults sends SIGINT or SIGTERM to `cvatbench run --url` mid-run against
// `cvatbench sim` (cvat-default timing, so trials are in flight) and checks the promise of the README: the run
// exits 1 (an interrupted run is a runtime failure, not bad input), leaves a complete results directory marked
// interrupted, and deletes every object it created on the server, and nothing else. The password comes from
// CVAT_PASSWORD, so the env path of the credentials is covered too.
func TestInterruptCleansUpAndLeavesValidResults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cvatbench binary for a few seconds")
	}
	tests := []struct {
		name string
		sig  syscall.Signal
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGTERM", syscall.SIGTERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := safetyStartSim(t, "--profile", "cvat-default", "--password", safetyPassword)
			api := newSafetyAPI(t, base, "admin", safetyPassword)
			foreign, err := api.c.CreateTask(context.Background(), cvat.TaskSpec{Name: "team-dataset-1", Labels: []cvat.Label{{Name: "car"}}})
			if err != nil {
				t.Fatal(err)
			}
			foreignPath := fmt.Sprintf("/api/tasks/%d", foreign.ID)
			st, before := api.raw(t, foreignPath)
			if st != http.StatusOK {
				t.Fatalf("GET foreign task: %d", st)
			}

			out := t.TempDir()
			p := safetyStart(t, safetyEnv("CVAT_PASSWORD="+safetyPassword), nil, "run", "--url", base, "--user", "admin",
				"--tasks", "20", "--strategies", "poll,sdk", "--out", out)
			safetyWaitLines(t, filepath.Join(out, "*", record.TrialsFile), 1, p)
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t, safetyExitDeadline)
			stderr, stdout := p.stderr.String(), p.stdout.String()
			if code != exitRuntime {
				t.Fatalf("exit %d, want %d (interrupted); stderr:\n%s", code, exitRuntime, stderr)
			}
			if line := safetyOneErrorLine(t, stderr); !strings.Contains(line, "run interrupted after") {
				t.Errorf("error line %q does not say the run was interrupted", line)
			}
			if strings.Contains(stderr, "cleanup:") {
				t.Errorf("cleanup errors reported:\n%s", stderr)
			}
			if strings.Contains(stdout+stderr, safetyPassword) {
				t.Errorf("password printed")
			}

			safetyCheckInterruptedResults(t, out)

			if left := api.leftovers(t); len(left) != 0 {
				t.Errorf("objects of the run left on the server: %v", left)
			}
			st, after := api.raw(t, foreignPath)
			if st != http.StatusOK || !jsonEqual(before, after) {
				t.Errorf("foreign task changed: %d\nbefore %s\nafter  %s", st, before, after)
			}
			if all := api.names(t); len(all) != 1 {
				t.Errorf("server holds %v, want only the foreign task", all)
			}
		})
	}
}

// stderrWatch closes seen once the stream has contained want.
type stderrWatch struct {
	want string
	mu   sync.Mutex
	buf  strings.Builder
	seen chan struct{}
	done bool
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

// TestSecondInterruptExitsAt130: a second SIGINT, sent while the first lets trials in flight end, exits at
// once with 130 instead of waiting for them and the cleanup. What the run has is written: every finished
// trial, and a meta.json whose count matches them and that says interrupted and abandoned, so report reads
// it; the objects left behind are the run's own, and the cleanup command the message names removes them.
func TestSecondInterruptExitsAt130(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cvatbench binary for a few seconds")
	}
	base := safetyStartSim(t, "--profile", "cvat-default", "--password", safetyPassword)
	api := newSafetyAPI(t, base, "admin", safetyPassword)
	out := t.TempDir()
	env := safetyEnv("CVAT_PASSWORD=" + safetyPassword)
	heard := &stderrWatch{want: "to exit at once", seen: make(chan struct{})}
	p := safetyStart(t, env, heard, "run", "--url", base, "--user", "admin", "--tasks", "20", "--strategies", "sdk", "--out", out)
	safetyWaitLines(t, filepath.Join(out, "*", record.TrialsFile), 1, p)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select { // a second SIGINT sent before the first was handled would merge with it (signals do not queue)
	case <-heard.seen:
	case <-p.done:
		t.Fatalf("exited after one interrupt (%d); stderr:\n%s", p.code, p.stderr.String())
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil { // sdk trials poll once a second: still waiting
		t.Fatal(err)
	}
	code := p.wait(t, safetyExitDeadline)
	stderr := p.stderr.String()
	if code != exitHardInterrupt || !strings.Contains(stderr, "second interrupt") {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitHardInterrupt, stderr)
	}
	dir, run := safetyLoadOnlyRun(t, out)
	if m := run.Meta; !m.Interrupted || !m.Abandoned || m.FinishedAt == nil || m.TrialsRecorded != len(run.Trials) || len(m.CleanupErrors) != 1 {
		t.Errorf("meta: interrupted %v abandoned %v finished %v recorded %d of %d lines, cleanup errors %q",
			m.Interrupted, m.Abandoned, m.FinishedAt, m.TrialsRecorded, len(run.Trials), m.CleanupErrors)
	}
	code, rout, rerr := cvatbench("report", dir)
	if code != 0 || !strings.Contains(rout, "run abandoned by a second interrupt") {
		t.Errorf("report exit %d, stdout:\n%s\nstderr: %s", code, rout, rerr)
	}
	left := api.leftovers(t)
	if len(left) == 0 {
		t.Log("nothing left behind: every created object was gone before the second interrupt")
	}
	c := safetyStart(t, env, nil, "cleanup", "--url", base, "--user", "admin", "--older-than", "0s", "--yes")
	if code := c.wait(t, safetyExitDeadline); code != 0 {
		t.Fatalf("cleanup exit %d: %s", code, c.stderr.String())
	}
	if left := api.leftovers(t); len(left) != 0 {
		t.Errorf("after cleanup, left on the server: %v", left)
	}
}

// safetyLoadOnlyRun loads the one results directory under out.
func safetyLoadOnlyRun(t *testing.T, out string) (string, *report.Run) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("results dirs %v", dirs)
	}
	run, err := report.Load(dirs[0])
	if err != nil {
		t.Fatalf("report.Load: %v", err)
	}
	return dirs[0], run
}

// safetyCheckInterruptedResults checks that the one results directory under out is complete and says it was
// interrupted: Load works, meta.json is final, and every trial line is a whole, consistent record.
func safetyCheckInterruptedResults(t *testing.T, out string) {
	t.Helper()
	dir, run := safetyLoadOnlyRun(t, out)
	m := run.Meta
	if !m.Interrupted || m.FinishedAt == nil || len(m.CleanupErrors) != 0 {
		t.Errorf("meta: interrupted %v finished_at %v cleanup_errors %v", m.Interrupted, m.FinishedAt, m.CleanupErrors)
	}
	if run.Truncated {
		t.Error("trials.jsonl ends in a cut-off line")
	}
	if m.TrialsRecorded != len(run.Trials) || len(run.Trials) == 0 || len(run.Trials) >= m.TrialsPlanned {
		t.Errorf("recorded %d, lines %d, planned %d", m.TrialsRecorded, len(run.Trials), m.TrialsPlanned)
	}
	if _, err := os.Stat(filepath.Join(dir, record.MetaFile+".tmp")); err == nil {
		t.Error("meta.json.tmp left behind")
	}

	raw, err := os.ReadFile(filepath.Join(dir, record.TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Error("trials.jsonl does not end with a newline")
	}
	seqs := map[int]bool{}
	for i, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var r record.Trial
		if err := dec.Decode(&r); err != nil {
			t.Errorf("line %d: %v", i+1, err)
			continue
		}
		switch {
		case r.RunID != m.RunID || (r.Strategy != "poll" && r.Strategy != "sdk") || seqs[r.Seq] || r.Seq < 0 || r.Seq >= m.TrialsPlanned:
			t.Errorf("line %d: run %q strategy %q seq %d", i+1, r.RunID, r.Strategy, r.Seq)
		case r.Result == record.ResultOK && (len(r.JobIDs) == 0 || r.JobsObtainedAt == nil || r.EndToEndMs == nil || r.TaskID == 0):
			t.Errorf("line %d: ok trial without its outcome: %s", i+1, line)
		case r.Result != record.ResultOK && (r.ErrorClass == "" || r.Error == ""):
			t.Errorf("line %d: failed trial without error class or message: %s", i+1, line)
		case r.Result != record.ResultOK && r.Result != "error" && r.Result != "timeout" && r.Result != record.ResultCanceled:
			t.Errorf("line %d: result %q", i+1, r.Result)
		}
		seqs[r.Seq] = true
	}
}

// TestRunAndCleanupLeaveForeignObjects puts objects of another user (some named exactly like cvatbench's) and
// objects of the run's own user with other names on the server, then runs a complete `run --url` and
// `cleanup --url --yes --older-than 0s` as the superuser, who sees everything. Only the genuine leftover of an
// old run of the same user may go; every other object must read back byte for byte the same.
func TestRunAndCleanupLeaveForeignObjects(t *testing.T) {
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
	t.Setenv("CVATBENCH_PUSHGATEWAY", "")
	os.Unsetenv("CVAT_USER") // an empty variable still counts as set for urfave/cli
	os.Unsetenv("CVAT_PASSWORD")
	os.Unsetenv("CVAT_ACCESS_TOKEN")
	os.Unsetenv("CVATBENCH_PUSHGATEWAY")

	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cvatsim.New(cvatsim.Options{Profile: prof, Password: safetyPassword,
		Users: []cvatsim.UserSpec{{Username: "team", Password: "team-pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	ctx := context.Background()
	team := newSafetyAPI(t, srv.URL, "team", "team-pw")
	admin := newSafetyAPI(t, srv.URL, "admin", safetyPassword)

	const oldRun = "cvatbench-20200101T000000Z-abcd-poll" // parses as a run id of 2020
	var foreign []string                                  // GET paths of objects that must stay unchanged
	mustProject := func(a *safetyAPI, name string) int {
		p, err := a.c.CreateProject(ctx, cvat.ProjectSpec{Name: name, Labels: []cvat.Label{{Name: "car"}}})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	mustTask := func(a *safetyAPI, name string, project int) int {
		spec := cvat.TaskSpec{Name: name}
		if project > 0 {
			spec.ProjectID = &project
		} else {
			spec.Labels = []cvat.Label{{Name: "car"}}
		}
		tk, err := a.c.CreateTask(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	mustHook := func(a *safetyAPI, desc string, project int) int {
		h, err := a.c.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Description: desc,
			Type: "project", ContentType: "application/json", Secret: "team-hook-secret", IsActive: new(false),
			EnableSSL: new(false), ProjectID: &project, Events: []string{"create:task"}})
		if err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	teamProject := mustProject(team, "team-project")
	teamLookalike := mustProject(team, oldRun)
	foreign = append(foreign,
		fmt.Sprintf("/api/projects/%d", teamProject),
		fmt.Sprintf("/api/projects/%d", teamLookalike),
		fmt.Sprintf("/api/tasks/%d", mustTask(team, "team-dataset-1", 0)),
		fmt.Sprintf("/api/tasks/%d", mustTask(team, "team-dataset-2", teamProject)),
		fmt.Sprintf("/api/tasks/%d", mustTask(team, oldRun+"-0", teamLookalike)),
		fmt.Sprintf("/api/webhooks/%d", mustHook(team, "team-hook", teamProject)),
		fmt.Sprintf("/api/webhooks/%d", mustHook(team, oldRun, teamLookalike)),
		// The run's own user, names cvatbench did not make.
		fmt.Sprintf("/api/tasks/%d", mustTask(admin, "admin-notes", 0)),
		fmt.Sprintf("/api/tasks/%d", mustTask(admin, "cvatbench-notes", 0)),
		fmt.Sprintf("/api/projects/%d", mustProject(admin, "cvatbench-20200101-not-a-run")),
	)
	// A genuine leftover of an old run of the same user: cleanup's job.
	ownOld := mustProject(admin, oldRun)
	ownOldTask := mustTask(admin, oldRun+"-0", ownOld)

	before := map[string][]byte{}
	for _, p := range foreign {
		st, b := admin.raw(t, p)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, st, b)
		}
		before[p] = b
	}
	check := func(stage string) {
		t.Helper()
		for _, p := range foreign {
			if st, b := admin.raw(t, p); st != http.StatusOK || !jsonEqual(before[p], b) {
				t.Errorf("after %s: %s changed: %d\nbefore %s\nafter  %s", stage, p, st, before[p], b)
			}
		}
	}

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"cvatbench", "run", "--url", srv.URL, "--user", "admin", "--password", safetyPassword,
		"--strategies", "poll,webhook", "--tasks", "2", "--concurrency", "2", "--images", "2", "--image-size", "16x16",
		"--poll-interval", "5ms", "--safety-poll", "50ms", "--out", t.TempDir()}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("run exit %d; stderr:\n%s", code, stderr.String())
	}
	check("run")
	if st, _ := admin.raw(t, fmt.Sprintf("/api/projects/%d", ownOld)); st != http.StatusOK {
		t.Errorf("run deleted the leftover of another run: %d", st)
	}

	if !slices.ContainsFunc(commands(), func(c *cli.Command) bool { return c.Name == "cleanup" }) {
		t.Skip("no cleanup command yet: only the run half was checked")
	}
	stdout.Reset()
	stderr.Reset()
	code = run(ctx, []string{"cvatbench", "cleanup", "--url", srv.URL, "--user", "admin", "--password", safetyPassword,
		"--older-than", "0s", "--yes"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("cleanup exit %d; stderr:\n%s", code, stderr.String())
	}
	check("cleanup")
	for _, p := range []string{fmt.Sprintf("/api/projects/%d", ownOld), fmt.Sprintf("/api/tasks/%d", ownOldTask)} {
		if st, _ := admin.raw(t, p); st != http.StatusNotFound {
			t.Errorf("cleanup left the old run's %s: %d; stdout:\n%s", p, st, stdout.String())
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), safetyPassword) {
		t.Error("password printed")
	}
}

// safetyRecorder wraps the emulator's handler and remembers every credential that reached it: the values of
// Authorization headers (password, login key, access token) and webhook secrets from POST /api/webhooks.
type safetyRecorder struct {
	next      http.Handler
	mu        sync.Mutex
	seen      map[string]string // secret -> where it was seen
	taskPosts map[string]int    // POST /api/tasks by X-Organization ("" for none)
}

func (r *safetyRecorder) tasksCreatedIn(org string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.taskPosts[org]
}

func (r *safetyRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	add := func(secret, what string) {
		if len(secret) >= 8 { // shorter values (e.g. the user name) would match harmless text
			r.mu.Lock()
			r.seen[secret] = what
			r.mu.Unlock()
		}
	}
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		add(value, scheme+" credential")
		if scheme == "Basic" {
			if dec, err := base64.StdEncoding.DecodeString(value); err == nil {
				_, pw, _ := strings.Cut(string(dec), ":")
				add(pw, "basic password")
			}
		}
	}
	if req.Method == http.MethodPost && req.URL.Path == "/api/tasks" {
		r.mu.Lock()
		r.taskPosts[req.Header.Get("X-Organization")]++
		r.mu.Unlock()
	}
	if req.Method == http.MethodPost && strings.TrimSuffix(req.URL.Path, "/") == "/api/webhooks" && req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var spec struct {
			Secret string `json:"secret"`
		}
		if json.Unmarshal(body, &spec) == nil {
			add(spec.Secret, "webhook secret")
		}
	}
	r.next.ServeHTTP(w, req)
}

func (r *safetyRecorder) secrets() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.seen)
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestSecretsNeverInOutput runs the binary against an in-process emulator whose handler records every
// credential it receives, with a password (and the webhook strategy, whose secret is random), with a
// personal access token (flag and env), and with a wrong password and credentials in the URL (failures).
// None of those values, nor the base64 form of user:password, may appear on stdout, stderr or in any file of
// the results directory.
func TestSecretsNeverInOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cvatbench binary")
	}
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cvatsim.New(cvatsim.Options{Profile: prof, Password: safetyPassword})
	if err != nil {
		t.Fatal(err)
	}
	rec := &safetyRecorder{next: sim.Handler(), seen: map[string]string{}, taskPosts: map[string]int{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() { srv.Close(); sim.Close() })

	basic, err := cvat.New(cvat.Config{BaseURL: srv.URL, Auth: cvat.Basic("admin", safetyPassword)})
	if err != nil {
		t.Fatal(err)
	}
	pat, err := basic.CreateAccessToken(context.Background(), "safety-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := basic.CreateOrganization(context.Background(), "lab", "safety lab"); err != nil {
		t.Fatal(err)
	}

	const wrongPassword = "Wr0ng-pw-Kx4"
	const urlPassword = "Url-pw-Jm7"
	fast := []string{"--tasks", "2", "--concurrency", "2", "--images", "2", "--image-size", "16x16",
		"--poll-interval", "5ms", "--safety-poll", "50ms"}
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		hook bool // the webhook strategy ran: its secret must have been seen
	}{
		{"password flag with webhook", nil, []string{"--url", srv.URL, "--user", "admin", "--password", safetyPassword,
			"--strategies", "poll,webhook"}, exitOK, true},
		{"password env", []string{"CVAT_USER=admin", "CVAT_PASSWORD=" + safetyPassword}, []string{"--url", srv.URL,
			"--strategies", "sdk"}, exitOK, false},
		{"token flag with webhook", nil, []string{"--url", srv.URL, "--token", pat, "--strategies", "webhook"}, exitOK, true},
		{"token env", []string{"CVAT_ACCESS_TOKEN=" + pat}, []string{"--url", srv.URL, "--strategies", "poll"}, exitOK, false},
		{"token in an organization", nil, []string{"--url", srv.URL, "--token", pat, "--org", "lab", "--strategies", "poll,sdk,webhook"}, exitOK, true},
		{"wrong password", nil, []string{"--url", srv.URL, "--user", "admin", "--password", wrongPassword,
			"--strategies", "poll"}, exitRuntime, false},
		{"credentials in url", nil, []string{"--url", strings.Replace(srv.URL, "http://", "http://admin:"+urlPassword+"@", 1),
			"--token", pat, "--strategies", "poll"}, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			inLab := rec.tasksCreatedIn("lab")
			p := safetyStart(t, safetyEnv(tc.env...), nil, append(append([]string{"run", "--out", out}, tc.args...), fast...)...)
			code := p.wait(t, safetyDeadline)
			if slices.Contains(tc.args, "--org") && rec.tasksCreatedIn("lab")-inLab != 6 {
				t.Errorf("%d tasks created under X-Organization: lab, want 6 (2 per strategy)", rec.tasksCreatedIn("lab")-inLab)
			}
			stdout, stderr := p.stdout.String(), p.stderr.String()
			switch {
			case tc.code >= 0 && code != tc.code:
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			case tc.code < 0 && code == exitOK:
				t.Fatalf("a URL with credentials was accepted; stderr:\n%s", stderr)
			}
			secrets := rec.secrets()
			secrets[safetyPassword] = "password"
			secrets[pat] = "access token"
			secrets[wrongPassword] = "wrong password"
			secrets[urlPassword] = "password in the url"
			for _, pw := range []string{safetyPassword, wrongPassword, urlPassword} {
				secrets[base64.StdEncoding.EncodeToString([]byte("admin:"+pw))] = "basic header"
			}
			if tc.hook {
				n := 0
				for s, what := range secrets {
					if what == "webhook secret" && hex64.MatchString(s) {
						n++
					}
				}
				if n == 0 {
					t.Fatal("no webhook secret reached the emulator: the test would prove nothing")
				}
			}
			outputs := map[string]string{"stdout": stdout, "stderr": stderr}
			err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				outputs[path] = string(b)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.code == exitOK && len(outputs) < 4 { // stdout, stderr, meta.json, trials.jsonl at least
				t.Fatalf("results missing: %v", slices.Collect(maps.Keys(outputs)))
			}
			for where, text := range outputs {
				for s, what := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%s (%d chars) appears in %s", what, len(s), where)
					}
				}
			}
		})
	}
}
