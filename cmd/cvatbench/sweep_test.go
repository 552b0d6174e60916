package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// photosDir is the photo cache of `make photos` (scripts/photos.sh): CVATBENCH_PHOTOS, else the default path.
// Missing, the test skips with how to get it, or fails under CI, where `make test` fetches it first.
func photosDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CVATBENCH_PHOTOS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "cvatbench", "photos-skimage-0.25.2")
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		msg := "no photographs at " + dir + ": run `make photos` (scripts/photos.sh) or set CVATBENCH_PHOTOS"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// TestQualitySweepOnPhotographs: on real photographs, a sweep's chunks grow and keep more of the picture as
// the quality rises, and --quality-target reads the answer off the same table.
func TestQualitySweepOnPhotographs(t *testing.T) {
	photos := photosDir(t)
	out := t.TempDir()
	code, _, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1",
		"--concurrency", "1", "--images-dir", photos, "--image-quality", "30,50,70,85,95", "--segment-size", "3", "--out", out)
	if code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("results dirs %v", dirs)
	}
	code, js, stderr := cvatbench("report", "--format", "json", dirs[0])
	if code != exitOK {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	var sum struct {
		Quality struct {
			ChunkMode string `json:"chunk_mode"`
			Rows      []struct {
				ImageQuality  int      `json:"image_quality"`
				Frames        int      `json:"frames"`
				ProbeErrors   int      `json:"probe_errors"`
				BytesPerFrame float64  `json:"bytes_per_frame_p50"`
				SSIMP50       float64  `json:"ssim_p50"`
				SSIMWorst     float64  `json:"ssim_worst"`
				PSNRP50       *float64 `json:"psnr_p50_db"`
				ColdP50Ms     *float64 `json:"cold_p50_ms"`
				WarmP50Ms     *float64 `json:"warm_p50_ms"`
			} `json:"rows"`
		} `json:"quality"`
	}
	if err := json.Unmarshal([]byte(js), &sum); err != nil {
		t.Fatalf("report json: %v\n%s", err, js)
	}
	rows := sum.Quality.Rows
	if sum.Quality.ChunkMode != "first" || len(rows) != 5 {
		t.Fatalf("quality summary %+v: want the first-chunk probe on by default in a 5-quality sweep", sum.Quality)
	}
	for i, r := range rows {
		if r.Frames != 3 || r.ProbeErrors != 0 || r.PSNRP50 == nil || r.ColdP50Ms == nil || r.WarmP50Ms == nil {
			t.Errorf("q%d: %+v, want 3 frames scored (job 1 of segment size 3: chelsea, coffee, grass), no probe error", r.ImageQuality, r)
		}
		if i == 0 {
			continue
		}
		p := rows[i-1]
		if !(r.BytesPerFrame > p.BytesPerFrame && r.SSIMP50 > p.SSIMP50 && r.SSIMWorst > p.SSIMWorst && *r.PSNRP50 > *p.PSNRP50) {
			t.Errorf("q%d -> q%d: bytes/frame %.0f -> %.0f, SSIM p50 %.4f -> %.4f, worst %.4f -> %.4f, PSNR %.2f -> %.2f: want all to rise",
				p.ImageQuality, r.ImageQuality, p.BytesPerFrame, r.BytesPerFrame, p.SSIMP50, r.SSIMP50, p.SSIMWorst, r.SSIMWorst, *p.PSNRP50, *r.PSNRP50)
		}
	}
	// The target between q50's and q70's worst frames is met first at q70.
	target := (rows[1].SSIMWorst + rows[2].SSIMWorst) / 2
	code, _, stderr = cvatbench("report", "--quality-target", "ssim>="+jsonFloat(target), dirs[0])
	if code != exitOK || !strings.Contains(stderr, "image_quality 70 is the lowest") || !strings.Contains(stderr, "fewer bytes per frame than q95") {
		t.Errorf("quality target between q50 and q70: exit %d, %s", code, stderr)
	}
	code, _, stderr = cvatbench("report", "--quality-target", "ssim>=0.99999", dirs[0])
	if code != exitThreshold || !strings.Contains(stderr, "no image quality swept meets it") {
		t.Errorf("unreachable quality target: exit %d, %s", code, stderr)
	}
}

func jsonFloat(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSegmentSizeSweep: --segment-size takes several values and sweeps them with the image qualities; every
// table, the JSON and the chunk probe's rows name the cell.
func TestSegmentSizeSweep(t *testing.T) {
	out := t.TempDir()
	code, table, stderr := cvatbench("run", "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1",
		"--concurrency", "1", "--images", "6", "--image-size", "64x48", "--image-quality", "40,80",
		"--segment-size", "2,0", "--out", out)
	if code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr)
	}
	for _, want := range []string{"| segment |", "q40_s0_p50_s", "q80_s2_p50_s", "by image quality (q) and segment size (s)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	code, js, stderr := cvatbench("report", "--format", "json", dirs[0])
	if code != exitOK {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	var sum struct {
		Rows []struct {
			Quality int `json:"image_quality"`
			Segment int `json:"segment_size"`
			N       int `json:"n"`
		} `json:"rows"`
		Quality struct {
			Rows []struct {
				Quality int `json:"image_quality"`
				Segment int `json:"segment_size"`
				Frames  int `json:"frames"`
			} `json:"rows"`
		} `json:"quality"`
	}
	if err := json.Unmarshal([]byte(js), &sum); err != nil {
		t.Fatal(err)
	}
	type cell struct{ q, s int }
	want := []cell{{40, 0}, {40, 2}, {80, 0}, {80, 2}}
	if len(sum.Rows) != 4 || len(sum.Quality.Rows) != 4 {
		t.Fatalf("rows %+v, quality rows %+v: want 4 cells each", sum.Rows, sum.Quality.Rows)
	}
	for i, w := range want {
		r, q := sum.Rows[i], sum.Quality.Rows[i]
		if (cell{r.Quality, r.Segment}) != w || r.N != 1 || (cell{q.Quality, q.Segment}) != w {
			t.Errorf("row %d: %+v / %+v, want cell %+v", i, r, q, w)
		}
		// One job of 6 frames (segment size 0) is read as the preview's chunk; with 2 frames per job, job 1's.
		if wantFrames := map[int]int{0: 6, 2: 2}[w.s]; q.Frames != wantFrames {
			t.Errorf("cell %+v: %d frames scored, want %d", w, q.Frames, wantFrames)
		}
	}
}
