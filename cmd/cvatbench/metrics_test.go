package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench/prom"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// metricsApp runs action under an app with the metrics flags plus the run flags they read (--url,
// --strategies), the way `cvatbench run` parses them.
func metricsApp(ctx context.Context, args []string, stderr io.Writer, action func(c *cli.Context) error) error {
	flags := append(metricsFlags(),
		&cli.StringFlag{Name: "url"},
		&cli.StringSliceFlag{Name: "strategies"},
	)
	app := &cli.App{
		Name: "cvatbench", Writer: io.Discard, ErrWriter: stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{{Name: "run", Flags: flags, Action: action}},
	}
	return app.RunContext(ctx, append([]string{"cvatbench", "run"}, args...))
}

func TestMetricsFlagsBadInputIsUsageError(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string // substring of the message
	}{
		{"addr without port", []string{"--metrics-addr", "localhost"}, "--metrics-addr"},
		{"addr bad port", []string{"--metrics-addr", "127.0.0.1:http9"}, "--metrics-addr"},
		{"negative linger", []string{"--metrics-addr", "127.0.0.1:0", "--linger", "-1s"}, "--linger"},
		{"linger alone", []string{"--linger", "5s"}, "--linger needs"},
		{"pushgateway not a URL", []string{"--pushgateway", "localhost:9091"}, "--pushgateway"},
		{"push-delete alone", []string{"--push-delete"}, "--push-delete needs --pushgateway"},
		{"metrics file not .prom", []string{"--metrics-file", filepath.Join(dir, "x.txt")}, "*.prom"},
		{"metrics file dir missing", []string{"--metrics-file", filepath.Join(dir, "nope", "x.prom")}, "does not exist"},
		{"target with slash", []string{"--target", "a/b"}, "--target"},
		{"unparsable url gives no target", []string{"--url", "http://"}, "--target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := metricsApp(context.Background(), tc.args, io.Discard, func(c *cli.Context) error {
				s, err := startMetrics(c, buildMeta{Version: "v0", Commit: "c0"})
				if err == nil {
					_ = s.Close()
				}
				return err
			})
			var ec cli.ExitCoder
			if !errors.As(err, &ec) || ec.ExitCode() != exitUsage {
				t.Fatalf("error %v: want a usage error (exit %d)", err, exitUsage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestDefaultTarget(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "emulator"},
		{"http://cvat.example:8080/", "cvat.example:8080"},
		{"https://user:secret@cvat.example", "cvat.example"},
		{"http://", ""},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			if got := defaultTarget(tc.url); got != tc.want {
				t.Errorf("defaultTarget(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

// TestMetricsSessionExports drives a session like `run` will: live events, then Finish with a textfile, a
// push (to a fake gateway) and --push-delete, no linger.
func TestMetricsSessionExports(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method)
		mu.Unlock()
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer gw.Close()
	file := filepath.Join(t.TempDir(), "cvatbench.prom")
	var stderr bytes.Buffer
	args := []string{"--metrics-addr", "127.0.0.1:0", "--linger", "0s", "--pushgateway", gw.URL, "--push-delete",
		"--metrics-file", file, "--url", "http://cvat.example:8080", "--strategies", "poll,sdk"}

	err := metricsApp(context.Background(), args, &stderr, func(c *cli.Context) error {
		s, err := startMetrics(c, buildMeta{Version: "v9", Commit: "abc"})
		if err != nil {
			return err
		}
		defer s.Close()
		if s.target != "cvat.example:8080" {
			t.Errorf("target %q, want host:port of --url", s.target)
		}
		s.now = func() time.Time { return time.Unix(1767323045, 0) }
		url := s.srv.URL()

		// Series of --strategies exist at zero before any trial.
		want := `
# HELP cvatbench_tasks_in_flight Trials started and not yet finished.
# TYPE cvatbench_tasks_in_flight gauge
cvatbench_tasks_in_flight{strategy="poll"} 0
cvatbench_tasks_in_flight{strategy="sdk"} 0
`
		if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), prom.NameTasksInFlight); err != nil {
			t.Error(err)
		}
		obs := s.Observer()
		obs.TrialStarted("poll")
		obs.APICall("poll", cvat.Call{Method: "GET", Endpoint: "/api/jobs", Status: 200})
		e2e := 2500.0
		rec := record.Trial{Strategy: "poll", Result: record.ResultOK, EndToEndMs: &e2e}
		obs.TrialFinished(rec)
		want = `
# HELP cvatbench_tasks_total Finished trials (one task each) by result.
# TYPE cvatbench_tasks_total counter
cvatbench_tasks_total{result="error",strategy="poll"} 0
cvatbench_tasks_total{result="error",strategy="sdk"} 0
cvatbench_tasks_total{result="ok",strategy="poll"} 1
cvatbench_tasks_total{result="ok",strategy="sdk"} 0
cvatbench_tasks_total{result="timeout",strategy="poll"} 0
cvatbench_tasks_total{result="timeout",strategy="sdk"} 0
`
		if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), prom.NameTasks); err != nil {
			t.Error(err)
		}
		return s.Finish(c.Context, []record.Trial{rec}, 4*time.Second, 1, false)
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(calls, ",")
	mu.Unlock()
	if got != "POST,DELETE" {
		t.Errorf("pushgateway calls %s, want POST,DELETE (one strategy with records)", got)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`cvatbench_run_threshold_failures{strategy="poll",target="cvat.example:8080"} 1`,
		`cvatbench_run_time_to_jobs_seconds_count{strategy="poll",target="cvat.example:8080"} 1`,
		`cvatbench_run_duration_seconds{strategy="poll",target="cvat.example:8080"} 4`,
	} {
		if !bytes.Contains(b, []byte(line+"\n")) {
			t.Errorf("metrics file lacks %q:\n%s", line, b)
		}
	}
	if bytes.Contains(b, []byte(prom.NameRunLastSuccess)) {
		t.Errorf("failed run wrote %s", prom.NameRunLastSuccess)
	}
	if !strings.Contains(stderr.String(), "metrics: serving http://127.0.0.1:") {
		t.Errorf("stderr %q does not say where metrics are served", stderr.String())
	}
}

// TestMetricsLingerEndsOnCancel: Ctrl-C during the linger ends it at once, and the server stops.
func TestMetricsLingerEndsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	err := metricsApp(ctx, []string{"--metrics-addr", "127.0.0.1:0", "--linger", "1h"}, io.Discard, func(c *cli.Context) error {
		s, err := startMetrics(c, buildMeta{Version: "v9", Commit: "abc"})
		if err != nil {
			return err
		}
		url := s.srv.URL()
		cancel() // as if SIGINT arrived before the linger
		if err := s.Finish(c.Context, nil, time.Second, 0, false); err != nil {
			return err
		}
		if _, err := http.Get(url); err == nil {
			t.Error("metrics server still answers after Finish")
		}
		return s.Finish(c.Context, nil, time.Second, 0, false)
	})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Finish: %v, want an error", err)
	}
}

// TestRunWithARejectingPushgateway: the run's table is out, the push failure is one line naming the
// Pushgateway call once ("metrics: push ..."), and the exit code is 1.
func TestRunWithARejectingPushgateway(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "pushes are off", http.StatusServiceUnavailable)
	}))
	defer gw.Close()
	code, stdout, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1",
		"--concurrency", "1", "--images", "1", "--image-size", "16x16", "--out", t.TempDir(), "--pushgateway", gw.URL)
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	if !strings.Contains(stdout, "| poll") {
		t.Errorf("no table on stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "metrics: push") || strings.Contains(stderr, "metrics: metrics:") {
		t.Errorf("stderr %q: want the push failure prefixed once", stderr)
	}
}
