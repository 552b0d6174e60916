package cvatsim_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image/jpeg"
	"io"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvatsim"
)

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = data
	}
	return out
}

func TestJobChunks(t *testing.T) {
	e := newEnv(t, cvatsim.Options{})
	id := e.createTask(map[string]any{"name": "chunks"})
	imgs := images(5)
	e.uploadSingle(id, map[string]string{"image_quality": "40", "chunk_size": "2"}, imgs)
	job := e.waitVisible(id).JobIDs[0]
	base := fmt.Sprintf("/api/jobs/%d/data", job)

	r := e.must(200, e.do("GET", base+"?type=chunk&index=2&quality=compressed", nil, nil))
	if r.header.Get("Content-Type") != "application/zip" || r.header.Get("X-Checksum") == "" || r.header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("headers %v", r.header)
	}
	files := unzip(t, r.body)
	if len(files) != 1 || files["000000.jpeg"] == nil {
		t.Fatalf("compressed chunk 2 members %v", keys(files))
	}
	if _, err := jpeg.Decode(bytes.NewReader(files["000000.jpeg"])); err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	r = e.must(200, e.do("GET", base+"?type=chunk&index=0&quality=original", nil, nil))
	files = unzip(t, r.body)
	if !bytes.Equal(files["000000.png"], imgs[0].data) || !bytes.Equal(files["000001.png"], imgs[1].data) {
		t.Fatalf("original chunk members %v", keys(files))
	}
	part := e.must(206, e.do("GET", base+"?type=chunk&index=0&quality=original", nil, map[string]string{"Range": "bytes=0-9"}))
	if len(part.body) != 10 {
		t.Fatalf("range body %d bytes", len(part.body))
	}
	tests := []struct {
		name  string
		query string
		body  string
	}{
		{"no type", "?index=0", `["Data type not specified or has wrong value"]`},
		{"bad type", "?type=zip&index=0", `["Data type not specified or has wrong value"]`},
		{"index out of range", "?type=chunk&index=3", `"Invalid chunk number '3'. The chunk number should be in the [0, 2] range"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.must(400, e.do("GET", base+tc.query, nil, nil))
			if string(r.body) != tc.body {
				t.Fatalf("body %s, want %s", r.body, tc.body)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestChunkFirstReadCostsPollSteps(t *testing.T) {
	prof := instantProfile(t)
	prof.ChunkFirstReadPerImage = 20 * time.Millisecond
	prof.ChunkPollStep = 200 * time.Millisecond
	clk := newFakeClock(true)
	e := newEnv(t, cvatsim.Options{Profile: prof, Clock: clk})
	id := e.createTask(map[string]any{"name": "lazy"})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(3))
	job := e.waitVisible(id).JobIDs[0]
	path := fmt.Sprintf("/api/jobs/%d/data?type=chunk&index=0&quality=compressed", job)
	clk.mu.Lock()
	clk.waits = nil
	clk.mu.Unlock()
	e.must(200, e.do("GET", path, nil, nil))
	e.must(200, e.do("GET", path, nil, nil))
	clk.mu.Lock()
	waits := append([]time.Duration(nil), clk.waits...)
	clk.mu.Unlock()
	// 3 images × 20 ms = 60 ms, rounded up to one 200 ms step; the cached
	// second read costs nothing.
	if len(waits) != 1 || waits[0] != 200*time.Millisecond {
		t.Fatalf("waits %v", waits)
	}
}

func TestStaticCacheBuildsChunksDuringCreation(t *testing.T) {
	rec := newStatusRecorder()
	e := newEnv(t, cvatsim.Options{AllowStaticCache: true, OnRequestStatus: rec.hook})
	id := e.createTask(map[string]any{"name": "static", "segment_size": 2})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "90", "use_cache": "false"}, images(3))
	rec.waitFor(t, rq, "finished", 1)
	got, _ := e.request(rq)
	if got.Progress != 1.0 {
		t.Fatalf("progress %v after static chunk building", got.Progress)
	}
	tl, _ := e.s.Timeline(id)
	r := e.must(200, e.do("GET", fmt.Sprintf("/api/jobs/%d/data?type=chunk&index=0", tl.JobIDs[1]), nil, nil))
	if files := unzip(t, r.body); len(files) != 1 {
		t.Fatalf("second job chunk %v", keys(files))
	}
	// use_cache=true keeps creation lazy.
	id2 := e.createTask(map[string]any{"name": "lazy"})
	rq2 := e.uploadSingle(id2, map[string]string{"image_quality": "90", "use_cache": "true"}, images(1))
	rec.waitFor(t, rq2, "finished", 1)
	if got, _ := e.request(rq2); got.Progress != 0 {
		t.Fatalf("progress %v with use_cache", got.Progress)
	}
}
