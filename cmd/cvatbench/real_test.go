package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/internal/realserver"
	"github.com/cvatbench/cvatbench/report"
	"github.com/cvatbench/cvatbench/strategies"
)

// realArgs are the credential flags for the real server the environment names.
func realArgs(srv realserver.Server) []string {
	if srv.Token != "" {
		return []string{"--url", srv.URL, "--token", srv.Token}
	}
	return []string{"--url", srv.URL, "--user", srv.User, "--password", srv.Password}
}

// TestRealServerEveryStrategy runs every strategy against a real CVAT: no errors, the clock offset from
// pings on a server on this host, both ends of the jobs-visible bracket in every trial, and nothing left.
func TestRealServerEveryStrategy(t *testing.T) {
	srv := realserver.Get(t)
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
	out := t.TempDir()
	args := append([]string{"run", "--strategies", strings.Join(strategies.Defaults(), ","), "--tasks", "2", "--concurrency", "2",
		"--out", out}, realArgs(srv)...)
	code, stdout, stderr := cvatbench(args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	t.Log(stdout)
	if srv.Password != "" && strings.Contains(stdout+stderr, srv.Password) {
		t.Fatal("the password was printed")
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*", "trials.jsonl"))
	if len(dirs) != 1 {
		t.Fatalf("results: %v", dirs)
	}
	b, err := os.ReadFile(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2*len(strategies.Defaults()) {
		t.Fatalf("%d trials, want %d", len(lines), 2*len(strategies.Defaults()))
	}
	for _, l := range lines {
		var rec struct {
			Strategy       string   `json:"strategy"`
			Result         string   `json:"result"`
			VisibleAfter   *string  `json:"jobs_visible_after"`
			VisibleAt      *string  `json:"jobs_visible_at"`
			OffsetErrorMs  *float64 `json:"clock_offset_error_ms"`
			DetectionDelay *float64 `json:"detection_delay_ms"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Result != "ok" || rec.VisibleAfter == nil || rec.VisibleAt == nil || rec.DetectionDelay == nil {
			t.Errorf("trial %s", l)
		}
		if srv.SameHost() && (rec.OffsetErrorMs == nil || *rec.OffsetErrorMs >= 5) {
			t.Errorf("%s: clock offset bound %v ms, want under 5 ms on one host", rec.Strategy, rec.OffsetErrorMs)
		}
	}
	// Nothing of the run is left on the server.
	code, stdout, stderr = cvatbench(append([]string{"cleanup", "--dry-run", "--older-than", "0s"}, realArgs(srv)...)...)
	if code != exitOK || strings.Contains(stdout, filepath.Base(filepath.Dir(dirs[0]))) {
		t.Errorf("cleanup --dry-run exit %d lists this run's objects:\n%s%s", code, stdout, stderr)
	}
}

// TestRealServerCalibrate calibrates a real CVAT with a short design: every measurable term fitted, a file
// that run accepts.
func TestRealServerCalibrate(t *testing.T) {
	srv := realserver.Get(t)
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
	out := filepath.Join(t.TempDir(), "real.json")
	code, stdout, stderr := cvatbench(append([]string{"calibrate", "--repeats", "3", "--out", out}, realArgs(srv)...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Log(stdout)
	if secret := srv.Password + srv.Token; secret != "" {
		files, _ := os.ReadFile(out)
		samples, _ := os.ReadFile(out + ".samples.json")
		if strings.Contains(stdout+stderr+string(files)+string(samples), secret) {
			t.Fatal("a credential is in calibrate's output or files")
		}
	}
	pf := readProfile(t, out)
	if pf.Server == nil || !strings.HasPrefix(pf.Server.Version, "2.") {
		t.Errorf("server %+v", pf.Server)
	}
	measured := map[string]bool{}
	for _, fit := range pf.Fit {
		measured[fit.Term] = fit.Measured
	}
	for _, term := range []string{"pickup", "processing", "per_image", "per_job", "jobs_to_commit", "preview_per_frame[70]",
		"import_workers", "concurrency_stretch", "api_read", "api_write", "delete_per_job"} {
		if !measured[term] {
			t.Errorf("%s not measured", term)
		}
	}
	if code, _, stderr := cvatbench("run", "--sim-profile", out, "--strategies", "poll", "--tasks", "2", "--concurrency", "1", "--out", t.TempDir()); code != exitOK {
		t.Errorf("run with the calibrated profile: %s", stderr)
	}
}

// TestRealServerQualitySweep sweeps two qualities and two segment sizes on a real CVAT with the photographs:
// every probe reads and scores its chunk (the endpoint and answers CVAT 2.73 gives), the chunks of q90 are
// larger and keep more than those of q30, and the first job's chunk, which the task preview built, reads
// warm on its first read.
func TestRealServerQualitySweep(t *testing.T) {
	srv := realserver.Get(t)
	photos := photosDir(t)
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
	out := t.TempDir()
	args := append([]string{"run", "--strategies", "poll", "--tasks", "2", "--concurrency", "1", "--images-dir", photos,
		"--image-quality", "30,90", "--segment-size", "0,5", "--out", out}, realArgs(srv)...)
	code, stdout, stderr := cvatbench(args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	t.Log(stdout)
	files, _ := filepath.Glob(filepath.Join(out, "*", "trials.jsonl"))
	if len(files) != 1 {
		t.Fatalf("results: %v", files)
	}
	run, err := report.Load(filepath.Dir(files[0]))
	if err != nil {
		t.Fatal(err)
	}
	byCell := map[[2]int][]record.ChunkProbe{}
	for _, rec := range run.Trials {
		if rec.Result != record.ResultOK || rec.Chunks == nil || rec.Chunks.Error != "" || rec.Chunks.ColdMs == nil || rec.Chunks.WarmMs == nil {
			t.Fatalf("trial %d: %s, probe %+v", rec.Seq, rec.Result, rec.Chunks)
		}
		p := *rec.Chunks
		if want := map[int]int{0: 10, 5: 5}[rec.SegmentSize]; p.Frames != want || len(p.SSIM) != want || p.PreviewBuilt != (rec.SegmentSize == 0) {
			t.Errorf("q%d s%d: %d frames scored of %d, preview built %v", rec.ImageQuality, rec.SegmentSize, len(p.SSIM), p.Frames, p.PreviewBuilt)
		}
		cell := [2]int{rec.ImageQuality, rec.SegmentSize}
		byCell[cell] = append(byCell[cell], p)
	}
	for _, seg := range []int{0, 5} {
		lo, hi := byCell[[2]int{30, seg}], byCell[[2]int{90, seg}]
		if len(lo) != 2 || len(hi) != 2 {
			t.Fatalf("segment %d: %d and %d probes", seg, len(lo), len(hi))
		}
		if !(hi[0].Bytes > lo[0].Bytes && slices.Min(hi[0].SSIM) > slices.Min(lo[0].SSIM)) {
			t.Errorf("segment %d: q30 %d bytes, worst SSIM %.4f; q90 %d bytes, worst %.4f", seg, lo[0].Bytes,
				slices.Min(lo[0].SSIM), hi[0].Bytes, slices.Min(hi[0].SSIM))
		}
	}
	// The preview's chunk is cached during creation: its first read is not a build, which waits at least one
	// of CVAT's 0.2 s checks.
	for _, p := range append(byCell[[2]int{30, 0}], byCell[[2]int{90, 0}]...) {
		if *p.ColdMs >= 200 && *p.ColdMs > 2**p.WarmMs {
			t.Errorf("preview-built chunk: cold %.0f ms, warm %.0f ms", *p.ColdMs, *p.WarmMs)
		}
	}
}

// TestRealServerBatch waits for batches on a real CVAT with the project-level strategies and per-task poll:
// the server answers the project_id filters of /api/jobs and /api/requests, every task completes, the
// project-level requests are a share per task, and the batch projects and webhooks are gone afterwards.
func TestRealServerBatch(t *testing.T) {
	srv := realserver.Get(t)
	t.Setenv("CVAT_USER", "")
	t.Setenv("CVAT_PASSWORD", "")
	t.Setenv("CVAT_ACCESS_TOKEN", "")
	out := t.TempDir()
	args := append([]string{"run", "--strategies", "project-poll,project-webhook,poll", "--batch", "4", "--tasks", "4",
		"--images", "1", "--concurrency", "1", "--safety-poll", "2s", "--out", out}, realArgs(srv)...)
	code, stdout, stderr := cvatbench(args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	t.Log(stdout)
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	run, err := report.Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range run.Trials {
		if tr.Result != record.ResultOK || tr.Batch == 0 || tr.BatchMakespanMs == nil {
			t.Errorf("trial %d %s: %s %s batch %d", tr.Seq, tr.Strategy, tr.Result, tr.Error, tr.Batch)
		}
		if projectLevel := tr.Strategy != "poll"; projectLevel != (tr.RequestsShare != nil) {
			t.Errorf("%s: requests share %v", tr.Strategy, tr.RequestsShare)
		}
	}
	code, stdout, stderr = cvatbench(append([]string{"cleanup", "--dry-run", "--older-than", "0s"}, realArgs(srv)...)...)
	if code != exitOK || strings.Contains(stdout, run.Meta.RunID) {
		t.Errorf("cleanup --dry-run exit %d lists this run's objects:\n%s%s", code, stdout, stderr)
	}
}
