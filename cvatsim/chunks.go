package cvatsim

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// chunkKey names one built chunk of a job.
type chunkKey struct {
	task, job, index int
	compressed       bool
}

// chunkEntry is a chunk in the cache; ready closes once data is set.
type chunkEntry struct {
	once  sync.Once
	data  []byte
	err   error
	built time.Time
}

// jobChunkFrames returns the task frame indexes of chunk index of job j
// (API.md §7.2: chunk i holds the job's frames i*chunk_size .. (i+1)*chunk_size-1).
func jobChunkFrames(j *job, chunkSize, index int) (first, last int) {
	first = j.start + index*chunkSize
	last = min(first+chunkSize-1, j.stop)
	return first, last
}

// buildChunk zips the frames [first, last]: JPEG at quality for compressed
// chunks, the source bytes for original ones.
func (s *Server) buildChunk(frames []frame, first, last int, compressed bool, quality int) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := first; i <= last; i++ {
		f := frames[i]
		name := fmt.Sprintf("%06d.%s", i-first, f.ext)
		data := f.data
		if compressed {
			name = fmt.Sprintf("%06d.jpeg", i-first)
			var err error
			if data, err = s.jpegs.encode(f.data, quality); err != nil {
				return nil, fmt.Errorf("encode %s: %w", f.name, err)
			}
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// staticChunks holds the chunks built during processing, per segment, per
// chunk index: [compressed, original].
type staticChunks [][][2]*chunkEntry

// buildStaticChunks encodes every chunk of every segment in both qualities
// during processing (static cache, API.md §9.7), moving the request's
// progress.
func (s *Server) buildStaticChunks(rq *request, frames []frame, segs []segment, chunkSize, quality int) (staticChunks, error) {
	total := 0
	for _, sg := range segs {
		total += (sg.stop - sg.start + chunkSize) / chunkSize
	}
	out := make(staticChunks, len(segs))
	done := 0
	now := s.now()
	for si, sg := range segs {
		j := &job{start: sg.start, stop: sg.stop}
		n := (sg.stop - sg.start + chunkSize) / chunkSize
		out[si] = make([][2]*chunkEntry, n)
		for i := 0; i < n; i++ {
			first, last := jobChunkFrames(j, chunkSize, i)
			for q, comp := range []bool{true, false} {
				data, err := s.buildChunk(frames, first, last, comp, quality)
				if err != nil {
					return nil, fmt.Errorf("%s", validationMsg("Failed to create a chunk: "+err.Error()))
				}
				e := &chunkEntry{data: data, built: now}
				e.once.Do(func() {})
				out[si][i][q] = e
			}
			done++
			s.mu.Lock()
			rq.progress = float64(done) / float64(total)
			s.mu.Unlock()
		}
	}
	return out, nil
}

// previewChunkLocked marks chunk 0 of a task's first job as CVAT's task preview leaves it (the preview reads
// frame 0 of that compressed chunk during creation, which caches it), so its first read costs no build time.
// Its bytes are assembled on that read, from the frames the pipeline re-encoded in the background (warm).
func (s *Server) previewChunkLocked(taskID, jobID int) {
	s.chunks[chunkKey{task: taskID, job: jobID, index: 0, compressed: true}] = &chunkEntry{}
}

// storeLocked puts the chunks of segment si in the cache under a job id.
func (sc staticChunks) storeLocked(s *Server, taskID, si, jobID int) {
	if sc == nil {
		return
	}
	for i, pair := range sc[si] {
		s.chunks[chunkKey{task: taskID, job: jobID, index: i, compressed: true}] = pair[0]
		s.chunks[chunkKey{task: taskID, job: jobID, index: i, compressed: false}] = pair[1]
	}
}

// handleJobData is GET /api/jobs/{id}/data (API.md §7.2).
func (s *Server) handleJobData(c *call) {
	j, ok := s.lookupJob(c)
	if !ok {
		return
	}
	q := c.r.URL.Query()
	typ := q.Get("type")
	if typ != "chunk" && typ != "frame" && typ != "context_image" {
		c.badRequest([]string{"Data type not specified or has wrong value"})
		return
	}
	compressed := q.Get("quality") == "" || q.Get("quality") == "compressed"
	s.mu.Lock()
	t := j.task
	chunkSize, quality, frames, updated := t.chunkSize, t.imageQuality, t.frames, t.updated
	static := t.staticChunks
	s.mu.Unlock()
	switch typ {
	case "context_image":
		c.badRequest([]string{"Context images are not available for this task"})
		return
	case "frame":
		n, err := strconv.Atoi(q.Get("number"))
		if err != nil || n < j.start || n > j.stop {
			c.badRequest([]string{fmt.Sprintf("The frame number should be in the [%d, %d] range", j.start, j.stop)})
			return
		}
		data := frames[n].data
		ct := "image/" + frames[n].ext
		if compressed {
			if jb, err := s.jpegs.encode(data, quality); err == nil {
				data, ct = jb, "image/jpeg"
			}
		}
		c.w.Header().Set("Content-Type", ct)
		c.w.WriteHeader(http.StatusOK)
		_, _ = c.w.Write(data)
		return
	}
	idxS, hasIdx := q["index"]
	_, hasNum := q["number"]
	if hasIdx == hasNum {
		c.badRequest([]string{"Exactly one of the 'index' and 'number' parameters must be specified"})
		return
	}
	nChunks := (j.stop - j.start + chunkSize) / chunkSize
	var index int
	var err error
	if hasIdx {
		index, err = strconv.Atoi(idxS[0])
	} else {
		var num int
		num, err = strconv.Atoi(q.Get("number"))
		index = num - j.start/chunkSize
	}
	if err != nil || index < 0 || index >= nChunks {
		c.badRequest(fmt.Sprintf("Invalid chunk number '%s'. The chunk number should be in the [0, %d] range", firstOf(idxS, q.Get("number")), nChunks-1))
		return
	}
	key := chunkKey{task: t.id, job: j.id, index: index, compressed: compressed}
	s.mu.Lock()
	e := s.chunks[key]
	fresh := e == nil
	if fresh {
		e = &chunkEntry{}
		s.chunks[key] = e
	}
	s.mu.Unlock()
	first, last := jobChunkFrames(j, chunkSize, index)
	var encoded time.Duration // what this read spent really encoding the chunk
	e.once.Do(func() {
		start := s.now()
		e.data, e.err = s.buildChunk(frames, first, last, compressed, quality)
		e.built = s.now()
		encoded = e.built.Sub(start)
	})
	if e.err != nil {
		c.json(http.StatusInternalServerError, obj{{"detail", "chunk build failed"}})
		return
	}
	if fresh && compressed && !static {
		// The API process polls the build every ChunkPollStep (API.md §7.2). The encoder's work scales with
		// pixels: the term is per 640×480 frame. The emulator's own encoding, already spent, counts toward it.
		var pixels float64
		for i := first; i <= last; i++ {
			pixels += float64(frames[i].w * frames[i].h)
		}
		build := max(time.Duration(float64(s.prof.ChunkFirstReadPerImage)*pixels/(640*480)), encoded)
		if step := s.prof.ChunkPollStep; step > 0 && build > 0 {
			build = (build + step - 1) / step * step
		}
		c.post += max(build-encoded, 0)
	}
	{ // every read streams the chunk out of the cache
		c.post += time.Duration(float64(s.prof.ChunkReadPerMiB) * float64(len(e.data)) / (1 << 20))
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("X-Checksum", chunkChecksum(e.data))
	h.Set("X-Updated-Date", fmtTime(updated))
	h.Set("Accept-Ranges", "bytes")
	http.ServeContent(c.w, c.r, "", time.Time{}, bytes.NewReader(e.data))
}

func firstOf(vals []string, def string) string {
	if len(vals) > 0 {
		return vals[0]
	}
	return def
}

// chunkChecksum is a CRC32 over the size and the first 1000 bytes.
func chunkChecksum(data []byte) string {
	h := crc32.NewIEEE()
	_, _ = h.Write([]byte(strconv.Itoa(len(data))))
	_, _ = h.Write(data[:min(1000, len(data))])
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}
