package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
)

// Waiting on an external process (the cvatbench binary) is the one place the safety tests look instead of
// being notified: a file that grows, a line on a pipe. Every wait has a bounded deadline.
const (
	safetyPollEvery = 20 * time.Millisecond
	safetyDeadline  = 60 * time.Second
	// safetyExitDeadline covers the run's cleanup after a signal (bench bounds it at 2 minutes, the emulator
	// needs well under a second).
	safetyExitDeadline = 2 * time.Minute
)

// safetyBinDir is created by TestMain; the binary is built there on first use.
var (
	safetyBinDir  string
	safetyBinOnce sync.Once
	safetyBinPath string
	safetyBinErr  error
)

// TestMain owns the temporary directory of the cvatbench binary that the process-level tests run, so the
// binary is built at most once per `go test` and removed afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cvatbench-safety-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "safety tests: temp dir:", err)
		os.Exit(1)
	}
	safetyBinDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// safetyBinary returns the path of a cvatbench binary: $CVATBENCH_BIN (e.g. the Makefile's bin/cvatbench),
// or one built from this module into TestMain's directory.
func safetyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CVATBENCH_BIN"); p != "" {
		return p
	}
	safetyBinOnce.Do(func() {
		out := filepath.Join(safetyBinDir, "cvatbench")
		cmd := exec.Command("go", "build", "-o", out, ".")
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Run(); err != nil {
			safetyBinErr = fmt.Errorf("go build: %v\n%s", err, msg.String())
			return
		}
		safetyBinPath = out
	})
	if safetyBinErr != nil {
		t.Fatal(safetyBinErr)
	}
	return safetyBinPath
}

// safetyEnv is the environment of a child process: the host's, without any CVAT credential, plus extra.
func safetyEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CVAT_USER=") || strings.HasPrefix(kv, "CVAT_PASSWORD=") ||
			strings.HasPrefix(kv, "CVAT_ACCESS_TOKEN=") || strings.HasPrefix(kv, "CVATBENCH_PUSHGATEWAY=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// safetyProc is a started child process with its output collected.
type safetyProc struct {
	cmd    *exec.Cmd
	stdout *safetyBuffer
	stderr *safetyBuffer
	done   chan struct{}
	code   int
}

// safetyBuffer is a bytes.Buffer safe for the writer goroutine of exec and the test reading it.
type safetyBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safetyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safetyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// safetyStart starts the binary with args. stderrTap, if not nil, also receives stderr (the sim's first line).
// The process is killed at the end of the test if it still runs.
func safetyStart(t *testing.T, env []string, stderrTap io.Writer, args ...string) *safetyProc {
	t.Helper()
	p := &safetyProc{cmd: exec.Command(safetyBinary(t), args...), stdout: &safetyBuffer{}, stderr: &safetyBuffer{},
		done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if stderrTap != nil {
		p.cmd.Stderr = io.MultiWriter(p.stderr, stderrTap)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill() // only this test's own child, by pid
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test after deadline.
func (p *safetyProc) wait(t *testing.T, deadline time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(deadline):
		t.Fatalf("%v did not exit within %v; stderr:\n%s", p.cmd.Args, deadline, p.stderr.String())
		return -1
	}
}

// safetyStartSim runs `cvatbench sim` on a free loopback port and returns its base URL from the one line it
// prints once it listens. The emulator is stopped with SIGINT (and must exit 0) at the end of the test.
func safetyStartSim(t *testing.T, args ...string) string {
	t.Helper()
	pr, pw := io.Pipe()
	p := safetyStart(t, safetyEnv(), pw, append([]string{"sim", "--addr", "127.0.0.1:0"}, args...)...)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr) // keep draining: the child must never block on stderr
	}()
	t.Cleanup(func() { pw.Close() })
	var line string
	select {
	case line = <-lines:
	case <-p.done:
		t.Fatalf("sim exited with %d: %s", p.code, p.stderr.String())
	case <-time.After(safetyDeadline):
		t.Fatal("sim printed no listening line")
	}
	base, ok := strings.CutPrefix(line, "cvatsim listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first sim stderr line %q", line)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		if code := p.wait(t, safetyDeadline); code != exitOK {
			t.Errorf("sim exit %d after SIGINT; stderr %q", code, p.stderr.String())
		}
	})
	return base
}

// safetyAPI talks to a (possibly emulated) CVAT as one user: the typed client for set-up, raw GETs to compare
// objects byte for byte.
type safetyAPI struct {
	base string
	key  string // token key of a password login
	c    *cvat.Client
}

func newSafetyAPI(t *testing.T, base, user, password string) *safetyAPI {
	t.Helper()
	ctx := context.Background()
	key, err := cvat.Login(ctx, base, user, password, nil)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key)})
	if err != nil {
		t.Fatal(err)
	}
	return &safetyAPI{base: base, key: key, c: c}
}

// raw returns status and body of GET path.
func (a *safetyAPI) raw(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+a.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// names lists every task, project and webhook the user can see, as "kind id name" strings.
func (a *safetyAPI) names(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	tasks, err := a.c.ListTasks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tasks {
		out = append(out, fmt.Sprintf("task %d %s", x.ID, x.Name))
	}
	projects, err := a.c.ListProjects(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range projects {
		out = append(out, fmt.Sprintf("project %d %s", x.ID, x.Name))
	}
	hooks, err := a.c.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hooks {
		out = append(out, fmt.Sprintf("webhook %d %s", x.ID, x.Description))
	}
	return out
}

// leftovers returns the objects named like cvatbench's (tasks and projects "cvatbench-...", webhooks whose
// description starts with "cvatbench").
func (a *safetyAPI) leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, n := range a.names(t) {
		_, name, _ := strings.Cut(n[strings.Index(n, " ")+1:], " ")
		if strings.HasPrefix(name, "cvatbench") {
			out = append(out, n)
		}
	}
	return out
}

// safetyWaitLines polls path (written by another process) until it holds at least n complete lines.
func safetyWaitLines(t *testing.T, glob string, n int, p *safetyProc) string {
	t.Helper()
	deadline := time.Now().Add(safetyDeadline)
	for {
		if m, _ := filepath.Glob(glob); len(m) == 1 {
			if b, err := os.ReadFile(m[0]); err == nil && bytes.Count(b, []byte("\n")) >= n {
				return m[0]
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%v exited with %d before %s had %d lines; stderr:\n%s", p.cmd.Args, p.code, glob, n, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has fewer than %d lines after %v", glob, n, safetyDeadline)
		}
		time.Sleep(safetyPollEvery)
	}
}

// safetyOneErrorLine checks the error output contract: exactly one line starting "cvatbench:" and no trace.
// Progress lines written with \r and the "results:" line are allowed before it.
func safetyOneErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Fatalf("stderr has a stack trace:\n%s", stderr)
	}
	var errLines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "cvatbench:") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 {
		t.Fatalf("want one cvatbench: line, got %d in:\n%s", len(errLines), stderr)
	}
	return errLines[0]
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
