package strategies_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
	"github.com/cvatbench/cvatbench/strategies"
)

func tinyPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 6))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	img.Set(0, 0, color.Gray{Y: 255 - shade})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestStrategiesAgainstEmulator runs every strategy through the real client against the emulator's instant
// profile and compares the job IDs with the emulator's ground truth. Waiting strategies get the auto clock
// (their pauses cost nothing, so they poll the emulator back to back); webhook gets a clock whose safety poll
// never fires, so only a delivery can end its wait.
func TestStrategiesAgainstEmulator(t *testing.T) {
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cvatsim.New(cvatsim.Options{Profile: prof, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	hs := httptest.NewServer(schemacheck.Load(t).Middleware(t, sim.Handler())) // every response checked against CVAT's schema
	defer hs.Close()
	c, err := cvat.New(cvat.Config{BaseURL: hs.URL, Auth: cvat.Basic(cvatsim.DefaultUsername, cvatsim.DefaultPassword)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proj, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: "strategies-e2e", Labels: []cvat.Label{{Name: "car"}}})
	if err != nil {
		t.Fatal(err)
	}
	files := make([]cvat.File, 5)
	for i := range files {
		files[i] = cvat.File{Name: fmt.Sprintf("%d.png", i), Data: tinyPNG(t, uint8(40*i))}
	}
	for _, name := range strategies.Defaults() {
		t.Run(name, func(t *testing.T) {
			s, err := strategies.New(name, strategies.DefaultParams())
			if err != nil {
				t.Fatal(err)
			}
			clk := newAutoClock()
			if p, ok := s.(strategies.Preparer); ok {
				clk = newManualClock()
				if err := p.Prepare(ctx, c, proj.ID); err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				defer func() {
					if err := p.Close(context.Background()); err != nil {
						t.Errorf("Close: %v", err)
					}
				}()
			}
			task, err := c.CreateTask(ctx, cvat.TaskSpec{Name: "e2e-" + name, ProjectID: &proj.ID, SegmentSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			rqID, err := c.UploadData(ctx, task.ID, cvat.DataSpec{ImageQuality: 70}, files, cvat.UploadSDK)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Wait(ctx, c, clk, strategies.Trial{TaskID: task.ID, RqID: rqID, ProjectID: proj.ID,
				Images: len(files), UploadedAt: clk.Now()})
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			truth, err := sim.WaitJobsVisible(ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(truth.JobIDs, out.JobIDs); diff != "" || len(out.JobIDs) != 3 {
				t.Errorf("JobIDs (-emulator +strategy):\n%s", diff)
			}
			// A delivery ended the wait, not the safety poll: the first create:job, or completed:request when
			// both were in before Wait looked.
			if name == "webhook" && out.Signal != "webhook:first-job" && out.Signal != "webhook:completed:request" {
				t.Errorf("webhook signal %q", out.Signal)
			}
		})
	}
}
