// Package cvatsim is an embedded emulator of the CVAT 2.73.0 REST API: the
// parts cvatbench touches, with the documented behaviour of the server
// (API.md) and a timing model calibrated on public figures (CALIBRATION.md).
// Tests mount New(...).Handler() in httptest; `cvatbench sim` serves it.
package cvatsim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Version is the CVAT version the emulator reproduces.
const Version = "2.73.0"

// Defaults of Options.
const (
	DefaultUsername      = "admin"
	DefaultPassword      = "admin"
	DefaultImportWorkers = 2
	DefaultRequestTTL    = 500 * time.Second // RQ DEFAULT_RESULT_TTL (API.md §6.1)
	DefaultMaxBodyBytes  = 1 << 30           // nginx client_max_body_size 1G (API.md §5.2)
	DefaultMaxJobs       = 5000              // CVAT_MAX_JOBS_PER_TASK
)

// DefaultWebhookRetryDelays is CVAT_SEND_WEBHOOK_TASK_RETRIES (API.md §8.6).
var DefaultWebhookRetryDelays = []time.Duration{
	5 * time.Second, 300 * time.Second, 1800 * time.Second, 10800 * time.Second,
	86400 * time.Second, 86400 * time.Second, 86400 * time.Second, 86400 * time.Second,
}

// UserSpec is an extra account of the emulated server.
type UserSpec struct {
	Username, Password string
}

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	// Profile holds the latency terms; get one from LookupProfile and adjust
	// fields as needed. The zero Profile has no latency and unlimited API slots.
	Profile              Profile
	Username, Password   string     // default "admin"/"admin"; this user is a superuser
	Users                []UserSpec // extra, non-admin users
	ImportWorkers        int        // default 2
	OneRunningJobPerUser bool       // ONE_RUNNING_JOB_IN_QUEUE_PER_USER
	AllowStaticCache     bool       // CVAT_ALLOW_STATIC_CACHE
	RequestTTL           time.Duration
	WebhookRetryDelays   []time.Duration // nil: DefaultWebhookRetryDelays; empty non-nil: no retries
	Clock                Clock           // default real clock
	// WebhookDial, when set, opens the connections of webhook deliveries instead of TCP (a test's in-memory
	// network).
	WebhookDial func(ctx context.Context, network, addr string) (net.Conn, error)
	Seed        int64
	Logf        func(format string, args ...any) // optional

	// Extensions beyond the contract (all optional).

	// MaxBodyBytes caps request bodies (413 above); default 1 GiB.
	MaxBodyBytes int64
	// MaxJobsPerTask is the job limit of a task; default 5000.
	MaxJobsPerTask int
	// OnRequestStatus, if set, is called after every status change of a
	// creation request, in order, from the goroutine that made it. Tests use it
	// to observe the lifecycle without polling. It must not block for long.
	OnRequestStatus func(rqID, status string)

	// Faults injects HTTP, processing and webhook faults (faults.go); the zero value injects nothing. The
	// faults draw from their own generator seeded by Seed, so a fault run against a sequential client
	// repeats exactly.
	Faults Faults

	// WhatIf switches on behaviours no CVAT release has (whatif.go); the zero value is CVAT 2.73.
	WhatIf WhatIf
}

// Server is one emulated CVAT instance. Its state lives in memory.
type Server struct {
	opts        Options
	prof        Profile
	clk         Clock
	hookClients [2]*http.Client
	rng         *lockedRand
	// bgRng draws the background arrivals, apart from rng so that a background load does not change the
	// latencies drawn for the same seed.
	bgRng *lockedRand
	ttl   time.Duration

	faults *faultState
	jpegs  jpegMemo // re-encoded frames, shared by every task (encode.go)

	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // API request slots; nil: unlimited
	wg     sync.WaitGroup

	mu        sync.Mutex
	notifyMu  sync.Mutex // orders OnRequestStatus calls; see unlockAndNotify
	queueCond *sync.Cond // signalled when the import queue or running set changes
	closed    bool

	users       []*user
	sessions    map[string]*session
	pats        map[string]*pat
	projects    map[int]*project
	tasks       map[int]*task
	jobs        map[int]*job
	requests    map[string]*request
	webhooks    map[int]*webhook
	orgs        map[int]*org
	members     []*membership
	delivs      []*delivery
	queue       []*request
	running     map[int]int // user id -> running creations (one-job-per-user)
	processing  int         // creations between pick-up and commit, background ones included
	chunks      map[chunkKey]*chunkEntry
	tls         map[int]*timeline // ground truth per task id; kept after deletion (keptDeletedTimelines)
	deletedTLs  []int             // deleted task ids whose timelines are kept: a ring
	deletedNext int               // next slot of deletedTLs to reuse
	timers      map[int]func() bool
	timerSeq    int
	reqSeq      int
	lastID      map[string]int
	whQueue     []*whItem
	whCond      *sync.Cond
	whRunning   bool
}

// New validates opts and starts the import workers and the webhook worker.
func New(opts Options) (*Server, error) {
	var errs []error
	if opts.ImportWorkers < 0 {
		errs = append(errs, fmt.Errorf("import workers %d: must be positive", opts.ImportWorkers))
	}
	if opts.RequestTTL < 0 {
		errs = append(errs, fmt.Errorf("request ttl %v: must be positive", opts.RequestTTL))
	}
	if opts.MaxBodyBytes < 0 || opts.MaxJobsPerTask < 0 || opts.Profile.APISlots < 0 {
		errs = append(errs, errors.New("negative limits are not allowed"))
	}
	for i, d := range opts.WebhookRetryDelays {
		if d < 0 {
			errs = append(errs, fmt.Errorf("webhook retry delay %d is negative", i))
		}
	}
	if err := opts.Faults.Validate(); err != nil {
		errs = append(errs, err)
	}
	if opts.ImportWorkers == 0 && opts.Profile.ImportWorkers > 0 {
		opts.ImportWorkers = opts.Profile.ImportWorkers
	}
	if err := opts.Profile.Validate(); err != nil && opts.Profile.Background.Utilization(max(opts.ImportWorkers, 1)) >= 0.98 {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	seen[opts.Username] = true
	for _, u := range opts.Users {
		if u.Username == "" || u.Password == "" {
			errs = append(errs, errors.New("extra users need a username and a password"))
		} else if seen[u.Username] {
			errs = append(errs, fmt.Errorf("user %q is defined twice", u.Username))
		}
		seen[u.Username] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cvatsim options: %w", err)
	}
	if opts.ImportWorkers == 0 {
		opts.ImportWorkers = DefaultImportWorkers
	}
	if opts.RequestTTL == 0 {
		opts.RequestTTL = DefaultRequestTTL
	}
	if opts.WebhookRetryDelays == nil {
		opts.WebhookRetryDelays = DefaultWebhookRetryDelays
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxJobsPerTask == 0 {
		opts.MaxJobsPerTask = DefaultMaxJobs
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Server{
		opts:        opts,
		prof:        opts.Profile,
		clk:         opts.Clock,
		hookClients: webhookClients,
		rng:         newLockedRand(opts.Seed),
		bgRng:       newLockedRand(opts.Seed ^ 0x6267),
		faults:      newFaultState(opts.Faults, opts.Seed),
		ttl:         opts.RequestTTL,
		sessions:    map[string]*session{},
		pats:        map[string]*pat{},
		projects:    map[int]*project{},
		tasks:       map[int]*task{},
		jobs:        map[int]*job{},
		requests:    map[string]*request{},
		webhooks:    map[int]*webhook{},
		orgs:        map[int]*org{},
		running:     map[int]int{},
		chunks:      map[chunkKey]*chunkEntry{},
		tls:         map[int]*timeline{},
		timers:      map[int]func() bool{},
		lastID:      map[string]int{},
	}
	if opts.WebhookDial != nil {
		s.hookClients = newWebhookClients(opts.WebhookDial)
	}
	s.queueCond = sync.NewCond(&s.mu)
	s.whCond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if n := s.prof.APISlots; n > 0 {
		s.slots = make(chan struct{}, n)
	}
	now := s.now()
	s.addUser(opts.Username, opts.Password, true, now)
	for _, u := range opts.Users {
		s.addUser(u.Username, u.Password, false, now)
	}
	for i := 0; i < opts.ImportWorkers; i++ {
		s.wg.Add(1)
		go s.importWorker()
	}
	s.wg.Add(1)
	go s.webhookWorker()
	s.scheduleBackground()
	return s, nil
}

func (s *Server) addUser(name, password string, super bool, now time.Time) {
	u := &user{
		id: s.nextID("user"), username: name, password: password, email: name + "@example.com",
		superuser: super, joined: now,
	}
	if super {
		u.first, u.last = "Admin", "User"
	}
	s.users = append(s.users, u)
}

// nextID returns the next value of a database sequence. Callers hold s.mu (or
// are in New).
func (s *Server) nextID(seq string) int {
	s.lastID[seq]++
	return s.lastID[seq]
}

// Close stops the workers, pending timers and in-flight waits. It is safe to
// call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for id, stop := range s.timers {
		if stop != nil {
			stop()
		}
		delete(s.timers, id)
	}
	s.queueCond.Broadcast()
	s.whCond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	// Deliveries keep idle keep-alive connections to receivers; drop them so a closed server leaves no
	// connection goroutines behind.
	for _, c := range s.hookClients {
		c.CloseIdleConnections()
	}
}

// TaskCount returns the number of existing tasks.
func (s *Server) TaskCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tasks)
}

// afterFunc schedules f on the clock and remembers it so that Close can stop
// it. Callers must not hold s.mu. The timer is registered before the clock
// sees it: a clock may fire at once (a fake clock advanced by another
// goroutine, or a zero delay), and a timer registered only afterwards looked
// stale to its own callback, which then silently dropped f.
func (s *Server) afterFunc(d time.Duration, f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.timerSeq++
	id := s.timerSeq
	s.timers[id] = nil // pending: the stop function follows
	s.mu.Unlock()
	stop := s.clk.AfterFunc(d, func() {
		s.mu.Lock()
		_, live := s.timers[id]
		delete(s.timers, id)
		s.mu.Unlock()
		if live {
			f()
		}
	})
	s.mu.Lock()
	if _, pending := s.timers[id]; pending {
		s.timers[id] = stop
	} else if s.closed {
		stop() // Close dropped it before the stop function existed
	}
	s.mu.Unlock()
}

// wait sleeps d on the server clock; it returns early with an error when the
// server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	return sleep(ctx, s.clk, d)
}

// randomHex returns n random bytes in hex (keys, session ids, CSRF secrets).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const hx = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i] = hx[c>>4]
		out[2*i+1] = hx[c&0xf]
	}
	return string(out)
}

// uuid4 returns a random RFC 4122 version 4 UUID.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
