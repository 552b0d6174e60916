package cvatsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Dist is a latency distribution: Base + LogN(Median, Sigma), capped at Cap
// when Cap > 0. The zero Dist is always 0; Sigma 0 makes it the constant
// Base + Median.
type Dist struct {
	Base   time.Duration // constant part
	Median time.Duration // median of the log-normal part; 0: no log-normal part
	Sigma  float64       // shape of the log-normal part
	Cap    time.Duration // upper bound of the sum; 0: none
}

// sample draws one value from d with rng.
func (d Dist) sample(rng *lockedRand) time.Duration {
	v := d.Base
	if d.Median > 0 {
		f := 1.0
		if d.Sigma > 0 {
			f = math.Exp(d.Sigma * rng.normal())
		}
		v += time.Duration(float64(d.Median) * f)
	}
	if d.Cap > 0 && v > d.Cap {
		v = d.Cap
	}
	return v
}

// Profile holds the latency terms of the emulator (CALIBRATION.md §3, §5). Every
// field can be overridden after LookupProfile or loaded from a profile file
// (profilefile.go); a zero field costs nothing.
type Profile struct {
	Name string

	// ImportWorkers is the number of import queue workers; 0 leaves
	// Options.ImportWorkers (default 2) in charge.
	ImportWorkers int
	// APISlots is how many API requests are served at a time; more wait FIFO.
	// 0 means unlimited.
	APISlots int
	// APIRead is the latency of a GET (task, jobs list, request, about, self).
	APIRead Dist
	// APIReadPerJob is added per job returned by GET /api/jobs.
	APIReadPerJob time.Duration
	// APIWrite is the latency of a POST or DELETE.
	APIWrite Dist
	// APIUpload replaces APIWrite for each request of a data upload (the single POST, Upload-Start,
	// Upload-Multiple, Upload-Finish, TUS); the zero Dist leaves APIWrite in charge.
	APIUpload Dist
	// DeletePerJob is added to DELETE /api/tasks/{id} per job (cascade).
	DeletePerJob time.Duration
	// UploadBytesPerSecond is the transfer rate of upload bodies; 0: free.
	UploadBytesPerSecond float64
	// UploadPerFile is added per uploaded file.
	UploadPerFile time.Duration
	// BasicAuth is added to every request authenticated with Basic.
	BasicAuth time.Duration

	// PickUp is the time from enqueue to started_date with a free worker.
	PickUp Dist
	// Processing is the fixed processing time per task from started_date
	// until the job rows are inserted (validation, media, manifest).
	Processing Dist
	// PerImage is the processing cost per image (header read, manifest).
	PerImage time.Duration
	// PerJob is the processing cost per created job; each job row is stamped
	// (created_date) when its insert ends, not at the commit.
	PerJob time.Duration
	// JobsToCommit is the fixed time from the last job row to the commit that
	// makes the jobs visible (task saves, signal handlers), without the preview.
	JobsToCommit Dist
	// PreviewPerFrame is the cost of JPEG-encoding one 640×480 frame of job
	// 0's first compressed chunk for the task preview, by image_quality
	// (linear between the given qualities, flat outside), scaled by pixels.
	PreviewPerFrame QualityCost
	// ConcurrencyStretch slows each processing phase by 1 + stretch·(k−1)
	// when k creations are processing at its start (a shared CPU).
	ConcurrencyStretch float64
	// StaticChunkPerImage is the encoding cost per image with static chunks.
	StaticChunkPerImage time.Duration
	// CommitToFinished is the base delay between the commit (jobs visible) and
	// the request reading finished.
	CommitToFinished time.Duration
	// CommitPerObject is added to CommitToFinished per created object (jobs
	// plus two task updates).
	CommitPerObject time.Duration

	// WebhookHop is the service time of one webhook delivery (serial worker).
	WebhookHop time.Duration

	// ChunkFirstReadPerImage is the build cost of a compressed chunk per
	// 640×480 frame, scaled by each frame's pixels, paid on its first read
	// and rounded up to ChunkPollStep. Job 0's chunk 0 is built by the task
	// preview during creation (PreviewPerFrame), so its first read is warm.
	ChunkFirstReadPerImage time.Duration
	// ChunkPollStep is the polling interval of the API process while a chunk
	// builds (CVAT_CHUNK_CREATE_CHECK_INTERVAL).
	ChunkPollStep time.Duration
	// ChunkReadPerMiB is the cost of serving a chunk per MiB of it, on every
	// read (CVAT reads it from its cache and streams it through Django).
	ChunkReadPerMiB time.Duration

	// Background is other users' creations sharing the import queue.
	Background BackgroundLoad
}

// BackgroundLoad is a Poisson stream of other users' task creations that
// occupy import workers like ours do but are invisible through the API
// (requests are listed per user). It makes the queue wait real FIFO waiting
// behind load the benchmark does not create (CALIBRATION F7, F8).
type BackgroundLoad struct {
	ArrivalsPerSecond float64 // 0: none
	Service           Dist    // worker time of one background creation, after its pick-up
}

// Utilization is the share of the workers the load keeps busy (ρ of M/G/c).
func (b BackgroundLoad) Utilization(workers int) float64 {
	if b.ArrivalsPerSecond <= 0 || workers <= 0 {
		return 0
	}
	return b.ArrivalsPerSecond * b.Service.Mean().Seconds() / float64(workers)
}

// QualityCost is a cost per frame at given image_quality values; Cost
// interpolates linearly between them and is flat outside. Empty: free.
type QualityCost map[int]time.Duration

// Cost returns the cost per frame at quality q.
func (c QualityCost) Cost(q int) time.Duration {
	if len(c) == 0 {
		return 0
	}
	qs := make([]int, 0, len(c))
	for k := range c {
		qs = append(qs, k)
	}
	sort.Ints(qs)
	if q <= qs[0] {
		return c[qs[0]]
	}
	for i := 1; i < len(qs); i++ {
		if q <= qs[i] {
			lo, hi := qs[i-1], qs[i]
			f := float64(q-lo) / float64(hi-lo)
			return c[lo] + time.Duration(f*float64(c[hi]-c[lo]))
		}
	}
	return c[qs[len(qs)-1]]
}

// Mean is the expected value of d, ignoring the cap.
func (d Dist) Mean() time.Duration {
	return d.Base + time.Duration(float64(d.Median)*math.Exp(d.Sigma*d.Sigma/2))
}

// Quantile is the q-quantile of d (0 < q < 1), the cap applied.
func (d Dist) Quantile(q float64) time.Duration {
	v := d.Base + time.Duration(float64(d.Median)*math.Exp(d.Sigma*normQuantile(q)))
	if d.Cap > 0 && v > d.Cap {
		v = d.Cap
	}
	return v
}

// normQuantile is the standard normal quantile (Acklam's rational
// approximation, relative error below 1.2e-9).
func normQuantile(p float64) float64 {
	a := [...]float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := [...]float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := [...]float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	e := [...]float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	const lo = 0.02425
	switch {
	case p <= 0:
		return math.Inf(-1)
	case p >= 1:
		return math.Inf(1)
	case p < lo:
		q := math.Sqrt(-2 * math.Log(p))
		return (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((e[0]*q+e[1])*q+e[2])*q+e[3])*q + 1)
	case p > 1-lo:
		q := math.Sqrt(-2 * math.Log(1-p))
		return -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((e[0]*q+e[1])*q+e[2])*q+e[3])*q + 1)
	default:
		q := p - 0.5
		r := q * q
		return (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
	}
}

// cvatDefault models one default deployment of CVAT 2.73.0 with the client on the same host: a real CVAT
// 2.73.0 (2 import workers, 2 uvicorn processes, PostgreSQL, Redis, OPA on 2 cores; ../shared/realcvat) as
// `cvatbench calibrate` measured it on 2026-12-03 (114 creations, 640×480 JPEGs, the SDK's upload; README
// "Calibrating against your server").
// "calibrate" marks a fitted term, with its 95 % interval; "estimate" a term nothing measured.
func cvatDefault() Profile {
	return Profile{
		Name: "cvat-default",
		// calibrate: at most 2 creations processing at once with 4 in flight [2, 2]; docker-compose NUMPROCS 2.
		ImportWorkers: 2,
		// cvat_server NUMPROCS: 2 (docker-compose.yml); §5 setup: uvicorn --workers 2 (not measured).
		APISlots: 2,
		// calibrate: GET request/jobs/task median 28.3 ms [24.1, 29.0] -> LogN(28.3 ms, 0.20); cap an estimate.
		APIRead: Dist{Median: 28280 * time.Microsecond, Sigma: 0.202, Cap: 250 * time.Millisecond},
		// calibrate: 0.61 ms per listed job [-0.02, 1.28] (1 against 10 jobs).
		APIReadPerJob: 610 * time.Microsecond,
		// calibrate: POST /api/tasks median 46.7 ms [46.1, 47.7] -> 41.5 + LogN(5.2, 0.71).
		APIWrite: Dist{Base: 41500 * time.Microsecond, Median: 5220 * time.Microsecond, Sigma: 0.709},
		// calibrate: Upload-Start, Upload-Multiple net of its files, Upload-Finish median 35.7 ms [34.1, 38.0].
		APIUpload: Dist{Median: 35690 * time.Microsecond, Sigma: 0.304},
		// calibrate: DELETE /api/tasks/{id} 14.7 ms per job [14.4, 15.0] (the cascade).
		DeletePerJob: 14670 * time.Microsecond,
		// Estimate for a client on the same host or LAN: 200 MiB/s (one image size cannot separate it).
		UploadBytesPerSecond: 200 << 20,
		// calibrate: 0.10 ms per file beyond the transfer [-0.14, 0.33].
		UploadPerFile: 100 * time.Microsecond,
		// calibrate: GET /api/users/self with Basic 234 ms [220, 311] slower than with a token (PBKDF2).
		BasicAuth: 233920 * time.Microsecond,
		// calibrate: started − created median 15.2 ms [14.5, 15.6] -> 11.6 + LogN(3.6, 0.42).
		PickUp: Dist{Base: 11550 * time.Microsecond, Median: 3640 * time.Microsecond, Sigma: 0.423},
		// calibrate: started -> first job row, less the size terms, median 26.4 ms [25.7, 27.3].
		Processing: Dist{Base: 22450 * time.Microsecond, Median: 3940 * time.Microsecond, Sigma: 0.685},
		// calibrate: 0.15 ms per image [0.11, 0.19].
		PerImage: 150 * time.Microsecond,
		// calibrate: 14.0 ms between consecutive job rows [13.1, 14.9] (segment, job, their signals).
		PerJob: 13970 * time.Microsecond,
		// calibrate: last job row -> commit, less the preview, median 88.9 ms [81.8, 96.3]: the job rows are
		// stamped well before the commit (§5.3).
		JobsToCommit: Dist{Median: 88880 * time.Microsecond, Sigma: 0.208},
		// calibrate: preview of job 0's first chunk 3.7 [3.4, 4.0], 5.5 [5.2, 5.9], 8.6 [8.2, 8.9] ms per
		// 640×480 frame at q10/70/100 (§5.2: 3.5, 5.9, 9.5).
		PreviewPerFrame: QualityCost{10: 3680 * time.Microsecond, 70: 5540 * time.Microsecond, 100: 8560 * time.Microsecond},
		// calibrate: a creation starting while k−1 others process runs 1 + 1.72·(k−1) slower [1.26, 2.18];
		// the client's uploads share the 2 cores too (§5.1: 267/425/783 ms at 1/3/6 in flight).
		ConcurrencyStretch: 1.718,
		// F5 (PR #7081): between 34 ms (1 thread) and 16 ms (3 threads) per image, for 2.73.0's 2 threads.
		StaticChunkPerImage: 25 * time.Millisecond,
		// calibrate measured -22.2 ms [-31.1, -13.3]: listings see the commit only after finished_date,
		// because the server reads before its latency ends; kept at 0, the emulator's listings read at the end.
		CommitToFinished: 0,
		// calibrate: 2.5 ms per created object [2.1, 2.8] (analytics sends between commit and finished).
		CommitPerObject: 2490 * time.Microsecond,
		// calibrate: 40.5 ms between a task's consecutive create:job deliveries [40.2, 40.8].
		WebhookHop: 40460 * time.Microsecond,
		// Bounded, not fitted: on CVAT 2.73.0 the cold read of a chunk of 5 photographs (11.9 VGA frames' worth of
		// pixels) took 0.24-0.29 s at q30-q95, one 0.2 s check plus the 37-69 ms of a warm read, so the build took
		// under 0.2 s, under 17 ms per VGA frame. 10 ms is the preview's encoding cost (3.7-8.6 ms) plus decoding.
		ChunkFirstReadPerImage: 10 * time.Millisecond,
		ChunkPollStep:          200 * time.Millisecond,
		// Least squares over warm chunk reads on CVAT 2.73.0 (5 and 50 frames of 640×480 at q10, q70 and q100,
		// 40 KB to 12.6 MB, p50 of 4 each): 46 ms + 61.6 ms per MiB, residuals under 7 ms. The 46 ms is the API's
		// base latency, which the emulator has already.
		ChunkReadPerMiB: 61600 * time.Microsecond,
	}
}

// cvatQueued is cvatDefault on a shared server whose import queue dominates:
// other users' creations keep the 2 workers about 85 % busy, so a creation
// usually waits behind others (F7: "by default CVAT has 2" workers; F8:
// app.cvat.ai queues for hours under "hundreds of other users"). The load is
// an estimate scaled to seconds, not hours, so a run stays short.
func cvatQueued() Profile {
	p := cvatDefault()
	p.Name = "cvat-queued"
	// Estimate: 1.2 creations/s of 1.4 s mean worker time (LogN(1.2 s, 0.55)) on 2 workers: ρ ≈ 0.85,
	// an M/G/2 queue whose wait is seconds with a long tail.
	p.Background = BackgroundLoad{ArrivalsPerSecond: 1.2, Service: Dist{Median: 1200 * time.Millisecond, Sigma: 0.55}}
	// Estimate: a shared server has more cores than its 2 import workers need, so creations do not slow each
	// other down as on the 2-core host of §5.1; only the queue grows.
	p.ConcurrencyStretch = 0
	return p
}

// cvatLegacy is the pre-calibration cvat-default, fitted only to public figures
// of older versions (CALIBRATION.md §3.2): 3–3.7× slower than a real 2.73.0.
// Kept to re-check results of earlier runs and as a slow-server profile.
func cvatLegacy() Profile {
	p := cvatDefault() // the terms the refit left alone (upload rate, static chunks, chunk reads)
	p.Name = "cvat-legacy"
	p.DeletePerJob, p.UploadPerFile, p.CommitToFinished, p.CommitPerObject = time.Millisecond, time.Millisecond, 5*time.Millisecond, time.Millisecond
	p.WebhookHop = 50 * time.Millisecond
	p.APIUpload = Dist{} // every upload request costs an APIWrite
	p.APIRead = Dist{Base: 15 * time.Millisecond, Median: 2500 * time.Microsecond, Sigma: 1.1, Cap: 250 * time.Millisecond}
	p.APIReadPerJob = 200 * time.Microsecond
	p.APIWrite = Dist{Base: 40 * time.Millisecond, Median: 15 * time.Millisecond, Sigma: 0.8}
	p.BasicAuth = 250 * time.Millisecond
	p.PickUp = Dist{Base: 50 * time.Millisecond}
	p.Processing = Dist{Median: 600 * time.Millisecond, Sigma: 0.3}
	p.PerImage = 3 * time.Millisecond
	p.PerJob = 10 * time.Millisecond
	// Terms the old model did not have: job rows stamped at the commit, no preview, no stretch.
	p.JobsToCommit, p.PreviewPerFrame, p.ConcurrencyStretch = Dist{}, nil, 0
	return p
}

// instant has every latency at zero and keeps the behaviour (CALIBRATION.md §4).
func instant() Profile {
	return Profile{Name: "instant", APISlots: 2}
}

var profiles = map[string]func() Profile{
	"cvat-default": cvatDefault,
	"cvat-queued":  cvatQueued,
	"cvat-legacy":  cvatLegacy,
	"instant":      instant,
}

// LookupProfile returns the named built-in profile.
func LookupProfile(name string) (Profile, error) {
	f, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %v, or a profile file)", name, ProfileNames())
	}
	return f(), nil
}

// ProfileNames lists the built-in profile names, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lockedRand is a seeded generator shared by handlers and workers.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed int64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
}

func (l *lockedRand) normal() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.NormFloat64()
}

func (l *lockedRand) float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) shuffle(n int, swap func(i, j int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r.Shuffle(n, swap)
}
