package bench_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/report"
)

func probeConfig(t *testing.T) bench.Config {
	cfg := fakeConfig(t)
	cfg.Strategies = []string{"poll"}
	cfg.Concurrency = 1 // one trial at a time: the fake clock's readings within a trial are then deterministic
	cfg.TasksPerStrategy = 2
	cfg.Images = 4 // 2 jobs of 2 frames: the probe reads the second job's chunk 0
	cfg.ImageSize = "64x48"
	cfg.ImageQualities = []int{20, 95}
	return cfg
}

func runFake(t *testing.T, cfg bench.Config, api *fakeAPI, clk *fakeClock) []record.Trial {
	t.Helper()
	run := runFakeSaved(t, cfg, api, clk)
	if len(run.Trials) != cfg.Trials() {
		t.Fatalf("%d trials recorded, want %d", len(run.Trials), cfg.Trials())
	}
	return run.Trials
}

// runFakeSaved runs cfg against the fake server, with extra options, and loads what the run saved.
func runFakeSaved(t *testing.T, cfg bench.Config, api *fakeAPI, clk *fakeClock, extra ...bench.Option) *report.Run {
	t.Helper()
	r, err := bench.New(cfg, append(fakeOptions(api, clk, cfg), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	run, err := report.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestChunkProbeFirstChunkOfASweep(t *testing.T) {
	cfg := probeConfig(t)
	clk := newFakeClock()
	api := newFakeAPI(clk)
	trials := runFake(t, cfg, api, clk)
	if api.chunkReads != 2*len(trials) {
		t.Errorf("%d chunk reads for %d trials, want a cold and a warm read each", api.chunkReads, len(trials))
	}
	ssimAt := map[int]float64{}
	bytesAt := map[int]int64{}
	for _, tr := range trials {
		p := tr.Chunks
		if tr.Result != record.ResultOK || p == nil {
			t.Fatalf("trial %d: result %s, probe %+v", tr.Seq, tr.Result, p)
		}
		if p.Error != "" || p.Mode != record.ChunksFirst || p.ChunksRead != 1 || p.Frames != 2 || p.FirstFrames != 2 ||
			p.ChunkSize != 2 || p.FirstBytes == 0 || int64(p.FirstBytes) != p.Bytes || p.ColdMs == nil || p.WarmMs == nil {
			t.Errorf("trial %d probe %+v", tr.Seq, *p)
		}
		if len(p.SSIM) != 2 || len(p.PSNRdB) != 2 || len(p.MSE) != 2 {
			t.Fatalf("trial %d scored %d/%d/%d frames, want 2", tr.Seq, len(p.SSIM), len(p.PSNRdB), len(p.MSE))
		}
		for i, s := range p.SSIM {
			if s <= 0 || s > 1 || p.PSNRdB[i] == nil || *p.PSNRdB[i] < 10 || p.MSE[i] <= 0 {
				t.Errorf("trial %d frame %d: ssim %v psnr %v mse %v", tr.Seq, i, s, p.PSNRdB[i], p.MSE[i])
			}
		}
		ssimAt[tr.ImageQuality] = p.SSIM[0]
		bytesAt[tr.ImageQuality] = p.Bytes
	}
	if !(ssimAt[95] > ssimAt[20] && bytesAt[95] > bytesAt[20]) {
		t.Errorf("q20: %d bytes, SSIM %.4f; q95: %d bytes, SSIM %.4f: want both higher at q95",
			bytesAt[20], ssimAt[20], bytesAt[95], ssimAt[95])
	}
}

// The probe runs after jobs_obtained_at: with the same seed and one trial at a time, every latency of every
// trial is the same with and without it.
func TestChunkProbeLeavesLatenciesUnchanged(t *testing.T) {
	with := probeConfig(t)
	without := with
	without.Chunks = record.ChunksNone
	clk := newFakeClock()
	a := runFake(t, with, newFakeAPI(clk), clk)
	clk = newFakeClock()
	b := runFake(t, without, newFakeAPI(clk), clk)
	for i := range a {
		if b[i].Chunks != nil {
			t.Fatalf("--chunks none probed trial %d", b[i].Seq)
		}
		if a[i].Chunks == nil {
			t.Fatalf("trial %d not probed", a[i].Seq)
		}
		if *a[i].EndToEndMs != *b[i].EndToEndMs || *a[i].DetectionDelayMs != *b[i].DetectionDelayMs || a[i].Requests != b[i].Requests {
			t.Errorf("trial %d: e2e %v/%v detection %v/%v requests %d/%d with/without the probe", a[i].Seq,
				*a[i].EndToEndMs, *b[i].EndToEndMs, *a[i].DetectionDelayMs, *b[i].DetectionDelayMs, a[i].Requests, b[i].Requests)
		}
	}
}

func TestChunkProbeAllChunks(t *testing.T) {
	cfg := probeConfig(t)
	cfg.Chunks = record.ChunksAll
	cfg.ImageQualities = []int{70}
	cfg.Images = 5 // 3 jobs: 2 + 2 + 1 frames
	clk := newFakeClock()
	api := newFakeAPI(clk)
	trials := runFake(t, cfg, api, clk)
	if api.chunkReads != 4*len(trials) {
		t.Errorf("%d chunk reads for %d trials, want 3 cold and 1 warm each", api.chunkReads, len(trials))
	}
	for _, tr := range trials {
		p := tr.Chunks
		if p == nil || p.Error != "" || p.ChunksRead != 3 || p.Frames != 5 || len(p.SSIM) != 5 || p.FirstFrames != 2 || p.Bytes <= int64(p.FirstBytes) {
			t.Errorf("trial %d probe %+v", tr.Seq, p)
		}
	}
}

func TestChunkProbeErrorsAreRecordedNotFatal(t *testing.T) {
	tests := []struct {
		name  string
		fault func(jobID, index int, data []byte) ([]byte, error)
		want  string
	}{
		{"not a zip", func(int, int, []byte) ([]byte, error) { return []byte("<html>busy</html>"), nil }, "not a zip"},
		{"a frame missing", dropMember, "holds 1 frames, the job's layout says 2"},
		{"a frame that does not decode", corruptMember, "does not decode"},
		{"429 forever", func(int, int, []byte) ([]byte, error) {
			return nil, &cvat.APIError{Method: "GET", Endpoint: "/api/jobs/{id}/data", Status: 429}
		}, "429"},
		{"500", func(int, int, []byte) ([]byte, error) {
			return nil, &cvat.APIError{Method: "GET", Endpoint: "/api/jobs/{id}/data", Status: 500}
		}, "500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := probeConfig(t)
			cfg.TasksPerStrategy = 1
			clk := newFakeClock()
			api := newFakeAPI(clk)
			api.chunkFault = tc.fault
			for _, tr := range runFake(t, cfg, api, clk) {
				if tr.Result != record.ResultOK || tr.Chunks == nil || !strings.Contains(tr.Chunks.Error, tc.want) {
					t.Errorf("trial %d: result %s, probe %+v, want an ok trial whose probe error says %q", tr.Seq, tr.Result, tr.Chunks, tc.want)
				}
			}
			if tc.want == "429" && api.chunkReads != 2*(1+3) { // per trial: the first call and 3 more, 1 s, 2 s, 4 s apart
				t.Errorf("%d chunk calls for 2 trials answered 429, want 8", api.chunkReads)
			}
			if tc.want == "500" && api.chunkReads != 2 {
				t.Errorf("%d chunk calls for 2 trials answered 500, want 2 (no retry)", api.chunkReads)
			}
		})
	}
}

func rewriteZip(t testing.TB, data []byte, edit func(name string, body []byte) []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, _ := f.Open()
		body, _ := io.ReadAll(rc)
		rc.Close()
		if body = edit(f.Name, body); body == nil {
			continue
		}
		w, _ := zw.Create(f.Name)
		_, _ = w.Write(body)
	}
	_ = zw.Close()
	return buf.Bytes()
}

func dropMember(_, _ int, data []byte) ([]byte, error) {
	return rewriteZip(nil, data, func(name string, body []byte) []byte {
		if name == "000001.jpeg" {
			return nil
		}
		return body
	}), nil
}

func corruptMember(_, _ int, data []byte) ([]byte, error) {
	return rewriteZip(nil, data, func(_ string, body []byte) []byte { return body[:len(body)/3] }), nil
}
