package calibrate

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/cvatbench/cvatbench/bench"
)

// Phases of a Creation.
const (
	PhaseSequential = "sequential"
	PhaseVisibility = "visibility"
	PhaseConcurrent = "concurrent"
	PhaseEndpoints  = "endpoints" // the tasks the endpoint samples read
)

// Creation is one task creation of the experiment. Server dates are on the server's clock; VisibleAfter and
// VisibleBefore on the local clock.
type Creation struct {
	Phase         string  `json:"phase"`
	Point         string  `json:"point"`
	Round         int     `json:"round,omitempty"`     // concurrent phase
	InFlight      int     `json:"in_flight,omitempty"` // concurrent phase: creations uploaded at once
	Images        int     `json:"images"`
	SegmentSize   int     `json:"segment_size"`
	Quality       int     `json:"image_quality"`
	PreviewFrames int     `json:"preview_frames"`
	PixelsPerVGA  float64 `json:"pixels_per_vga"` // frame pixels / (640×480)
	UploadBytes   int64   `json:"upload_bytes"`
	TaskID        int     `json:"task_id"`

	CreateMs float64 `json:"create_ms"` // POST /api/tasks, client-side
	UploadMs float64 `json:"upload_ms"` // the upload call(s) until the 202, client-side
	// The three requests of the upload, client-side; zero when one was retried.
	UploadStartMs  float64 `json:"upload_start_ms,omitempty"`
	UploadFilesMs  float64 `json:"upload_files_ms,omitempty"` // Upload-Multiple with every file
	UploadFinishMs float64 `json:"upload_finish_ms,omitempty"`
	DeleteMs       float64 `json:"delete_ms,omitempty"`

	RequestCreated time.Time   `json:"request_created"`
	Started        time.Time   `json:"started"`
	Finished       time.Time   `json:"finished"`
	JobCreated     []time.Time `json:"job_created"` // by job id, ascending

	// Visibility trials: when the last jobs listing that was empty and the first that was not came back
	// (local clock). The server reads the jobs somewhere inside each call; the emulator reads them at the end
	// of its latency, so bracketing by the answers gives the visibility time that makes the emulator's
	// listings see the jobs when the server's did, whatever point of the call the server reads at.
	VisibleAfter  *time.Time `json:"visible_after,omitempty"`
	VisibleBefore *time.Time `json:"visible_before,omitempty"`
	// HookArrivals are the local arrival times of this task's create:job deliveries, when a receiver ran.
	HookArrivals []time.Time `json:"hook_arrivals,omitempty"`
}

// Jobs is the number of jobs the creation made.
func (c Creation) Jobs() int { return len(c.JobCreated) }

// EndpointSample is the client-side latency of one call.
type EndpointSample struct {
	Endpoint string  `json:"endpoint"` // "GET /api/requests/{rq_id}", ...; "basic:" prefix for Basic auth
	Jobs     int     `json:"jobs,omitempty"`
	Ms       float64 `json:"ms"`
}

// Samples is everything the experiment measured: the raw record the fit reads.
type Samples struct {
	Server     string               `json:"server"`  // URL without credentials, or "embedded"
	Version    string               `json:"version"` // GET /api/server/about
	Auth       string               `json:"auth"`
	StartedAt  time.Time            `json:"started_at"`
	FinishedAt time.Time            `json:"finished_at"`
	Design     Design               `json:"design"`
	Clock      *bench.ClockEstimate `json:"clock,omitempty"` // nil: no ping receiver; the offset is taken as 0 ± ClockBound
	ClockNote  string               `json:"clock_note,omitempty"`
	Creations  []Creation           `json:"creations"`
	Endpoints  []EndpointSample     `json:"endpoints"`
	// Overhead is the same calls against an embedded instant emulator: client, loopback and emulator costs.
	Overhead []EndpointSample `json:"overhead"`
}

// WriteJSON writes the samples as one indented JSON document.
func (s *Samples) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	return nil
}

// ReadSamples reads what WriteJSON wrote.
func ReadSamples(r io.Reader) (*Samples, error) {
	var s Samples
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	return &s, nil
}
