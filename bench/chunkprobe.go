package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cvatbench/cvatbench/bench/fidelity"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
)

// ChunkAPI is what the chunk probe needs beyond API; *cvat.Client has it.
type ChunkAPI interface {
	JobChunk(ctx context.Context, jobID, index int, quality string) ([]byte, error)
}

var _ ChunkAPI = (*cvat.Client)(nil)

// Probe limits. CVAT builds a chunk for up to 50 s before it answers 429 with Retry-After: 10 (API.md §7.2),
// so a probe may take two such rounds; the client honours Retry-After within each call, and the probe calls
// again after 1 s, 2 s, 4 s, as CVAT's web client does (cvat-core download.worker.ts: Retry-After, else
// 1 s·2^n).
const (
	chunkProbeTimeout   = 2 * time.Minute
	chunkProbeRetries   = 3
	chunkMaxMemberSide  = 16384     // a member claiming a larger side is refused before it is decoded
	chunkMaxMemberBytes = 256 << 20 // nor is one larger than this, however it is compressed
	// originalsBudget bounds the luma planes of the originals kept between trials (a 640×480 plane is 300
	// KiB): the same frames are scored in every trial, and beyond the budget they are decoded each time.
	originalsBudget = 64 << 20
)

// probeChunks fills rec.Chunks for a trial that obtained its jobs, when the run probes chunks. jobs is the
// task's listing if the trial already made one after the wait, else nil.
func (r *Runner) probeChunks(runCtx context.Context, rec *record.Trial, originals *originalLumas, jobs []cvat.Job) {
	mode := r.cfg.ChunkMode()
	chunks, ok := r.api.(ChunkAPI)
	if mode == record.ChunksNone || !ok || rec.Result != record.ResultOK || runCtx.Err() != nil {
		return
	}
	p := &record.ChunkProbe{Mode: mode}
	rec.Chunks = p
	ctx, cancel := context.WithTimeout(runCtx, chunkProbeTimeout)
	defer cancel()
	var attempts atomic.Int64
	ctx = cvat.WithCallObserver(ctx, func(c cvat.Call) {
		attempts.Add(1)
		r.observer.APICall(rec.Strategy, c)
	})
	defer func() { p.Attempts = int(attempts.Load()) }()
	if err := r.probe(ctx, chunks, rec.TaskID, p, originals, jobs); err != nil {
		p.Error = err.Error()
	}
}

type chunkRead struct {
	job   cvat.Job
	index int
}

func (r *Runner) probe(ctx context.Context, chunks ChunkAPI, taskID int, p *record.ChunkProbe, originals *originalLumas, listed []cvat.Job) error {
	if listed == nil {
		page, err := r.api.ListJobs(ctx, cvat.JobsQuery{TaskID: taskID, PageSize: cvat.PageSizeAll, Sort: "id"})
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		listed = page.Results
	}
	jobs := slices.DeleteFunc(slices.Clone(listed), func(j cvat.Job) bool { return j.Type != "" && j.Type != "annotation" })
	if len(jobs) == 0 {
		return errors.New("list jobs: the task lists no annotation job")
	}
	slices.SortFunc(jobs, func(a, b cvat.Job) int { return a.ID - b.ID })
	probed := jobs[0]
	p.PreviewBuilt = len(jobs) == 1
	if len(jobs) > 1 {
		probed = jobs[1]
	}
	if probed.DataChunkSize == nil || *probed.DataChunkSize < 1 {
		return fmt.Errorf("job %d lists no data_chunk_size", probed.ID)
	}
	size := *probed.DataChunkSize
	p.JobID, p.ChunkSize = probed.ID, size
	reads := []chunkRead{{probed, 0}}
	if p.Mode == record.ChunksAll { // the probed chunk first, cold then warm, then every other one
		for _, j := range jobs {
			for i := range (j.StopFrame - j.StartFrame + size) / size {
				if j.ID != probed.ID || i != 0 {
					reads = append(reads, chunkRead{j, i})
				}
			}
		}
	}
	for n, rd := range reads {
		start := r.clock.Now()
		data, err := r.readChunk(ctx, chunks, rd.job.ID, rd.index)
		if n == 0 {
			p.ColdMs = floatPtr(ms(r.clock.Now().Sub(start)))
		}
		if err != nil {
			return err
		}
		p.ChunksRead++
		p.Bytes += int64(len(data))
		if n == 0 {
			p.FirstBytes = len(data)
			start = r.clock.Now()
			if _, err := r.readChunk(ctx, chunks, rd.job.ID, rd.index); err != nil {
				return fmt.Errorf("warm read: %w", err)
			}
			p.WarmMs = floatPtr(ms(r.clock.Now().Sub(start)))
		}
		firstFrame := rd.job.StartFrame + rd.index*size
		want := min(size, rd.job.StopFrame-firstFrame+1)
		frames, err := scoreChunk(data, firstFrame, want, originals, p)
		if n == 0 {
			p.FirstFrames = frames
		}
		if err != nil {
			return fmt.Errorf("job %d chunk %d: %w", rd.job.ID, rd.index, err)
		}
	}
	return nil
}

// readChunk reads one compressed chunk, calling again after a retryable failure that outlasted the client's
// own retries.
func (r *Runner) readChunk(ctx context.Context, chunks ChunkAPI, jobID, index int) ([]byte, error) {
	pause := time.Second
	for retry := 0; ; retry++ {
		data, err := chunks.JobChunk(ctx, jobID, index, "compressed")
		if err == nil || retry == chunkProbeRetries || ctx.Err() != nil || !retryableChunkError(err) {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-r.clock.After(pause):
		}
		pause *= 2
	}
}

func retryableChunkError(err error) bool {
	switch cvat.StatusOf(err) {
	case 0:
		return !errors.Is(err, context.Canceled)
	case 429, 502, 503, 504:
		return true
	}
	return false
}

// scoreChunk checks that a chunk holds want frames starting at task frame firstFrame, decodes each and scores
// it against its original. It returns the frames the chunk held. A chunk that does not decode, or holds
// another number of frames, is an error: the frames cannot be matched with their originals.
func scoreChunk(data []byte, firstFrame, want int, originals *originalLumas, p *record.ChunkProbe) (int, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return 0, fmt.Errorf("not a zip of frames: %w", err)
	}
	members := slices.Clone(zr.File)
	slices.SortFunc(members, func(a, b *zip.File) int { return strings.Compare(a.Name, b.Name) }) // 000000.jpeg, 000001.jpeg, ...
	p.Frames += len(members)
	if len(members) != want {
		return len(members), fmt.Errorf("the chunk holds %d frames, the job's layout says %d", len(members), want)
	}
	for k, m := range members {
		img, err := decodeMember(m)
		if err != nil {
			return len(members), fmt.Errorf("frame %s: %w", m.Name, err)
		}
		orig, err := originals.plane(firstFrame + k)
		if err != nil {
			return len(members), err
		}
		got := fidelity.Luma(img)
		mse, err := fidelity.MSE(orig, got)
		if err != nil {
			return len(members), fmt.Errorf("frame %d: %w", firstFrame+k, err)
		}
		ssim, err := fidelity.SSIM(orig, got)
		if err != nil {
			return len(members), fmt.Errorf("frame %d: %w", firstFrame+k, err)
		}
		var psnr *float64
		if mse > 0 {
			psnr = floatPtr(fidelity.PSNR(mse))
		}
		p.MSE, p.PSNRdB, p.SSIM = append(p.MSE, mse), append(p.PSNRdB, psnr), append(p.SSIM, ssim)
	}
	return len(members), nil
}

// decodeMember reads a chunk member once and decodes it, refusing one that claims more than
// chunkMaxMemberSide pixels a side before any pixel is decoded.
func decodeMember(m *zip.File) (image.Image, error) {
	if m.UncompressedSize64 > chunkMaxMemberBytes {
		return nil, fmt.Errorf("claims %d bytes", m.UncompressedSize64)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, chunkMaxMemberBytes+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("does not decode: %w", err)
	}
	if cfg.Width > chunkMaxMemberSide || cfg.Height > chunkMaxMemberSide {
		return nil, fmt.Errorf("claims %dx%d pixels", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("does not decode: %w", err)
	}
	return img, nil
}

// originalLumas hands out the luma planes of the uploaded files by task frame (CVAT's default sorting_method,
// lexicographical, orders a task's frames by file name, the order of Workload's files), keeping decoded ones
// within originalsBudget. Safe for concurrent use.
type originalLumas struct {
	files []cvat.File

	mu     sync.Mutex
	planes map[int]*fidelity.Plane
	used   int
}

func newOriginalLumas(files []cvat.File) *originalLumas {
	sorted := slices.Clone(files)
	slices.SortStableFunc(sorted, func(a, b cvat.File) int { return strings.Compare(a.Name, b.Name) })
	return &originalLumas{files: sorted, planes: map[int]*fidelity.Plane{}}
}

func (o *originalLumas) plane(frame int) (*fidelity.Plane, error) {
	if frame < 0 || frame >= len(o.files) {
		return nil, fmt.Errorf("frame %d: the task was given %d images", frame, len(o.files))
	}
	o.mu.Lock()
	p := o.planes[frame]
	o.mu.Unlock()
	if p != nil {
		return p, nil
	}
	img, _, err := image.Decode(bytes.NewReader(o.files[frame].Data))
	if err != nil {
		return nil, fmt.Errorf("original %s: %w", o.files[frame].Name, err)
	}
	p = fidelity.Luma(img)
	o.mu.Lock()
	if o.used+len(p.Pix) <= originalsBudget {
		o.planes[frame] = p
		o.used += len(p.Pix)
	}
	o.mu.Unlock()
	return p, nil
}
