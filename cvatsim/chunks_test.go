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

// The first read of a chunk waits for its build: ChunkFirstReadPerImage per 640×480 frame, scaled by pixels,
// rounded up to ChunkPollStep; the next read is cached. Job 0's chunk 0 was built for the task preview
// during creation, so even its first read is warm.
func TestChunkFirstReadCostsPollSteps(t *testing.T) {
	big := make([]file, 5) // 1280×960: 4 VGA frames' worth of pixels each
	for i := range big {
		big[i] = file{name: fmt.Sprintf("img_%04d.png", i), data: pngImage(1280, 960, uint8(i))}
	}
	for _, tc := range []struct {
		step time.Duration
		want time.Duration
	}{
		{0, 160 * time.Millisecond},                      // 2 frames × 4 × 20 ms
		{200 * time.Millisecond, 200 * time.Millisecond}, // rounded up to one poll step
	} {
		prof := instantProfile(t)
		prof.ChunkFirstReadPerImage = 20 * time.Millisecond
		prof.ChunkPollStep = tc.step
		clk := newFakeClock(true)
		e := newEnv(t, cvatsim.Options{Profile: prof, Clock: clk})
		id := e.createTask(map[string]any{"name": "lazy", "segment_size": 2})
		e.uploadSingle(id, map[string]string{"image_quality": "70"}, big)
		jobs := e.waitVisible(id).JobIDs
		read := func(job int) []time.Duration {
			path := fmt.Sprintf("/api/jobs/%d/data?type=chunk&index=0&quality=compressed", job)
			clk.mu.Lock()
			clk.waits = nil
			clk.mu.Unlock()
			e.must(200, e.do("GET", path, nil, nil))
			e.must(200, e.do("GET", path, nil, nil))
			clk.mu.Lock()
			defer clk.mu.Unlock()
			return append([]time.Duration(nil), clk.waits...)
		}
		if w := read(jobs[0]); len(w) != 0 {
			t.Errorf("step %v: job 0's chunk 0, built by the preview, waited %v", tc.step, w)
		}
		if w := read(jobs[1]); len(w) != 1 || w[0] != tc.want {
			t.Errorf("step %v: job 1's chunk 0 waited %v, want [%v] on the first read only", tc.step, w, tc.want)
		}
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
