package calibrate_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench/calibrate"
	"github.com/cvatbench/cvatbench/cvatsim"
)

// syntheticSamples builds an experiment's samples with scale times the default design's creations, from
// a simple model of a server, so the fit's cost can be measured against the number of samples.
func syntheticSamples(scale int) *calibrate.Samples {
	rng := rand.New(rand.NewPCG(1, 2))
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	noise := func(v float64) float64 { return v * (1 + 0.2*rng.NormFloat64()*0.5) }
	d := calibrate.DefaultDesign()
	s := &calibrate.Samples{Server: "synthetic", Design: d}
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	at := t0
	add := func(phase string, p calibrate.Point, inFlight int) {
		created := at
		started := created.Add(ms(noise(15)))
		c := calibrate.Creation{Phase: phase, Point: p.Name, Images: p.Images, SegmentSize: p.SegmentSize, Quality: p.Quality,
			PreviewFrames: p.PreviewFrames(d.ChunkSize), PixelsPerVGA: 1, UploadBytes: int64(p.Images) * 100_000, InFlight: inFlight,
			CreateMs: noise(45), UploadMs: noise(110), UploadStartMs: noise(35), UploadFilesMs: noise(30) + 0.6*float64(p.Images),
			UploadFinishMs: noise(45), DeleteMs: noise(40) + 14*float64(p.Jobs()), RequestCreated: created, Started: started}
		j := started.Add(ms(noise(25) + 0.15*float64(p.Images)))
		for range p.Jobs() {
			j = j.Add(ms(14))
			c.JobCreated = append(c.JobCreated, j)
		}
		c.Finished = j.Add(ms(noise(90) + 5.5*float64(c.PreviewFrames) + 2.5*float64(p.Jobs()+2)))
		if phase == calibrate.PhaseVisibility {
			after, before := c.Finished.Add(ms(10)), c.Finished.Add(ms(40))
			c.VisibleAfter, c.VisibleBefore = &after, &before
		}
		s.Creations = append(s.Creations, c)
		if inFlight == 0 {
			at = c.Finished.Add(ms(50))
		}
	}
	for range scale {
		for range d.Repeats {
			for _, p := range d.Points {
				add(calibrate.PhaseSequential, p, 0)
			}
		}
		for range d.VisibilityTrials {
			add(calibrate.PhaseVisibility, calibrate.Point{Name: "1img", Images: 1, Quality: 70}, 0)
		}
		for range d.ConcurrentRounds {
			for i := range 4 {
				at = at.Add(ms(float64(i)))
				add(calibrate.PhaseConcurrent, calibrate.Point{Name: "1img", Images: 1, Quality: 70}, 4)
			}
			at = at.Add(time.Second)
		}
		for range d.EndpointSamples {
			for _, e := range []calibrate.EndpointSample{{Endpoint: "GET /api/requests/{rq_id}"}, {Endpoint: "GET /api/jobs", Jobs: 1},
				{Endpoint: "GET /api/jobs", Jobs: 10}, {Endpoint: "GET /api/tasks/{id}"}} {
				e.Ms = noise(28) + 0.6*float64(e.Jobs)
				s.Endpoints = append(s.Endpoints, e)
			}
		}
	}
	return s
}

// BenchmarkFit shows the fit's cost against the number of samples: 1, 10 and 100 times the default
// experiment's; linear means ns/op grows by about 10× per step.
func BenchmarkFit(b *testing.B) {
	base, _ := cvatsim.LookupProfile("cvat-default")
	for _, scale := range []int{1, 10, 100} {
		s := syntheticSamples(scale)
		b.Run(fmt.Sprintf("creations=%d", len(s.Creations)), func(b *testing.B) {
			for b.Loop() {
				if _, err := calibrate.Fit(s, base, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
