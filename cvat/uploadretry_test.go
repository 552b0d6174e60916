package cvat_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// stepFault breaks the n-th call (1-based) of one upload step, recognized by its Upload-* header ("" for a
// data POST without one). Before the handler: answer 502 as nginx does, so nothing happened. Lost: let the
// emulator act, then drop the connection instead of answering, as when a proxy or the network fails late.
type stepFault struct {
	step string
	nth  int
	lost bool
}

// faultyEmulator serves the instant-profile emulator behind one stepFault and counts the data POSTs that
// reached the emulator, by step.
type faultyEmulator struct {
	sim     http.Handler
	fault   stepFault
	mu      sync.Mutex
	seen    map[string]int // data POSTs by step, including the faulted one
	reached map[string]int // data POSTs the emulator handled
}

func dataStep(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/data/") {
		return "", false
	}
	for _, h := range []string{"Upload-Finish", "Upload-Start", "Upload-Multiple"} {
		if _, ok := r.Header[h]; ok {
			return h, true
		}
	}
	return "", true
}

func (f *faultyEmulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	step, isData := dataStep(r)
	if !isData {
		f.sim.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.seen[step]++
	hit := step == f.fault.step && f.seen[step] == f.fault.nth
	if !hit || f.fault.lost {
		f.reached[step]++
	}
	f.mu.Unlock()
	switch {
	case !hit:
		f.sim.ServeHTTP(w, r)
	case f.fault.lost:
		f.sim.ServeHTTP(httptest.NewRecorder(), r) // the effect happens, the answer is lost
		panic(http.ErrAbortHandler)
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><center><h1>502 Bad Gateway</h1></center></body></html>"))
	}
}

func uploadThroughFault(t *testing.T, mode cvat.UploadMode, fault stepFault, files []cvat.File) (*faultyEmulator, *cvat.Client, int, string, error) {
	t.Helper()
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cvatsim.New(cvatsim.Options{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	// The schema check sits between the faults and the emulator: the 502 pages stand for nginx, not CVAT.
	fe := &faultyEmulator{sim: schemacheck.Load(t).Middleware(t, sim.Handler()), fault: fault, seen: map[string]int{}, reached: map[string]int{}}
	c, _ := newClient(t, fe, false, func(cfg *cvat.Config) { cfg.Auth = cvat.Basic("admin", "admin") })
	ctx := context.Background()
	task, err := c.CreateTask(ctx, cvat.TaskSpec{Name: "retry", Labels: []cvat.Label{{Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.UploadData(ctx, task.ID, cvat.DataSpec{ImageQuality: 70}, files, mode)
	return fe, c, task.ID, id, err
}

func retryFiles(t *testing.T) []cvat.File {
	img := image.NewRGBA(image.Rect(0, 0, 8, 6))
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return []cvat.File{{Name: "a.png", Data: b.Bytes()}, {Name: "b.png", Data: b.Bytes()}}
}

// TestUploadStepsResentSafely: every upload step rides out one failure. A failure before the handler is
// resent; a lost answer to the step that creates the request is resolved by finding that request, so it is
// never created twice; a lost answer to a batch makes the resend fail whole (CVAT's unique file rows), so no
// file is stored twice and the call fails instead of creating a wrong task.
func TestUploadStepsResentSafely(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mode        cvat.UploadMode
		fault       stepFault
		wantErr     string
		wantReached map[string]int
	}{
		{"start 502", cvat.UploadSDK, stepFault{step: "Upload-Start", nth: 1}, "",
			map[string]int{"Upload-Start": 1, "Upload-Multiple": 1, "Upload-Finish": 1}},
		{"batch 502", cvat.UploadSDK, stepFault{step: "Upload-Multiple", nth: 1}, "",
			map[string]int{"Upload-Start": 1, "Upload-Multiple": 1, "Upload-Finish": 1}},
		{"finish 502", cvat.UploadSDK, stepFault{step: "Upload-Finish", nth: 1}, "",
			map[string]int{"Upload-Start": 1, "Upload-Multiple": 1, "Upload-Finish": 1}},
		{"finish answer lost", cvat.UploadSDK, stepFault{step: "Upload-Finish", nth: 1, lost: true}, "",
			map[string]int{"Upload-Start": 1, "Upload-Multiple": 1, "Upload-Finish": 1}},
		{"single 502", cvat.UploadSingle, stepFault{step: "", nth: 1}, "", map[string]int{"": 1}},
		{"single answer lost", cvat.UploadSingle, stepFault{step: "", nth: 1, lost: true}, "", map[string]int{"": 1}},
		{"batch answer lost", cvat.UploadSDK, stepFault{step: "Upload-Multiple", nth: 1, lost: true},
			"upload batch of 2 files: POST /api/tasks/{id}/data: 500",
			map[string]int{"Upload-Start": 1, "Upload-Multiple": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe, c, taskID, id, err := uploadThroughFault(t, tc.mode, tc.fault, retryFiles(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UploadData error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("UploadData: %v", err)
			}
			fe.mu.Lock()
			reached := fe.reached
			fe.mu.Unlock()
			for step, n := range tc.wantReached {
				if reached[step] != n {
					t.Errorf("%q calls the emulator handled = %d, want %d (all: %v)", step, reached[step], n, reached)
				}
			}
			if tc.wantErr != "" {
				return
			}
			want := "action=create&target=task&target_id=" + strconv.Itoa(taskID)
			if id != want {
				t.Errorf("rq_id = %q, want %q", id, want)
			}
			rs, err := c.ListRequests(context.Background(), cvat.RequestFilter{Action: "create", Target: "task", TaskID: taskID})
			if err != nil || len(rs) != 1 {
				t.Fatalf("creation requests = %d (%v), want 1", len(rs), err)
			}
			req, err := c.GetRequest(context.Background(), id)
			for err == nil && req.Status != cvat.StatusFinished && req.Status != cvat.StatusFailed {
				req, err = c.GetRequest(context.Background(), id) // the instant profile finishes within a few reads
			}
			if err != nil || req.Status != cvat.StatusFinished {
				t.Fatalf("request = %+v, %v; want finished", req, err)
			}
			task, err := c.GetTask(context.Background(), taskID)
			if err != nil || task.Size == nil || *task.Size != 2 {
				t.Errorf("task size = %v (%v), want 2: a file was lost or stored twice", task.Size, err)
			}
		})
	}
}

// TestUploadResendGivesUp: a step that keeps failing is tried MaxAttempts times, then reported.
func TestUploadResendGivesUp(t *testing.T) {
	var posts int
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := dataStep(r); ok {
			posts++
		}
		writeJSON(w, http.StatusServiceUnavailable, `"Service unavailable"`)
	})
	c, _ := newClient(t, h, false, nil)
	_, err := c.UploadData(context.Background(), 7, cvat.DataSpec{ImageQuality: 70}, retryFiles(t), cvat.UploadSDK)
	var apiErr *cvat.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Fatalf("error = %v, want the 503", err)
	}
	if posts != cvat.DefaultMaxAttempts {
		t.Errorf("Upload-Start sent %d times, want %d", posts, cvat.DefaultMaxAttempts)
	}
}
