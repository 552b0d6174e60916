package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// cleanupUser and cleanupPassword own the leftovers; the password is distinctive so a leak is found.
const cleanupUser, cleanupPassword = "bench", "pw-Zq81-secret"

// cleanupRun runs the CLI like run does, with stdin from input (the confirmation answer).
func cleanupRun(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name: "cvatbench", Writer: &out, ErrWriter: &errOut, Reader: strings.NewReader(input),
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return cli.Exit(err.Error(), exitUsage)
		},
		Commands: commands(),
	}
	err := app.RunContext(context.Background(), append([]string{"cvatbench"}, args...))
	code = exitOK
	if err != nil {
		if msg := err.Error(); msg != "" {
			errOut.WriteString("cvatbench: " + msg + "\n")
		}
		code = exitRuntime
		if ec := cli.ExitCoder(nil); errors.As(err, &ec) {
			code = ec.ExitCode()
		}
	}
	return code, out.String(), errOut.String()
}

// cleanupEnv clears the credential variables so the host environment cannot leak into a test.
func cleanupEnv(t *testing.T) {
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
}

func TestCleanupBadInputIsOneLineExit2(t *testing.T) {
	const u = "http://127.0.0.1:9"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no url", nil, []string{"--token", "tok-1"}, "--url is required"},
		{"bad scheme", nil, []string{"--url", "ftp://127.0.0.1:9", "--token", "tok-1"}, `scheme must be http or https, not "ftp"`},
		{"no scheme", nil, []string{"--url", "127.0.0.1:9", "--token", "tok-1"}, "--url"},
		{"no host", nil, []string{"--url", "http://", "--token", "tok-1"}, "no host"},
		{"credentials in url", nil, []string{"--url", "http://bench:pw-in-url@127.0.0.1:9", "--token", "tok-1"}, "must not contain credentials"},
		{"query in url", nil, []string{"--url", u + "/?key=tok-in-query", "--token", "tok-1"}, "query or fragment"},
		{"api suffix", nil, []string{"--url", u + "/api", "--token", "tok-1"}, "/api suffix"},
		{"negative age", nil, []string{"--url", u, "--token", "tok-1", "--older-than", "-1m"}, "--older-than must not be negative"},
		{"bad age", nil, []string{"--url", u, "--token", "tok-1", "--older-than", "soon"}, "older-than"},
		{"user without password", nil, []string{"--url", u, "--user", "bench"}, "--user needs --password"},
		{"password without user", nil, []string{"--url", u, "--password", cleanupPassword}, "--password needs --user"},
		{"token and user", nil, []string{"--url", u, "--token", "tok-1", "--user", "bench", "--password", cleanupPassword}, "not both"},
		{"env token and flag user", map[string]string{"CVAT_ACCESS_TOKEN": "tok-1"}, []string{"--url", u, "--user", "bench", "--password", cleanupPassword}, "not both"},
		{"env user without password", map[string]string{"CVAT_USER": "bench"}, []string{"--url", u}, "--user needs --password"},
		{"no credentials", nil, []string{"--url", u}, "no credentials"},
		{"dry run and yes", nil, []string{"--url", u, "--token", "tok-1", "--dry-run", "--yes"}, "contradict"},
		{"positional argument", nil, []string{"--url", u, "--token", "tok-1", "extra"}, "unexpected arguments"},
		{"unknown flag", nil, []string{"--url", u, "--force"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cleanupEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"cvatbench", "cleanup"}, tc.args...), &out, &errOut)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errOut.String())
			}
			msg := strings.TrimRight(errOut.String(), "\n")
			if strings.Contains(msg, "\n") {
				t.Errorf("stderr has several lines: %q", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q lacks %q", msg, tc.want)
			}
			for _, secret := range []string{cleanupPassword, "tok-1", "pw-in-url", "tok-in-query"} {
				if strings.Contains(msg+out.String(), secret) {
					t.Errorf("output leaks %q: %q", secret, msg)
				}
			}
		})
	}
}

// cleanupSimClock puts the emulator two hours in the past while the world is built, then at the present.
type cleanupSimClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *cleanupSimClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}
func (c *cleanupSimClock) setOffset(d time.Duration) { c.mu.Lock(); c.off = d; c.mu.Unlock() }
func (c *cleanupSimClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// cleanupSim serves an emulator holding two old leftovers of cleanupUser (a project with a webhook and a
// task inside, a task outside), a young one, and foreign tasks. It returns the URL and a client of
// cleanupUser to inspect the server with.
func cleanupSim(t *testing.T) (string, *cvat.Client) {
	t.Helper()
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	clk := &cleanupSimClock{off: -2 * time.Hour}
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Clock: clk,
		Users: []cvatsim.UserSpec{{Username: cleanupUser, Password: cleanupPassword}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(schemacheck.Load(t).Middleware(t, srv.Handler())) // every response checked against CVAT's schema
	t.Cleanup(func() { hs.Close(); srv.Close() })
	ctx := context.Background()
	mk := func(user, password string) *cvat.Client {
		key, err := cvat.Login(ctx, hs.URL, user, password, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Token(key)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	bc, admin := mk(cleanupUser, cleanupPassword), mk("admin", "admin")
	labels := []cvat.Label{{Name: "object"}}
	run := bench.CleanupPrefix + bench.NewRunID(time.Now().Add(-2*time.Hour))
	p, err := bc.CreateProject(ctx, cvat.ProjectSpec{Name: run + "-webhook", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.CreateWebhook(ctx, cvat.WebhookSpec{TargetURL: "http://127.0.0.1:9/hook", Description: run + "-webhook",
		Type: "project", ContentType: "application/json", ProjectID: &p.ID, Events: []string{"create:job"}}); err != nil {
		t.Fatal(err)
	}
	tasks := []struct {
		c    *cvat.Client
		name string
		pid  *int
	}{
		{bc, run + "-webhook-0", &p.ID}, {bc, run + "-poll-1", nil},
		{bc, "foreign", nil}, {bc, "cvatbench", nil}, {admin, run + "-poll-2", nil},
	}
	for _, tk := range tasks {
		spec := cvat.TaskSpec{Name: tk.name, ProjectID: tk.pid}
		if tk.pid == nil {
			spec.Labels = labels
		}
		if _, err := tk.c.CreateTask(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	clk.setOffset(0)
	young := bench.CleanupPrefix + bench.NewRunID(time.Now()) + "-poll-0"
	if _, err := bc.CreateTask(ctx, cvat.TaskSpec{Name: young, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	return hs.URL, bc
}

// cleanupNames lists what cleanupUser still sees: its tasks, projects and webhooks (admin's task included,
// which the emulator shows to nobody but admin).
func cleanupNames(t *testing.T, c *cvat.Client) (tasks, projects, webhooks int) {
	t.Helper()
	ctx := context.Background()
	ts, err := c.ListTasks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.ListProjects(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(ts), len(ps), len(ws)
}

func TestCleanupAgainstEmulator(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		flags  []string
		code   int
		remain [3]int // tasks, projects, webhooks of cleanupUser afterwards
		stderr string
	}{
		{"answer no", "n\n", nil, exitOK, [3]int{5, 1, 1}, "nothing deleted"},
		{"empty answer", "\n", nil, exitOK, [3]int{5, 1, 1}, "nothing deleted"},
		{"no answer at all", "", nil, exitRuntime, [3]int{5, 1, 1}, "no answer on stdin"},
		{"dry run", "y\n", []string{"--dry-run"}, exitOK, [3]int{5, 1, 1}, "dry run: 4 objects left in place"},
		{"answer yes", "y\n", nil, exitOK, [3]int{3, 0, 0}, "deleted 4 objects"},
		{"answer YES without newline", "YES", nil, exitOK, [3]int{3, 0, 0}, "deleted 4 objects"},
		{"flag yes", "", []string{"--yes"}, exitOK, [3]int{3, 0, 0}, "deleted 4 objects"},
		{"young ones too", "", []string{"--yes", "--older-than", "0s"}, exitOK, [3]int{2, 0, 0}, "deleted 5 objects"},
		{"nothing that old", "", []string{"--yes", "--older-than", "3h"}, exitOK, [3]int{5, 1, 1}, "no leftovers older than 3h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cleanupEnv(t)
			base, bc := cleanupSim(t)
			args := append([]string{"cleanup", "--url", base, "--user", cleanupUser, "--password", cleanupPassword}, tc.flags...)
			code, stdout, stderr := cleanupRun(t, tc.input, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
			tasks, projects, webhooks := cleanupNames(t, bc)
			if got := [3]int{tasks, projects, webhooks}; got != tc.remain {
				t.Errorf("remaining tasks, projects, webhooks = %v, want %v", got, tc.remain)
			}
			if strings.Contains(stdout+stderr, cleanupPassword) {
				t.Errorf("output leaks the password:\n%s%s", stdout, stderr)
			}
			if tc.stderr == "nothing deleted" || tc.stderr == "deleted 4 objects" {
				if !strings.Contains(stderr, "Delete 4 objects? [y/N]") && tc.flags == nil {
					t.Errorf("stderr %q lacks the question", stderr)
				}
				lines := strings.Split(strings.TrimSpace(stdout), "\n")
				if len(lines) != 5 || !strings.HasPrefix(lines[0], "kind") || !strings.HasPrefix(lines[1], "webhook") ||
					!strings.HasPrefix(lines[4], "project") || strings.Contains(stdout, "foreign") {
					t.Errorf("listing:\n%s", stdout)
				}
			}
		})
	}
}

// TestCleanupTokenNeverPrinted uses a personal access token, also when the server refuses it.
func TestCleanupTokenNeverPrinted(t *testing.T) {
	cleanupEnv(t)
	base, bc := cleanupSim(t)
	// Only password-based auth may create a PAT (API.md §2.1).
	key, err := cvat.Login(context.Background(), base, cleanupUser, cleanupPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Basic(cleanupUser, cleanupPassword)})
	if err != nil {
		t.Fatal(err)
	}
	pat, err := kc.CreateAccessToken(context.Background(), "cleanup-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CVAT_ACCESS_TOKEN", pat)
	code, stdout, stderr := cleanupRun(t, "", "cleanup", "--url", base, "--yes")
	if code != exitOK || !strings.Contains(stderr, "deleted 4 objects") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if tasks, _, _ := cleanupNames(t, bc); tasks != 3 {
		t.Errorf("%d tasks remain, want 3", tasks)
	}
	if strings.Contains(stdout+stderr, pat) || strings.Contains(stdout+stderr, key) {
		t.Errorf("output leaks a token:\n%s%s", stdout, stderr)
	}

	for _, tc := range []struct{ name, secret string }{{"bad token", "pat-" + pat[:8] + "-wrong"}, {"bad password", "pw-wrong-Zq81"}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"cleanup", "--url", base, "--yes"}
			if tc.name == "bad token" {
				args = append(args, "--token", tc.secret)
			} else {
				t.Setenv("CVAT_ACCESS_TOKEN", "")
				args = append(args, "--user", cleanupUser, "--password", tc.secret)
			}
			code, stdout, stderr := cleanupRun(t, "", args...)
			if code != exitRuntime {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitRuntime, stderr)
			}
			if strings.Contains(stdout+stderr, tc.secret) {
				t.Errorf("output leaks the secret: %q", stdout+stderr)
			}
		})
	}
}

func TestCleanupConfirm(t *testing.T) {
	tests := []struct {
		input   string
		want    bool
		wantErr bool
	}{
		{"y\n", true, false}, {"Yes\r\n", true, false}, {" y ", true, false},
		{"n\n", false, false}, {"\n", false, false}, {"yy\n", false, false}, {"no\ny\n", false, false},
		{"", false, true},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSpace(tc.input)+"/"+string(rune('0'+len(tc.input))), func(t *testing.T) {
			var w bytes.Buffer
			got, err := cleanupConfirm(strings.NewReader(tc.input), &w, 2)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("cleanupConfirm(%q) = %v, %v; want %v, error %v", tc.input, got, err, tc.want, tc.wantErr)
			}
			if !strings.HasPrefix(w.String(), "Delete 2 objects? [y/N] ") {
				t.Errorf("prompt %q", w.String())
			}
		})
	}
	if _, err := cleanupConfirm(io.MultiReader(), io.Discard, 1); err == nil {
		t.Error("closed input accepted as an answer")
	}
}

func TestCleanupPrintQuotesControlCharacters(t *testing.T) {
	var b bytes.Buffer
	err := cleanupPrint(&b, []bench.Leftover{{Kind: "task", ID: 7, Name: "cvatbench-20261127T001500Z-3f9a-\x1b[2Jx\ty",
		Created: time.Date(2026, 11, 27, 0, 15, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	want := "kind  id  name                                           created_at\n" +
		"task  7   \"cvatbench-20261127T001500Z-3f9a-\\x1b[2Jx\\ty\"  2026-11-27T00:15:00Z\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

// TestCleanupHelpHidesEnvSecrets: --help shows which variables are read, never their values.
func TestCleanupHelpHidesEnvSecrets(t *testing.T) {
	t.Setenv("CVAT_USER", "bench")
	t.Setenv("CVAT_PASSWORD", cleanupPassword)
	t.Setenv("CVAT_ACCESS_TOKEN", "tok-env-77")
	code, stdout, stderr := cleanupRun(t, "", "cleanup", "--help")
	if code != exitOK || !strings.Contains(stdout, "$CVAT_PASSWORD") {
		t.Fatalf("exit %d, help %q, stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, cleanupPassword) || strings.Contains(stdout+stderr, "tok-env-77") {
		t.Errorf("help leaks a secret:\n%s", stdout)
	}
}
