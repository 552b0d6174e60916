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

// Profile holds the latency terms of the emulator (CALIBRATION.md §3). Every
// field can be overridden after LookupProfile; a zero field costs nothing.
type Profile struct {
	Name string

	// APISlots is how many API requests are served at a time; more wait FIFO.
	// 0 means unlimited.
	APISlots int
	// APIRead is the latency of a GET (task, jobs list, request, about, self).
	APIRead Dist
	// APIReadPerJob is added per job returned by GET /api/jobs.
	APIReadPerJob time.Duration
	// APIWrite is the latency of a POST or DELETE.
	APIWrite Dist
	// DeletePerJob is added to DELETE /api/tasks/{id} per job (cascade).
	DeletePerJob time.Duration
	// UploadBytesPerSecond is the transfer rate of upload bodies; 0: free.
	UploadBytesPerSecond float64
	// UploadPerFile is added per uploaded file.
	UploadPerFile time.Duration
	// BasicAuth is added to every request authenticated with Basic.
	BasicAuth time.Duration

	// PickUp is the time from enqueue to started_date with a free worker.
	PickUp time.Duration
	// Processing is the fixed processing time per task (started -> commit).
	Processing Dist
	// PerImage is the processing cost per image (header read, manifest).
	PerImage time.Duration
	// PerJob is the processing cost per created job.
	PerJob time.Duration
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

	// ChunkFirstReadPerImage is the build cost of a compressed chunk per image,
	// paid on its first read, rounded up to ChunkPollStep.
	ChunkFirstReadPerImage time.Duration
	// ChunkPollStep is the polling interval of the API process while a chunk
	// builds (CVAT_CHUNK_CREATE_CHECK_INTERVAL).
	ChunkPollStep time.Duration
}

// cvatDefault models one default docker-compose deployment of CVAT 2.73.0 with
// a client on the same LAN (CALIBRATION.md §3.2). Each term names its source.
func cvatDefault() Profile {
	return Profile{
		Name: "cvat-default",
		// cvat_server NUMPROCS: 2 (docker-compose.yml): about two requests at a time; CALIBRATION §3.1, API.md §1.4.
		APISlots: 2,
		// F9 (perf kit baselines, v2.43.0): median 17.6, p95 30.4, mean 19.0 ms -> 15 + LogN(2.5, 1.1), cap 250.
		APIRead: Dist{Base: 15 * time.Millisecond, Median: 2500 * time.Microsecond, Sigma: 1.1, Cap: 250 * time.Millisecond},
		// Estimate: serialization of one JobRead (CALIBRATION §3.2).
		APIReadPerJob: 200 * time.Microsecond,
		// Estimate anchored between F9 (read, 17.6 ms) and F10 (mixed, median 66 ms): 40 + LogN(15, 0.8).
		APIWrite: Dist{Base: 40 * time.Millisecond, Median: 15 * time.Millisecond, Sigma: 0.8},
		// Estimate: cascade plus one delete:job event per job.
		DeletePerJob: time.Millisecond,
		// Estimate for a LAN: 200 MiB/s plus 1 ms per file (F12 shows remote clients are far slower).
		UploadBytesPerSecond: 200 << 20,
		UploadPerFile:        time.Millisecond,
		// Estimate: a PBKDF2 hash check on every Basic request (cvat/settings/testing_rest.py swaps it for MD5).
		BasicAuth: 250 * time.Millisecond,
		// Estimate: RQ blocking pop, then a child process that opens a DB connection.
		PickUp: 50 * time.Millisecond,
		// Estimate fitted to F1 (issue #9073: 600 ms to 1 s for one image end to end): LogN(600, 0.3).
		Processing: Dist{Median: 600 * time.Millisecond, Sigma: 0.3},
		// Estimate: F3's linear term 2.3 ms/frame plus one header read per image (API.md §9.2 step 7).
		PerImage: 3 * time.Millisecond,
		// F2 (PR #5850): 429.3 s / 45,000 jobs = 9.5 ms, rounded up for 2.73.0's extra signal handlers.
		PerJob: 10 * time.Millisecond,
		// F5 (PR #7081): between 34 ms (1 thread) and 16 ms (3 threads) per image, for 2.73.0's 2 threads.
		StaticChunkPerImage: 25 * time.Millisecond,
		// Estimate: one synchronous analytics send per created object plus RQ bookkeeping (API.md §9.3).
		CommitToFinished: 5 * time.Millisecond,
		CommitPerObject:  time.Millisecond,
		// Estimate: child process, webhook and delivery rows, POST through the egress proxy (API.md §8.6).
		WebhookHop: 50 * time.Millisecond,
		// Estimate: half of F5's per-image figure (one quality only), in 0.2 s polling steps (API.md §7.2).
		ChunkFirstReadPerImage: 20 * time.Millisecond,
		ChunkPollStep:          200 * time.Millisecond,
	}
}

// instant has every latency at zero and keeps the behaviour (CALIBRATION.md §4).
func instant() Profile {
	return Profile{Name: "instant", APISlots: 2}
}

var profiles = map[string]func() Profile{
	"cvat-default": cvatDefault,
	"instant":      instant,
}

// LookupProfile returns the named profile ("cvat-default" or "instant").
func LookupProfile(name string) (Profile, error) {
	f, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %v)", name, ProfileNames())
	}
	return f(), nil
}

// ProfileNames lists the known profile names, sorted.
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

func (l *lockedRand) shuffle(n int, swap func(i, j int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r.Shuffle(n, swap)
}
