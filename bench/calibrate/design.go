// Package calibrate measures a CVAT server's timing and fits the emulator's profile to it: a designed
// experiment (Run) writes raw samples, Fit turns them into a profile file with a confidence interval and the
// residual spread of every term it could measure.
package calibrate

import (
	"errors"
	"fmt"
	"time"
)

// Point is one task shape of the sequential phase.
type Point struct {
	Name        string
	Images      int
	SegmentSize int // 0: one job
	Quality     int
}

// Jobs is the number of jobs the point creates.
func (p Point) Jobs() int {
	if p.SegmentSize <= 0 || p.SegmentSize >= p.Images {
		return 1
	}
	return (p.Images + p.SegmentSize - 1) / p.SegmentSize
}

// PreviewFrames is how many frames the task preview encodes: job 0's first chunk (CALIBRATION §5.2).
func (p Point) PreviewFrames(chunkSize int) int {
	n := p.Images
	if p.Jobs() > 1 {
		n = p.SegmentSize
	}
	return min(n, chunkSize)
}

// Design is the experiment. The sequential points separate the terms: 1/10/50 images in one job give the
// per-image slope; 10 one-image jobs against one 10-image job and 10 five-image jobs against one 50-image
// job give the per-job term and, through the different first chunks, the preview term; 50 images in one job
// at three qualities give the preview cost per frame by quality; 50 one-image jobs stretch the range of job
// counts, so the commit's cost per object stands out of the noise of the rest.
type Design struct {
	Points            []Point
	Repeats           int // creations per point, interleaved across points
	VisibilityTrials  int // one-image creations whose jobs listing is polled tightly (commit → finished)
	ExpectedWorkers   int // the concurrent phase runs twice this many creations at once
	ConcurrentRounds  int
	EndpointSamples   int // latency samples per read endpoint
	ImageWidth        int
	ImageHeight       int
	ChunkSize         int // data_chunk_size sent with every upload
	Timeout           time.Duration
	StatusPollPeriod  time.Duration // GET /api/requests/{id} while a creation runs (sequential phase)
	VisibilityPollGap time.Duration // GET /api/jobs gap in the visibility trials
	ClockPings        int
}

// DefaultDesign finishes in about a minute on a default CVAT 2.73 (CALIBRATION §5 timings).
func DefaultDesign() Design {
	return Design{
		Points: []Point{
			{Name: "1img", Images: 1, Quality: 70},
			{Name: "10img", Images: 10, Quality: 70},
			{Name: "50img", Images: 50, Quality: 70},
			{Name: "50img-q10", Images: 50, Quality: 10},
			{Name: "50img-q100", Images: 50, Quality: 100},
			{Name: "10img-10jobs", Images: 10, SegmentSize: 1, Quality: 70},
			{Name: "50img-10jobs", Images: 50, SegmentSize: 5, Quality: 70},
			{Name: "50img-50jobs", Images: 50, SegmentSize: 1, Quality: 70},
		},
		Repeats:           8,
		VisibilityTrials:  16,
		ExpectedWorkers:   2,
		ConcurrentRounds:  8,
		EndpointSamples:   15,
		ImageWidth:        640,
		ImageHeight:       480,
		ChunkSize:         72,
		Timeout:           2 * time.Minute,
		StatusPollPeriod:  50 * time.Millisecond,
		VisibilityPollGap: 5 * time.Millisecond,
		ClockPings:        20,
	}
}

// Validate refuses a design that cannot separate the terms.
func (d Design) Validate() error {
	var errs []error
	if d.Repeats < 3 {
		errs = append(errs, fmt.Errorf("repeats %d: need at least 3 per point", d.Repeats))
	}
	if len(d.Points) < 4 {
		errs = append(errs, fmt.Errorf("%d points: need at least 4 to separate the processing terms", len(d.Points)))
	}
	for _, p := range d.Points {
		if p.Images < 1 || p.Quality < 1 || p.Quality > 100 || p.SegmentSize < 0 {
			errs = append(errs, fmt.Errorf("point %s: images %d, quality %d, segment size %d", p.Name, p.Images, p.Quality, p.SegmentSize))
		}
	}
	if d.ExpectedWorkers < 1 || d.ConcurrentRounds < 1 {
		errs = append(errs, errors.New("the concurrent phase needs at least one expected worker and one round"))
	}
	if d.ImageWidth < 1 || d.ImageHeight < 1 || d.ChunkSize < 1 || d.Timeout <= 0 || d.StatusPollPeriod <= 0 || d.VisibilityPollGap <= 0 {
		errs = append(errs, errors.New("image size, chunk size, timeout and poll periods must be positive"))
	}
	return errors.Join(errs...)
}

// Creations is how many tasks the design creates.
func (d Design) Creations() int {
	return len(d.Points)*d.Repeats + d.VisibilityTrials + 2*d.ExpectedWorkers*d.ConcurrentRounds + 2
}
