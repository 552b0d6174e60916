package cvatsim

import (
	"bytes"
	"fmt"
	"image"
	_ "image/gif"  // GIF headers
	_ "image/jpeg" // JPEG headers and decoding
	_ "image/png"  // PNG headers
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	_ "golang.org/x/image/bmp"  // BMP, accepted by CVAT
	_ "golang.org/x/image/tiff" // TIFF, accepted by CVAT
	_ "golang.org/x/image/webp" // WebP, accepted by CVAT
)

// importWorker is one RQ worker of the import queue: it takes requests in
// FIFO order; with OneRunningJobPerUser a user's later requests wait for the
// earlier one (RQ depends_on, shown as queued).
func (s *Server) importWorker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var rq *request
		for {
			if s.closed {
				s.mu.Unlock()
				return
			}
			if rq = s.takeLocked(); rq != nil {
				break
			}
			s.queueCond.Wait()
		}
		s.running[rq.owner.id]++
		s.mu.Unlock()

		if rq.background {
			s.processBackground(rq)
		} else {
			s.process(rq)
		}

		s.mu.Lock()
		s.running[rq.owner.id]--
		s.queueCond.Broadcast()
		s.mu.Unlock()
	}
}

// takeLocked removes and returns the first runnable queued request.
func (s *Server) takeLocked() *request {
	for i, rq := range s.queue {
		if s.opts.OneRunningJobPerUser && s.running[rq.owner.id] > 0 {
			continue
		}
		s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
		return rq
	}
	return nil
}

// unlockAndNotify releases s.mu and calls the OnRequestStatus hook. notifyMu
// is taken before s.mu is released, so hooks see status changes in the order
// they happened (a worker cannot report "started" before the upload handler
// has reported "queued"), while no hook ever runs under s.mu.
func (s *Server) unlockAndNotify(rqID, status string) {
	s.notifyMu.Lock()
	s.mu.Unlock()
	defer s.notifyMu.Unlock()
	s.opts.Logf("cvatsim: request %s %s", rqID, status)
	if f := s.opts.OnRequestStatus; f != nil {
		f(rqID, status)
	}
}

// errClosed marks processing cut short by Close.
var errClosed = fmt.Errorf("cvatsim: server closed")

// process runs initialize_task for one request (API.md §9.2) and records the
// ground-truth timeline. Failures end the request as failed with a
// CVAT-formatted message.
func (s *Server) process(rq *request) {
	defer func() {
		// A bug in the emulator must not take the process down: the request
		// fails like an unexpected exception in the RQ job would.
		if v := recover(); v != nil {
			s.opts.Logf("cvatsim: panic processing %s: %v", rq.id, v)
			s.fail(rq, fmt.Sprintf("RuntimeError: %v\n", v))
		}
	}()
	ctx := s.ctx
	// Pick-up: the RQ worker forks a child that opens a DB connection.
	if s.wait(ctx, s.prof.PickUp.sample(s.rng)) != nil {
		return
	}
	stretch := s.startProcessing()
	defer s.endProcessing()
	now := s.now()
	s.mu.Lock()
	t := rq.task
	rq.status, rq.started, rq.message = stStarted, now, "Media files are being extracted..."
	tl := s.tls[t.id]
	tl.started = now
	deleted := t.deleted
	files := append([]clientFile(nil), t.files...)
	dataID := t.dataID
	s.unlockAndNotify(rq.id, stStarted)

	if deleted {
		s.fail(rq, "cvat.apps.engine.models.Task.DoesNotExist: Task matching query does not exist.\n")
		return
	}
	if s.faults.hit("procfail", func(f Faults) float64 { return f.ProcFail }) {
		s.opts.Logf("cvatsim: fault procfail %s", rq.id)
		s.fail(rq, procFailMessage)
		return
	}
	if s.wait(ctx, stretch.times(s.prof.Processing.sample(s.rng))) != nil {
		return
	}
	p := rq.params
	if len(p.serverFiles) > 0 || len(p.remoteFiles) > 0 {
		s.fail(rq, validationMsg("The emulator supports only client_files; server_files and remote_files are not available"))
		return
	}
	if p.imageQuality == nil {
		s.fail(rq, validationMsg("The 'image_quality' parameter is required for image- and video-based tasks"))
		return
	}
	if len(files) == 0 {
		s.fail(rq, validationMsg("No media data found"))
		return
	}
	ordered, mapping, msg := s.orderFiles(files, p)
	if msg != "" {
		s.fail(rq, msg)
		return
	}
	ordered = selectFrames(ordered, p)
	if len(ordered) == 0 {
		s.fail(rq, validationMsg("No media data found"))
		return
	}
	// Read every image header, one after another (API.md §9.2 step 7).
	frames := make([]frame, len(ordered))
	for i, f := range ordered {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(f.data))
		if err != nil {
			s.fail(rq, fmt.Sprintf("PIL.UnidentifiedImageError: cannot identify image file '/home/django/data/data/%d/raw/%s'\n", dataID, f.name))
			return
		}
		frames[i] = frame{name: f.name, ext: strings.TrimPrefix(strings.ToLower(path.Ext(f.name)), "."), data: f.data, w: cfg.Width, h: cfg.Height}
	}
	if s.wait(ctx, stretch.times(s.prof.PerImage*timeMul(len(frames)))) != nil {
		return
	}

	s.mu.Lock()
	sp := splitParams{size: len(frames), segmentSize: t.segSize, overlap: t.overlap, mapping: mapping}
	replicas := t.replicas
	s.mu.Unlock()
	nJobs := segmentCount(sp) * (1 + replicas)
	if p.validation != nil {
		nJobs++
	}
	if nJobs > s.opts.MaxJobsPerTask {
		s.fail(rq, fmt.Sprintf("ValueError: Too many jobs would be created for the task (%d), the maximum allowed number is %d. Please try to increase the segment size or reduce the number of consensus replicas.\n", nJobs, s.opts.MaxJobsPerTask))
		return
	}
	segs, seg, ovl := splitSegments(sp)
	chunkSize := defaultChunkSize(frames[0].w, frames[0].h)
	if p.chunkSize != nil && *p.chunkSize > 0 {
		chunkSize = *p.chunkSize
	}
	s.mu.Lock()
	rq.message = "Task is being saved in database"
	s.mu.Unlock()
	// The job rows are inserted one after another; each is stamped when its insert ends, well before the
	// commit that makes them visible (CALIBRATION §5.3).
	jobsStart := s.now()
	perJob := stretch.times(s.prof.PerJob)
	if s.wait(ctx, perJob*timeMul(nJobs)) != nil {
		return
	}
	jobStamp := func(i int) time.Time { return jobsStart.Add(perJob * timeMul(i+1)).Truncate(time.Microsecond) }

	// Static chunks: only with static cache allowed and use_cache=false
	// (API.md §9.7); every chunk is really JPEG-encoded.
	var static staticChunks
	if s.opts.AllowStaticCache && !p.useCache {
		var err error
		static, err = s.buildStaticChunks(rq, frames, segs, chunkSize, *p.imageQuality)
		if err != nil {
			s.fail(rq, err.Error())
			return
		}
		if s.wait(ctx, stretch.times(s.prof.StaticChunkPerImage*timeMul(len(frames)))) != nil {
			return
		}
	}
	// The emulator's own JPEG encoding is slower than CVAT's: done now, in the background, it does not add to the
	// modelled build time of the first chunk reads (encode.go). Only an optimisation of timing, the bytes are
	// the same either way; skipped under the race detector, which makes Go's JPEG code 20× slower.
	if (!s.opts.AllowStaticCache || p.useCache) && !raceDetector {
		go s.jpegs.warm(frames, *p.imageQuality)
	}
	// The task preview: frame 0 of job 0's compressed chunk, which encodes that whole chunk at image_quality
	// (cvat/apps/engine/cache.py _prepare_segment_preview; CALIBRATION §5.2); then the task saves and signal
	// handlers up to the commit.
	if s.wait(ctx, stretch.times(previewCost(s.prof.PreviewPerFrame, *p.imageQuality, frames, segs, chunkSize))) != nil {
		return
	}
	if s.wait(ctx, stretch.times(s.prof.JobsToCommit.sample(s.rng))) != nil {
		return
	}

	// The commit: every job, the task fields and the webhook enqueues at once.
	now = s.now()
	s.mu.Lock()
	if t.deleted || s.closed {
		s.mu.Unlock()
		s.fail(rq, "cvat.apps.engine.models.Task.DoesNotExist: Task matching query does not exist.\n")
		return
	}
	wrc := renderCtx{worker: true}
	sender := workerSender(rq.owner)
	var jobIDs []int
	preallocated := len(t.prealloc) > 0
	newJob := func(typ string, sg segment, frameCount int, parent *int, reps int) *job {
		j := t.takePreallocLocked(len(jobIDs), typ, sg)
		if j != nil { // WhatIf.PreallocJobs: fill in the row the acceptance inserted
			j.frameCount, j.parent, j.replicas = frameCount, parent, reps
		} else {
			j = &job{id: s.nextID("job"), task: t, typ: typ, start: sg.start, stop: sg.stop, frameCount: frameCount,
				parent: parent, replicas: reps, created: jobStamp(len(jobIDs))}
		}
		s.jobs[j.id] = j
		jobIDs = append(jobIDs, j.id)
		t.jobIDs = jobIDs
		s.emitResourceLocked("create:job", t.project, t.org, "job", s.renderJob(j, wrc), sender)
		return j
	}
	beforeOverlap := intOrNil(t.overlap)
	beforeSeg := t.segSize
	t.chunkSize = chunkSize // data_chunk_size stays null in the payloads (worker render)
	for si, sg := range segs {
		a := newJob("annotation", sg, sg.stop-sg.start+1, nil, replicas)
		static.storeLocked(s, t.id, si, a.id)
		if si == 0 && static == nil {
			// The preview above read frame 0 of this chunk, so CVAT's cache holds it: its first read is warm
			// (measured on CVAT 2.73.0: 48 ms, the next read 46 ms).
			s.previewChunkLocked(t.id, a.id)
		}
		for r := 0; r < replicas; r++ {
			pid := a.id
			rj := newJob("consensus_replica", sg, sg.stop-sg.start+1, &pid, 0)
			static.storeLocked(s, t.id, si, rj.id)
		}
	}
	if v := p.validation; v != nil {
		n := 1
		switch {
		case v.frameCount > 0:
			n = min(v.frameCount, len(frames))
		case v.frameShare > 0:
			n = max(1, int(math.Ceil(v.frameShare*float64(len(frames)))))
		}
		newJob("ground_truth", segment{0, len(frames) - 1}, n, nil, 0)
	}
	if preallocated {
		s.dropPreallocLocked(t, jobIDs)
		t.jobIDs = jobIDs
	}
	t.initialized = true
	t.size = len(frames)
	t.imageQuality = *p.imageQuality
	t.frames = frames
	t.files = nil // the frames hold what is kept of the upload; files left out by a frame filter go
	t.staticChunks = static != nil
	t.segSize, t.overlap = seg, &ovl
	t.updated = now
	changes := obj{
		{"media_type", obj{{"from", ""}, {"to", "image"}}},
		{"mode", obj{{"from", ""}, {"to", "annotation"}}},
		{"dimension", obj{{"from", ""}, {"to", "2d"}}},
		{"overlap", obj{{"from", beforeOverlap}, {"to", ovl}}},
	}
	before := obj{{"media_type", ""}, {"mode", ""}, {"dimension", ""}, {"overlap", beforeOverlap}}
	if beforeSeg != seg {
		changes = append(changes, kv{"segment_size", obj{{"from", beforeSeg}, {"to", seg}}})
		before = append(before, kv{"segment_size", beforeSeg})
	}
	s.emitUpdateLocked("update:task", t.project, t.org, "task", s.renderTask(t, wrc), before, changes, sender)
	if !preallocated || !slices.Equal(tl.jobIDs, jobIDs) {
		tl.visible = now // with the what-if, the rows were listed since the acceptance, unless the plan changed
	}
	tl.jobIDs = append([]int(nil), jobIDs...)
	tl.closed = true
	close(tl.done)
	s.mu.Unlock()

	// After the commit: the synchronous analytics sends, then RQ marks the job
	// finished (API.md §9.3).
	if s.wait(ctx, s.prof.CommitToFinished+s.prof.CommitPerObject*timeMul(len(jobIDs)+2)) != nil {
		return
	}
	expire := s.faults.hit("expire", func(f Faults) float64 { return f.Expire })
	if expire {
		s.opts.Logf("cvatsim: fault expire %s", rq.id)
	}
	now = s.now()
	s.mu.Lock()
	rq.status, rq.finished, rq.message = stFinished, now, ""
	rq.expired = expire
	tl.finished = now
	s.emitRequestLocked(rq)
	s.unlockAndNotify(rq.id, stFinished)
}

// startProcessing counts a creation (ours or a background one) as processing and returns how much slower it
// runs: 1 + stretch·(k−1) for the k creations processing now, itself included, read once at its start. A
// shared CPU slows every creation that runs while others do (CALIBRATION §5.1); fixing the factor at the
// start keeps the model one that calibrate can invert from the started_date and finished_date of each
// creation (bench/calibrate: loadAtStart).
func (s *Server) startProcessing() stretchFactor {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processing++
	return stretchFactor(1 + s.prof.ConcurrencyStretch*float64(s.processing-1))
}

func (s *Server) endProcessing() {
	s.mu.Lock()
	s.processing--
	s.mu.Unlock()
}

// stretchFactor scales a processing phase.
type stretchFactor float64

func (f stretchFactor) times(d time.Duration) time.Duration {
	if d <= 0 || f == 1 {
		return d
	}
	return time.Duration(float64(f) * float64(d))
}

// previewCost is the preview's encoding time: the frames of job 0's first chunk (at most chunkSize) at the
// cost per 640×480 frame for quality, scaled by each frame's pixels.
func previewCost(cost QualityCost, quality int, frames []frame, segs []segment, chunkSize int) time.Duration {
	perVGA := cost.Cost(quality)
	if perVGA <= 0 || len(frames) == 0 || len(segs) == 0 {
		return 0
	}
	n := segs[0].stop - segs[0].start + 1
	if chunkSize > 0 {
		n = min(n, chunkSize)
	}
	var pixels float64
	for i := segs[0].start; i < segs[0].start+n && i < len(frames); i++ {
		pixels += float64(frames[i].w * frames[i].h)
	}
	return time.Duration(float64(perVGA) * pixels / (640 * 480))
}

// validationMsg formats a DRF ValidationError as RQ stores it (API.md §6.1).
func validationMsg(msg string) string {
	q := "'" + msg + "'"
	if strings.Contains(msg, "'") {
		q = `"` + msg + `"`
	}
	return "rest_framework.exceptions.ValidationError: [ErrorDetail(string=" + q + ", code='invalid')]\n"
}

// fail ends a request as failed: everything rolls back, the request keeps
// the message (API.md §9.4).
func (s *Server) fail(rq *request, msg string) {
	now := s.now()
	s.mu.Lock()
	rq.status, rq.finished, rq.message = stFailed, now, msg
	rolledBack := false
	if t := rq.task; t != nil && len(t.prealloc) > 0 {
		s.dropPreallocLocked(t, nil)
		rolledBack = true
	}
	if tl := s.tls[rq.ref.id]; tl != nil {
		if rolledBack { // the pre-allocated rows are gone: no job was ever committed
			tl.visible, tl.jobIDs = time.Time{}, nil
		}
		tl.failed = true
		tl.finished = now
		if !tl.closed {
			tl.closed = true
			close(tl.done)
		}
	}
	s.emitRequestLocked(rq)
	s.unlockAndNotify(rq.id, stFailed)
}

// orderFiles applies job_file_mapping or the sorting method. It returns the
// frames per mapped job (nil without a mapping) or a failure message.
func (s *Server) orderFiles(files []clientFile, p dataParams) ([]clientFile, []int, string) {
	byName := map[string]clientFile{}
	for _, f := range files {
		byName[f.name] = f
	}
	if len(p.jobFileMapping) > 0 {
		var out []clientFile
		var sizes []int
		for _, l := range p.jobFileMapping {
			for _, n := range l {
				f, ok := byName[n]
				if !ok {
					return nil, nil, validationMsg("Job file mapping: file '" + n + "' is not found in the input files")
				}
				out = append(out, f)
			}
			sizes = append(sizes, len(l))
		}
		if len(out) != len(files) {
			return nil, nil, validationMsg("Job file mapping must include every input file")
		}
		return out, sizes, ""
	}
	out := append([]clientFile(nil), files...)
	switch p.sortingMethod {
	case "natural":
		sort.SliceStable(out, func(i, j int) bool { return naturalLess(out[i].name, out[j].name) })
	case "predefined":
		if len(p.uploadFileOrder) > 0 {
			if len(p.uploadFileOrder) != len(files) {
				return nil, nil, validationMsg("The upload_file_order does not match the uploaded files")
			}
			out = out[:0]
			for _, n := range p.uploadFileOrder {
				f, ok := byName[baseName(n)]
				if !ok {
					return nil, nil, validationMsg("The upload_file_order does not match the uploaded files")
				}
				out = append(out, f)
			}
		}
	case "random":
		s.rng.shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	default:
		sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	}
	return out, nil, ""
}

// selectFrames applies start_frame, stop_frame and frame_filter.
func selectFrames(files []clientFile, p dataParams) []clientFile {
	start, stop := 0, len(files)-1
	if p.startFrame != nil {
		start = *p.startFrame
	}
	if p.stopFrame != nil && *p.stopFrame < stop {
		stop = *p.stopFrame
	}
	step := max(p.frameStep, 1)
	var out []clientFile
	for i := start; i <= stop; i += step {
		out = append(out, files[i])
	}
	return out
}

// naturalLess compares names with digit runs as numbers ("2" < "10").
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ca, cb := rune(a[0]), rune(b[0])
		if unicode.IsDigit(ca) && unicode.IsDigit(cb) {
			na, ra := splitDigits(a)
			nb, rb := splitDigits(b)
			na2, nb2 := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(na2) != len(nb2) {
				return len(na2) < len(nb2)
			}
			if na2 != nb2 {
				return na2 < nb2
			}
			a, b = ra, rb
			continue
		}
		if ca != cb {
			return ca < cb
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func splitDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}
