package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/report"
	"github.com/cvatbench/cvatbench/strategies"
)

func TestRunBadInputIsOneLineExit2(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown strategy", []string{"--strategies", "poll,nap"}, `unknown strategy "nap"`},
		{"rate and concurrency", []string{"--rate", "2", "--concurrency", "2"}, "exclusive"},
		{"concurrency above trials", []string{"--strategies", "poll", "--tasks", "1", "--concurrency", "2"}, "exceeds the 1 scheduled"},
		{"zero timeout", []string{"--timeout", "0s"}, "timeout 0s"},
		{"quality out of range", []string{"--image-quality", "0"}, "image quality 0"},
		{"bad image size", []string{"--image-size", "big"}, `image size "big"`},
		{"bad upload mode", []string{"--upload-mode", "ftp"}, `upload mode "ftp"`},
		{"two problems", []string{"--tasks", "0", "--image-format", "bmp"}, `tasks per strategy 0`},
		{"unknown profile", []string{"--sim-profile", "fast"}, `unknown profile "fast"`},
		{"profile file with an unknown key", []string{"--sim-profile", badProfileFile(t, `"pick_up": "1ms"`)}, `unknown term "pick_up"`},
		{"profile file with a negative duration", []string{"--sim-profile", badProfileFile(t, `"per_image": "-1ms"`)}, `term "per_image"`},
		{"profile file absent", []string{"--sim-profile", "./no-such-profile.json"}, `no-such-profile.json`},
		{"credentials without url", []string{"--user", "u", "--password", "p"}, "need --url"},
		{"url without credentials", []string{"--url", "http://127.0.0.1:1"}, "needs --token or both"},
		{"token and password", []string{"--url", "http://127.0.0.1:1", "--token", "t", "--user", "u", "--password", "p"}, "not both"},
		{"static cache with url", []string{"--url", "http://127.0.0.1:1", "--token", "t", "--sim-static-cache"}, "needs the embedded emulator"},
		{"positional argument", []string{"extra"}, "unexpected arguments"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CVAT_USER", "")
			t.Setenv("CVAT_PASSWORD", "")
			t.Setenv("CVAT_ACCESS_TOKEN", "")
			var out, errOut bytes.Buffer
			args := append([]string{"cvatbench", "run", "--out", t.TempDir()}, tc.args...)
			code := run(context.Background(), args, &out, &errOut)
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
			if strings.Contains(msg, "p\n") || strings.Contains(msg, `"p"`) {
				t.Errorf("stderr may leak the password: %q", msg)
			}
		})
	}
}

func TestRunConfigFromFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c bench.Config)
	}{
		{"defaults", nil, func(t *testing.T, c bench.Config) {
			d := bench.DefaultConfig()
			d.OutDir = c.OutDir
			if c.Concurrency != d.Concurrency || c.TasksPerStrategy != d.TasksPerStrategy || len(c.Strategies) != len(d.Strategies) ||
				c.SimProfile != "cvat-default" || c.Timeout != d.Timeout || c.Validate() != nil {
				t.Errorf("config %+v", c)
			}
		}},
		{"rate alone is open loop", []string{"--rate", "1.5"}, func(t *testing.T, c bench.Config) {
			if c.Concurrency != 0 || c.Rate != 1.5 {
				t.Errorf("concurrency %d rate %g", c.Concurrency, c.Rate)
			}
		}},
		{"images dir alone takes all images", []string{"--images-dir", "/x"}, func(t *testing.T, c bench.Config) {
			if c.Images != 0 || c.ImagesDir != "/x" {
				t.Errorf("images %d dir %q", c.Images, c.ImagesDir)
			}
		}},
		{"sweep and knobs", []string{"--image-quality", "30", "--image-quality", "90", "--poll-interval", "250ms", "--strategies", "poll,sdk"},
			func(t *testing.T, c bench.Config) {
				if len(c.ImageQualities) != 2 || c.PollInterval != 250*time.Millisecond || strings.Join(c.Strategies, ",") != "poll,sdk" {
					t.Errorf("config %+v", c)
				}
			}},
		{"url drops the emulator profile", []string{"--url", "http://cvat:8080"}, func(t *testing.T, c bench.Config) {
			if c.Target != "http://cvat:8080" || c.SimProfile != "" {
				t.Errorf("target %q profile %q", c.Target, c.SimProfile)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := runCommand()
			var got bench.Config
			cmd.Action = func(c *cli.Context) error { got = runConfig(c); return nil }
			app := &cli.App{Name: "cvatbench", Commands: []*cli.Command{cmd}, ExitErrHandler: func(*cli.Context, error) {}}
			if err := app.Run(append([]string{"cvatbench", "run"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

func TestRunOnEmbeddedEmulatorPrintsTableFromResults(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"cvatbench", "run", "--sim-profile", "instant",
		"--strategies", "busyloop,poll,webhook", "--tasks", "2", "--concurrency", "2", "--images", "2",
		"--image-size", "16x16", "--poll-interval", "5ms", "--out", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("results dirs %v", dirs)
	}
	if !strings.Contains(stderr.String(), "6/6 trials, 0 errors") || !strings.Contains(stderr.String(), "results: "+dirs[0]) {
		t.Errorf("stderr %q", stderr.String())
	}
	// Re-reading the directory reproduces the printed table byte for byte.
	r, err := report.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.Summarize(r, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := report.Table(s, false)(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != stdout.String() {
		t.Errorf("table printed by run differs from the results:\n%s\nvs\n%s", stdout.String(), again.String())
	}
	for _, want := range []string{"busyloop", "poll", "webhook", "| strategy |"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	if r.Meta.Target != "embedded" || r.Meta.EmulatorProfile != "instant" || r.Meta.ServerVersion == "" || r.Meta.ToolCommit == "" {
		t.Errorf("meta %+v", r.Meta)
	}
}

// Strategy specs are rows of their own, named canonically, with their histograms in files every file system
// takes; the bare name keeps the --poll-interval flag as its default.
func TestRunStrategySpecsAreRows(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll",
		"--strategies", "poll:interval=0.002s", "--strategies", "backoff:initial=1ms:factor=1.5:max=20ms",
		"--tasks", "2", "--concurrency", "2", "--images", "1", "--image-size", "16x16", "--poll-interval", "5ms", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("results dirs %v", dirs)
	}
	r, err := report.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"poll", "poll:interval=2ms", "backoff:initial=1ms:factor=1.5:max=20ms"}
	if !slices.Equal(r.Meta.Config.Strategies, want) {
		t.Errorf("meta strategies %q, want %q", r.Meta.Config.Strategies, want)
	}
	s, err := report.Summarize(r, report.DefaultPercentiles)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, row := range s.Rows {
		rows = append(rows, row.Strategy)
		if row.N != 2 || row.OK != 2 {
			t.Errorf("row %s: n %d ok %d", row.Strategy, row.N, row.OK)
		}
		if h := r.Histograms[row.Strategy]; h == nil || h.TotalCount() != 2 {
			t.Errorf("row %s: histogram %v", row.Strategy, h)
		}
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows %q, want %q\n%s", rows, want, stdout)
	}
	for _, f := range []string{"poll.hlog", "poll_interval_2ms.hlog", "backoff_initial_1ms_factor_1.5_max_20ms.hlog"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Errorf("histogram file: %v", err)
		}
	}
	if r.Meta.Config.PollInterval != 5*time.Millisecond {
		t.Errorf("poll interval %v, want the flag's 5ms", r.Meta.Config.PollInterval)
	}
}

// Under the emulator's what-if, prealloc reads the job IDs right after the upload and waits for the commit;
// the run records the what-if, and the table says no CVAT release behaves so.
func TestRunPreallocUnderTheWhatIf(t *testing.T) {
	if strategies.WhatIfPreallocJobs != cvatsim.WhatIfPreallocJobs {
		t.Fatalf("what-if spelt %q by strategies, %q by cvatsim", strategies.WhatIfPreallocJobs, cvatsim.WhatIfPreallocJobs)
	}
	out := t.TempDir()
	code, stdout, stderr := cvatbench("run", "--sim-profile", "instant", "--sim-what-if", "prealloc-jobs",
		"--strategies", "prealloc,poll", "--tasks", "3", "--concurrency", "1", "--images", "4", "--segment-size", "2",
		"--image-size", "16x16", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	r, err := report.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Config.SimWhatIf != "prealloc-jobs" {
		t.Errorf("meta what-if %q", r.Meta.Config.SimWhatIf)
	}
	for _, tr := range r.Trials {
		if tr.Result != "ok" || len(tr.JobIDs) != 2 {
			t.Errorf("trial %d %s: %s %v %s", tr.Seq, tr.Strategy, tr.Result, tr.JobIDs, tr.Error)
		}
		if tr.Strategy == "prealloc" && (tr.Signal != strategies.SignalPreallocated || tr.DetectionDelayMs == nil || *tr.DetectionDelayMs < 0) {
			t.Errorf("prealloc trial %d: signal %q, detection %v", tr.Seq, tr.Signal, tr.DetectionDelayMs)
		}
	}
	if !strings.Contains(stdout, "what-if") || !strings.Contains(stdout, "no CVAT release") {
		t.Errorf("the table does not say the run is a what-if:\n%s", stdout)
	}
}
