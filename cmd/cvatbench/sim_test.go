package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
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
		{"negative workers", []string{"--import-workers", "-1"}, "--import-workers"},
		{"profile file missing a term", []string{"--profile", badProfileFile(t, "")}, `missing term "webhook_hop"`},
		{"print unknown profile", []string{"--print-profile", "nope"}, `unknown profile "nope"`},
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

// badProfileFile writes cvat-default as a profile file with its webhook_hop term replaced by extra (a
// `"key": value` pair, or "" to drop the term) and returns its path.
func badProfileFile(t *testing.T, extra string) string {
	t.Helper()
	p, err := cvatsim.LookupProfile("cvat-default")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cvatsim.WriteProfile(&buf, cvatsim.ProfileFileOf(p, "")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		if !strings.Contains(l, `"webhook_hop"`) {
			continue
		}
		if extra == "" {
			lines = append(lines[:i], lines[i+1:]...) // webhook_hop is not the last term: its comma can go with it
		} else {
			lines[i] = "    " + extra + ","
		}
		break
	}
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSimPrintProfileIsAFileRunAccepts(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"cvatbench", "sim", "--print-profile", "instant"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	pf, err := cvatsim.ParseProfile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("printed profile does not parse: %v", err)
	}
	if want, _ := cvatsim.LookupProfile("instant"); !reflect.DeepEqual(pf.Terms.APIRead, want.APIRead) || pf.Name != "instant" {
		t.Fatalf("printed %+v, want instant", pf)
	}
	path := filepath.Join(t.TempDir(), "mine.json")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out.Reset()
	errOut.Reset()
	code := run(context.Background(), []string{"cvatbench", "run", "--sim-profile", path, "--strategies", "poll", "--tasks", "2",
		"--concurrency", "1", "--out", dir}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("run with the printed file: exit %d: %s", code, errOut.String())
	}
	metas, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	if len(metas) != 1 {
		t.Fatalf("want one meta.json under %s, found %v", dir, metas)
	}
	var meta struct {
		EmulatorProfile string          `json:"emulator_profile"`
		EmulatorTerms   json.RawMessage `json:"emulator_terms"`
	}
	if b, err := os.ReadFile(metas[0]); err != nil || json.Unmarshal(b, &meta) != nil {
		t.Fatalf("meta.json: %v", err)
	}
	if meta.EmulatorProfile != path {
		t.Errorf("meta.json emulator_profile %q, want %q", meta.EmulatorProfile, path)
	}
	if recorded, err := cvatsim.ParseProfile(bytes.NewReader(meta.EmulatorTerms)); err != nil || !reflect.DeepEqual(recorded.Terms, pf.Terms) {
		t.Errorf("meta.json emulator_terms %v: %+v, want %+v", err, recorded.Terms, pf.Terms)
	}
}
