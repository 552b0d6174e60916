package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// tinyProfile is a fast server, so the whole default experiment runs in seconds on the real clock; its
// processing (~30 ms) still outlasts the spread of four simultaneous uploads under the race detector, so
// the concurrent phase sees two creations processing at once.
func tinyProfile(t *testing.T) string {
	t.Helper()
	ms := time.Millisecond
	p := cvatsim.Profile{Name: "tiny", ImportWorkers: 2, APIRead: cvatsim.Dist{Base: ms}, APIWrite: cvatsim.Dist{Base: ms},
		PickUp: cvatsim.Dist{Base: ms}, Processing: cvatsim.Dist{Base: 15 * ms, Median: 5 * ms, Sigma: 0.2}, PerJob: 200 * time.Microsecond,
		JobsToCommit: cvatsim.Dist{Base: 10 * ms}, WebhookHop: ms, ConcurrencyStretch: 0.5}
	return writeProfileFile(t, p)
}

// writeProfileFile writes p as a profile file in a temporary directory and returns its path.
func writeProfileFile(t *testing.T, p cvatsim.Profile) string {
	t.Helper()
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, cvatsim.ProfileFileOf(p, "")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), p.Name+".json")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCalibrateWritesAProfileRunAccepts(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cal", "fitted.json")
	code, stdout, stderr := cvatbench("calibrate", "--sim-profile", tinyProfile(t), "--repeats", "3", "--out", out, "--name", "mine")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"import_workers", "per_image", "preview_per_frame[70]", "not measured: kept"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	pf := readProfile(t, out)
	if pf.Name != "mine" || pf.Server == nil || pf.Server.Version != cvatsim.Version || pf.Terms.ImportWorkers != 2 {
		t.Errorf("profile %+v: want name mine, server version %s, 2 workers", pf, cvatsim.Version)
	}
	if _, err := os.Stat(out + ".samples.json"); err != nil {
		t.Errorf("raw samples: %v", err)
	}
	if code, _, stderr := cvatbench("run", "--sim-profile", out, "--strategies", "poll", "--tasks", "2", "--concurrency", "1", "--out", t.TempDir()); code != exitOK {
		t.Fatalf("run with the calibrated profile: exit %d: %s", code, stderr)
	}
}

func TestCalibrateFailureNamesTheTermAndWritesNothing(t *testing.T) {
	// A server whose import queue never picks anything up.
	prof := writeProfileFile(t, cvatsim.Profile{Name: "stuck", PickUp: cvatsim.Dist{Base: time.Hour}})
	out := filepath.Join(t.TempDir(), "fitted.json")
	code, _, stderr := cvatbench("calibrate", "--sim-profile", prof, "--timeout", "300ms", "--out", out)
	if code != exitRuntime {
		t.Fatalf("exit %d, want %d: %s", code, exitRuntime, stderr)
	}
	if last := lastLine(stderr); !strings.Contains(last, "cannot fit pickup") || !strings.Contains(last, "not started within 300ms") {
		t.Errorf("error line %q does not name the term and why", last)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a profile file was written: %v", err)
	}
}

func TestCalibrateBadInputIsOneLineExit2(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"too few repeats", []string{"--repeats", "1"}, "repeats 1"},
		{"receiver value", []string{"--receiver", "maybe"}, `--receiver "maybe"`},
		{"unknown base profile", []string{"--base-profile", "nope"}, `unknown profile "nope"`},
		{"bad url", []string{"--url", "ftp://x"}, "--url"},
		{"url without credentials", []string{"--url", "http://127.0.0.1:1"}, "needs --token"},
		{"bad sim profile file", []string{"--sim-profile", badProfileFile(t, `"pick_up": "1ms"`)}, `unknown term "pick_up"`},
		{"empty out", []string{"--out", ""}, "--out"},
		{"extra args", []string{"x"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CVAT_USER", "")
			t.Setenv("CVAT_PASSWORD", "")
			t.Setenv("CVAT_ACCESS_TOKEN", "")
			code, _, stderr := cvatbench(append([]string{"calibrate"}, tc.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q: want one line with %q", stderr, tc.want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// readProfile parses the profile file at path or fails t.
func readProfile(t *testing.T, path string) cvatsim.ProfileFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := cvatsim.ParseProfile(f)
	if err != nil {
		t.Fatalf("profile %s does not parse: %v", path, err)
	}
	return pf
}
