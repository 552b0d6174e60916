package cvatsim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// WhatIf switches on server behaviours that no CVAT release has, so that a client can measure what they
// would save before anyone asks CVAT for them. The zero value is CVAT 2.73.
type WhatIf struct {
	// PreallocJobs: when the server accepts a task's data (the 202 of Upload-Finish or the single request),
	// it inserts the task's job rows at once, with their IDs and frame ranges from segment_size and the
	// uploaded file count, and the import worker fills them in at its commit instead of inserting them. The
	// jobs list of the task is complete right after the 202; the jobs' data (chunks, the task's size) is
	// ready only at the commit, as today. A failed creation removes the rows (CVAT's rollback). create:job
	// deliveries still come at the commit.
	PreallocJobs bool
}

// WhatIfPreallocJobs is the spelling of WhatIf.PreallocJobs in ParseWhatIf.
const WhatIfPreallocJobs = "prealloc-jobs"

// ParseWhatIf parses a comma-separated list of what-ifs ("" for none).
func ParseWhatIf(spec string) (WhatIf, error) {
	var w WhatIf
	for _, name := range strings.Split(spec, ",") {
		switch strings.TrimSpace(name) {
		case "":
		case WhatIfPreallocJobs:
			w.PreallocJobs = true
		default:
			return WhatIf{}, fmt.Errorf("unknown what-if %q (known: %s)", name, WhatIfPreallocJobs)
		}
	}
	return w, nil
}

// String is the canonical spelling ParseWhatIf reads back.
func (w WhatIf) String() string {
	if w.PreallocJobs {
		return WhatIfPreallocJobs
	}
	return ""
}

// plannedJob is one job row the creation will have.
type plannedJob struct {
	typ        string
	seg        segment
	frameCount int
	parent     int // index of the parent in the plan, -1 for none
	replicas   int
}

// planJobs lays out the rows the import worker inserts, in its order (task.py _create_segments_and_jobs):
// per segment an annotation job and its consensus replicas, then the ground-truth job.
func planJobs(segs []segment, replicas int, v *validationParams, frames int) []plannedJob {
	var plan []plannedJob
	for _, sg := range segs {
		parent := len(plan)
		plan = append(plan, plannedJob{typ: "annotation", seg: sg, frameCount: sg.stop - sg.start + 1, parent: -1, replicas: replicas})
		for range replicas {
			plan = append(plan, plannedJob{typ: "consensus_replica", seg: sg, frameCount: sg.stop - sg.start + 1, parent: parent})
		}
	}
	if v != nil {
		n := 1
		switch {
		case v.frameCount > 0:
			n = min(v.frameCount, frames)
		case v.frameShare > 0:
			n = max(1, int(math.Ceil(v.frameShare*float64(frames))))
		}
		plan = append(plan, plannedJob{typ: "ground_truth", seg: segment{0, frames - 1}, frameCount: n, parent: -1})
	}
	return plan
}

// preallocJobsLocked inserts the job rows of t's creation at the data's acceptance (WhatIf.PreallocJobs) and
// returns their ids; nil when the upload already says the creation will fail (no files, a bad mapping, too
// many jobs), which the worker then reports as today. s.mu must be held.
func (s *Server) preallocJobsLocked(t *task, p dataParams, now time.Time) []int {
	frames := 0
	var mapping []int
	if len(p.jobFileMapping) > 0 {
		for _, l := range p.jobFileMapping {
			mapping = append(mapping, len(l))
			frames += len(l)
		}
		if frames != len(t.files) {
			return nil
		}
	} else {
		frames = len(selectFrames(t.files, p))
	}
	if frames == 0 {
		return nil
	}
	segs, _, _ := splitSegments(splitParams{size: frames, segmentSize: t.segSize, overlap: t.overlap, mapping: mapping})
	plan := planJobs(segs, t.replicas, p.validation, frames)
	if len(plan) == 0 || len(plan) > s.opts.MaxJobsPerTask {
		return nil
	}
	rows := make([]*job, len(plan))
	ids := make([]int, len(plan))
	for i, pj := range plan {
		j := &job{id: s.nextID("job"), task: t, typ: pj.typ, start: pj.seg.start, stop: pj.seg.stop,
			frameCount: pj.frameCount, replicas: pj.replicas, created: now.Truncate(time.Microsecond)}
		if pj.parent >= 0 {
			pid := rows[pj.parent].id
			j.parent = &pid
		}
		rows[i], ids[i] = j, j.id
		s.jobs[j.id] = j
	}
	t.prealloc, t.jobIDs = rows, slices.Clone(ids)
	return ids
}

// takePreallocLocked returns the pre-allocated row the commit's k-th job fills in, if it is the same job.
func (t *task) takePreallocLocked(k int, typ string, sg segment) *job {
	if k < len(t.prealloc) && t.prealloc[k].typ == typ && t.prealloc[k].start == sg.start && t.prealloc[k].stop == sg.stop {
		return t.prealloc[k]
	}
	return nil
}

// dropPreallocLocked removes the pre-allocated rows the commit did not fill in (all of them after a failure):
// the creation's transaction rolls them back. keep lists the ids the commit kept.
func (s *Server) dropPreallocLocked(t *task, keep []int) {
	for _, j := range t.prealloc {
		if !slices.Contains(keep, j.id) {
			delete(s.jobs, j.id)
		}
	}
	if keep == nil {
		t.jobIDs = nil
	}
	t.prealloc = nil
}
