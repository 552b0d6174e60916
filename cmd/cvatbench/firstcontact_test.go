package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAppWithoutArgumentsShowsHelp: `cvatbench` alone prints the help and succeeds (not urfave's exit 3).
func TestAppWithoutArgumentsShowsHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"cvatbench"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitOK, stderr.String())
	}
	for _, want := range []string{"USAGE", "run", "sim", "cleanup", "report", "compare"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr not empty: %q", stderr.String())
	}
}

// TestRunRejectedBeforeTrialsLeavesNoResultsDir: when the server refuses the credentials, run prints one line,
// leaves --out empty and stops after the first contact (no project, no task is attempted).
func TestRunRejectedBeforeTrialsLeavesNoResultsDir(t *testing.T) {
	tests := []struct {
		name string
		deny func(path string) bool // paths answered 401; the rest answer as a CVAT would for About and Self
		want string
	}{
		{"about rejects the token", func(string) bool { return true }, "run: server about: GET /api/server/about: 401"},
		{"self rejects the token", func(p string) bool { return p == "/api/users/self" }, "run: check credentials: current user: GET /api/users/self: 401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flagsCredentialEnv(t)
			var other atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case tc.deny(r.URL.Path):
					w.WriteHeader(http.StatusUnauthorized)
					_, _ = w.Write([]byte(`{"detail":"Invalid token."}`))
				case r.URL.Path == "/api/server/about":
					_, _ = w.Write([]byte(`{"name":"Computer Vision Annotation Tool","version":"2.73.0"}`))
				default:
					other.Add(1)
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			defer srv.Close()
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"cvatbench", "run", "--url", srv.URL, "--token", "tok-Zz1",
				"--strategies", "poll", "--tasks", "1", "--concurrency", "1", "--out", out}, &stdout, &stderr)
			if code != exitRuntime {
				t.Errorf("exit %d, want %d", code, exitRuntime)
			}
			msg := strings.TrimRight(stderr.String(), "\n")
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "cvatbench: "+tc.want) {
				t.Errorf("stderr %q, want one line starting %q", msg, "cvatbench: "+tc.want)
			}
			if strings.Contains(msg, "tok-Zz1") || stdout.Len() > 0 {
				t.Errorf("stdout %q, stderr %q: want no table and no token", stdout.String(), msg)
			}
			entries, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("--out holds %v, want nothing", entries)
			}
			if n := other.Load(); n > 0 {
				t.Errorf("%d calls after the rejected first contact", n)
			}
		})
	}
}

// TestHTTPSToPlainHTTPFailsAtOnce: https:// to a plain-HTTP server is one attempt and one line that says
// what happened, not 5 s of retries.
func TestHTTPSToPlainHTTPFailsAtOnce(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "https://", 1)
	flagsCredentialEnv(t)
	code, _, stderr := cvatbench("run", "--url", u, "--token", "tok-Zz1", "--out", t.TempDir())
	if code != exitRuntime || !strings.Contains(stderr, "server gave HTTP response to HTTPS client") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("exit %d, stderr %q: want exit 1 and one line naming the mismatch", code, stderr)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: the mismatch is not worth a retry", n)
	}
}

// TestVersionQuietAndLogProgress: `version` prints what --version does; stderr that is not a terminal gets
// plain progress lines, and --quiet none.
func TestVersionQuietAndLogProgress(t *testing.T) {
	code, stdout, _ := cvatbench("version")
	_, flagOut, _ := cvatbench("--version")
	if code != exitOK || !strings.HasPrefix(stdout, "cvatbench ") || strings.TrimSpace(stdout) != strings.TrimSpace(flagOut) {
		t.Errorf("version: exit %d %q; --version %q", code, stdout, flagOut)
	}
	args := []string{"run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1", "--concurrency", "1",
		"--images", "1", "--image-size", "16x16", "--out", t.TempDir()}
	code, _, stderr := cvatbench(args...)
	if code != exitOK || strings.Contains(stderr, "\r") || !strings.Contains(stderr, "progress: 1/1 trials, 0 errors") {
		t.Errorf("run into a buffer: exit %d, stderr %q: want plain progress lines", code, stderr)
	}
	code, _, stderr = cvatbench(append(args, "--quiet")...)
	if code != exitOK || strings.Contains(stderr, "progress") {
		t.Errorf("run --quiet: exit %d, stderr %q", code, stderr)
	}
}

// TestTasksOneWithTheDefaultConcurrency: `run --tasks 1` lowers the default concurrency to the trials and says
// so; an explicit --concurrency above them is still refused.
func TestTasksOneWithTheDefaultConcurrency(t *testing.T) {
	args := []string{"run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1", "--images", "1",
		"--image-size", "16x16", "--quiet", "--out", t.TempDir()}
	code, _, stderr := cvatbench(args...)
	if code != exitOK || !strings.Contains(stderr, "concurrency 3 lowered to 1") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cvatbench(append(args, "--concurrency", "3")...)
	if code != exitUsage || !strings.Contains(stderr, "concurrency 3 exceeds the 1 scheduled trials") {
		t.Errorf("explicit --concurrency 3: exit %d, stderr %q", code, stderr)
	}
}

// TestRunOutputJSON: `run --output json` prints the summary as JSON on stdout, the same as report's.
func TestRunOutputJSON(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "2",
		"--concurrency", "1", "--images", "1", "--image-size", "16x16", "--quiet", "--output", "json", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	_, again, _ := cvatbench("report", "--format", "json", dirs[0])
	if !strings.HasPrefix(stdout, "{") || stdout != again {
		t.Errorf("run --output json:\n%s\nreport --format json:\n%s", stdout, again)
	}
}
