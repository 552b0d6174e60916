package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineWriter collects output and reports the first complete line.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string
	sent  bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok {
			w.sent = true
			w.first <- line
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestSimServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWriter{first: make(chan string, 1)}
	var stdout bytes.Buffer
	const secret = "s3cret-pw"
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"cvatbench", "sim", "--addr", "127.0.0.1:0", "--profile", "instant",
			"--user", "bench", "--password", secret, "--seed", "7"}, &stdout, stderr)
	}()
	var line string
	select {
	case line = <-stderr.first:
	case code := <-done:
		t.Fatalf("sim exited early with %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no listening line")
	}
	base, ok := strings.CutPrefix(line, "cvatsim listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("first stderr line %q", line)
	}
	res, err := http.Get(base + "/api/server/about")
	if err != nil {
		t.Fatal(err)
	}
	var about struct{ Version string }
	err = json.NewDecoder(res.Body).Decode(&about)
	res.Body.Close()
	if err != nil || about.Version != "2.73.0" {
		t.Fatalf("about: %v %+v", err, about)
	}
	req, _ := http.NewRequest("GET", base+"/api/users/self", nil)
	req.SetBasicAuth("bench", secret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("self with the configured user: %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop after cancel")
	}
	out := stderr.String() + stdout.String()
	if strings.Contains(out, secret) {
		t.Fatalf("password printed: %q", out)
	}
	if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
		t.Fatalf("stderr has %d extra lines: %q", n, stderr.String())
	}
}

func TestSimBadFlagsAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown profile", []string{"--profile", "nope"}, "cvat-default"},
		{"zero workers", []string{"--import-workers", "0"}, "--import-workers"},
		{"negative ttl", []string{"--request-ttl", "-1s"}, "--request-ttl"},
		{"empty password", []string{"--password", ""}, "--password"},
		{"negative per-job", []string{"--per-job", "-5ms"}, "--per-job"},
		{"extra args", []string{"extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"cvatbench", "sim", "--addr", "127.0.0.1:0"}, tc.args...)
			code := run(context.Background(), args, &out, &errOut)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", errOut.String(), tc.want)
			}
		})
	}
}
