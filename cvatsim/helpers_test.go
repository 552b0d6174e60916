package cvatsim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// fakeClock is a manual clock: timers fire when Advance passes them. With
// auto set, every AfterFunc advances the clock by its delay at once, so a
// single goroutine's waits add up to simulated time without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	auto   bool
	timers []*fakeTimer
	waits  []time.Duration // every delay asked for, in order
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock(auto bool) *fakeClock {
	c := &fakeClock{now: time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC), auto: auto}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if c.auto {
		c.now = c.now.Add(d)
		go f()
		return func() bool { return false }
	}
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped {
			return false
		}
		t.stopped = true
		c.removeLocked(t)
		return true
	}
}

func (c *fakeClock) removeLocked(t *fakeTimer) {
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return
		}
	}
}

// Advance moves the clock and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.stopped = true
		c.removeLocked(t)
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// BlockUntil waits until n timers are pending.
func (c *fakeClock) BlockUntil(ctx context.Context, n int) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.cond.Wait()
	}
	return nil
}

// env is one emulator behind httptest, wrapped by the schema validator.
type env struct {
	t   testing.TB
	s   *cvatsim.Server
	srv *httptest.Server
	url string
}

func instantProfile(t testing.TB) cvatsim.Profile {
	p, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEnv(t *testing.T, opts cvatsim.Options) *env {
	t.Helper()
	if opts.Profile.Name == "" {
		opts.Profile = instantProfile(t)
	}
	s, err := cvatsim.New(opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	v := schemacheck.Load(t)
	srv := httptest.NewServer(v.Middleware(t, s.Handler()))
	t.Cleanup(func() {
		// The emulator first: its close releases handlers blocked on a fake clock, which would otherwise
		// keep srv.Close waiting forever after a failed test.
		s.Close()
		srv.Close()
	})
	return &env{t: t, s: s, srv: srv, url: srv.URL}
}

// resp is a read response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

const basicAdmin = "Basic YWRtaW46YWRtaW4=" // admin:admin

// do sends a request with Basic admin auth unless hdr sets Authorization
// (an empty value removes it).
func (e *env) do(method, path string, body []byte, hdr map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.cvat+json")
	req.Header.Set("Authorization", basicAdmin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" && k == "Authorization" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) must(want int, r resp) resp {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// createTask creates a task and returns its id.
func (e *env) createTask(spec map[string]any) int {
	e.t.Helper()
	if spec["name"] == nil {
		spec["name"] = "bench"
	}
	r := e.must(201, e.do("POST", "/api/tasks", mustJSON(spec), nil))
	return int(r.obj(e.t)["id"].(float64))
}

// pngImage returns a small PNG of w×h pixels.
func pngImage(w, h int, shade uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{shade, uint8(x), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

type file struct {
	name string
	data []byte
}

func images(n int) []file {
	out := make([]file, n)
	for i := range out {
		out[i] = file{name: fmt.Sprintf("img_%04d.png", i), data: pngImage(8, 6, uint8(i))}
	}
	return out
}

// multipartBody builds fields plus indexed client_files[i].
func multipartBody(fields map[string]string, files []file) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_ = mw.WriteField(k, fields[k])
	}
	for i, f := range files {
		w, _ := mw.CreateFormFile(fmt.Sprintf("client_files[%d]", i), f.name)
		_, _ = w.Write(f.data)
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// uploadSingle attaches files in one multipart request and returns the rq_id.
func (e *env) uploadSingle(taskID int, fields map[string]string, files []file) string {
	e.t.Helper()
	body, ct := multipartBody(fields, files)
	r := e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", taskID), body, map[string]string{"Content-Type": ct}))
	return r.obj(e.t)["rq_id"].(string)
}

func (e *env) waitVisible(taskID int) cvatsim.TaskTimeline {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := e.s.WaitJobsVisible(ctx, taskID)
	if err != nil {
		e.t.Fatal(err)
	}
	return tl
}

// statusRecorder collects OnRequestStatus calls and lets tests wait for one.
type statusRecorder struct {
	mu   sync.Mutex
	cond *sync.Cond
	seq  map[string][]string
}

func newStatusRecorder() *statusRecorder {
	r := &statusRecorder{seq: map[string][]string{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *statusRecorder) hook(rqID, status string) {
	r.mu.Lock()
	r.seq[rqID] = append(r.seq[rqID], status)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// waitFor blocks until rqID has reached status (count times in total).
func (r *statusRecorder) waitFor(t *testing.T, rqID, status string, count int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		n := 0
		for _, s := range r.seq[rqID] {
			if s == status {
				n++
			}
		}
		if n >= count {
			return append([]string(nil), r.seq[rqID]...)
		}
		if ctx.Err() != nil {
			t.Fatalf("request %s never reached %s; saw %v", rqID, status, r.seq[rqID])
		}
		r.cond.Wait()
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
