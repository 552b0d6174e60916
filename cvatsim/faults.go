package cvatsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults is the fault injection of the emulator: each field is the probability, in [0, 1], that one
// opportunity of its kind goes wrong. The zero value injects nothing. Get one from ParseFaults.
//
// HTTP faults hit every /api request (never /_cvatsim/) BEFORE its handler runs, so a request answered
// with a fault had no effect: a POST that got 502 created nothing, and retrying it is safe. (The "lost
// response" case, where the effect happened but the client saw an error, is not injected; a client timeout
// during a spike produces it naturally.) Work the emulator accepted is never lost: a task whose POST got 201
// exists until deleted, and an upload that got 202 always ends finished or failed.
type Faults struct {
	// HTTP5xx answers 502, 503 or 504 (evenly) with a proxy's HTML page and no X-Request-Id, as nginx does
	// when Django is unreachable (API.md §1.3).
	HTTP5xx float64
	// HTTP429 answers 429 with Retry-After: 1 and DRF's throttling detail.
	HTTP429 float64
	// Reset closes the connection (TCP RST where possible) without any response.
	Reset float64
	// Spike delays the response by SpikeDelay after the handler ran.
	Spike      float64
	SpikeDelay time.Duration
	// Redis503 answers GET /api/requests and /api/requests/{id} with 503 "Redis service is not available"
	// (a JSON string, API.md §6.1).
	Redis503 float64
	// ProcFail fails an import job once it started, with an OSError like a full disk.
	ProcFail float64
	// Expire makes a request that finished successfully expire at once: GET /api/requests/{id} answers 404
	// from then on, as if the 500 s TTL had passed (API.md §6.1).
	Expire float64
	// HookDrop loses a webhook delivery: nothing is sent and no delivery row is written (a lost RQ job).
	HookDrop float64
	// HookDup sends a webhook delivery twice in a row (an RQ job run again).
	HookDup float64
	// HookDelay puts a webhook delivery back at the end of the queue after HookDelayBy, so later events
	// overtake it.
	HookDelay   float64
	HookDelayBy time.Duration
	// HookBadSig signs a delivery with a wrong X-Signature-256. A receiver that rejects it with 401 loses the
	// event: CVAT retries only >= 500, 408 and 429 (API.md §8.6).
	HookBadSig float64
}

// Default delays of ParseFaults when "spike=P" or "hookdelay=P" come without a duration.
const (
	DefaultSpikeDelay  = 500 * time.Millisecond
	DefaultHookDelayBy = 2 * time.Second
)

// faultKey describes one key of the fault spec.
type faultKey struct {
	name  string
	doc   string
	prob  func(*Faults) *float64
	delay func(*Faults) *time.Duration // nil: the key takes no duration
	def   time.Duration
}

// faultKeys is the spec syntax, in canonical order.
var faultKeys = []faultKey{
	{name: "http5xx", doc: "502/503/504 from the proxy before the handler", prob: func(f *Faults) *float64 { return &f.HTTP5xx }},
	{name: "http429", doc: "429 with Retry-After: 1 before the handler", prob: func(f *Faults) *float64 { return &f.HTTP429 }},
	{name: "reset", doc: "connection closed without a response", prob: func(f *Faults) *float64 { return &f.Reset }},
	{name: "spike", doc: "extra latency on the response (P:DURATION)", prob: func(f *Faults) *float64 { return &f.Spike },
		delay: func(f *Faults) *time.Duration { return &f.SpikeDelay }, def: DefaultSpikeDelay},
	{name: "redis503", doc: "GET /api/requests* answers 503 Redis unavailable", prob: func(f *Faults) *float64 { return &f.Redis503 }},
	{name: "procfail", doc: "the import job fails (OSError)", prob: func(f *Faults) *float64 { return &f.ProcFail }},
	{name: "expire", doc: "a finished request expires at once (404)", prob: func(f *Faults) *float64 { return &f.Expire }},
	{name: "hookdrop", doc: "a webhook delivery is lost", prob: func(f *Faults) *float64 { return &f.HookDrop }},
	{name: "hookdup", doc: "a webhook delivery is sent twice", prob: func(f *Faults) *float64 { return &f.HookDup }},
	{name: "hookdelay", doc: "a webhook delivery is requeued after a delay (P:DURATION)", prob: func(f *Faults) *float64 { return &f.HookDelay },
		delay: func(f *Faults) *time.Duration { return &f.HookDelayBy }, def: DefaultHookDelayBy},
	{name: "hookbadsig", doc: "a webhook delivery carries a wrong signature", prob: func(f *Faults) *float64 { return &f.HookBadSig }},
}

// faultProfiles are the named mixes of ParseFaults.
var faultProfiles = map[string]string{
	"none": "",
	// flaky: a production server on a bad day; a few percent of everything.
	"flaky": "http5xx=0.02,http429=0.01,reset=0.005,spike=0.05:500ms,redis503=0.01,procfail=0.02,expire=0.02," +
		"hookdrop=0.05,hookdup=0.05,hookdelay=0.05:2s,hookbadsig=0.02",
	// chaos: the heavy mix of the robustness tests; every fault often.
	"chaos": "http5xx=0.2,http429=0.1,reset=0.05,spike=0.05:200ms,redis503=0.1,procfail=0.1,expire=0.1," +
		"hookdrop=0.3,hookdup=0.2,hookdelay=0.1:1s,hookbadsig=0.1",
}

// FaultKeys lists the keys of the fault spec in canonical order.
func FaultKeys() []string {
	out := make([]string, len(faultKeys))
	for i, k := range faultKeys {
		out[i] = k.name
	}
	return out
}

// FaultProfileNames lists the named fault mixes, sorted.
func FaultProfileNames() []string {
	out := make([]string, 0, len(faultProfiles))
	for k := range faultProfiles {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// FaultProfile returns the spec a named mix expands to.
func FaultProfile(name string) (string, bool) {
	s, ok := faultProfiles[name]
	return s, ok
}

// FaultSyntax is a one-paragraph description of the spec, for --help texts.
func FaultSyntax() string {
	return "comma-separated KEY=P (probability in [0,1]; spike and hookdelay take P:DURATION, e.g. spike=0.05:500ms) " +
		"or profile names (" + strings.Join(FaultProfileNames(), ", ") + "), later items override earlier ones; keys: " +
		strings.Join(FaultKeys(), ", ")
}

// ParseFaults parses a fault spec: comma-separated items, each a profile name ("none", "flaky", "chaos") or
// KEY=P with P a probability in [0, 1]; spike and hookdelay also take KEY=P:DURATION (Go syntax, positive;
// default 500ms and 2s). Later items override earlier ones, so "flaky,procfail=0" is the flaky mix without
// processing failures. The empty spec injects nothing.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	if err := parseFaultsInto(&f, spec, true); err != nil {
		return Faults{}, err
	}
	return f, f.Validate()
}

func parseFaultsInto(f *Faults, spec string, allowProfiles bool) error {
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !hasVal {
			p, ok := faultProfiles[key]
			if !ok || !allowProfiles {
				return fmt.Errorf("fault spec item %q: not KEY=P nor a profile (keys: %s; profiles: %s)",
					item, strings.Join(FaultKeys(), ", "), strings.Join(FaultProfileNames(), ", "))
			}
			if err := parseFaultsInto(f, p, false); err != nil {
				return fmt.Errorf("fault profile %s: %w", key, err)
			}
			continue
		}
		i := slices.IndexFunc(faultKeys, func(k faultKey) bool { return k.name == key })
		if i < 0 {
			return fmt.Errorf("fault spec item %q: unknown key %q (valid: %s)", item, key, strings.Join(FaultKeys(), ", "))
		}
		k := faultKeys[i]
		ps, ds, hasDur := strings.Cut(strings.TrimSpace(val), ":")
		p, err := strconv.ParseFloat(strings.TrimSpace(ps), 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 1 {
			return fmt.Errorf("fault spec item %q: probability %q is not a number in [0, 1] (valid keys: %s)",
				item, ps, strings.Join(FaultKeys(), ", "))
		}
		*k.prob(f) = p
		switch {
		case hasDur && k.delay == nil:
			return fmt.Errorf("fault spec item %q: %s takes no duration (only spike and hookdelay do)", item, key)
		case hasDur:
			d, err := time.ParseDuration(strings.TrimSpace(ds))
			if err != nil || d <= 0 {
				return fmt.Errorf("fault spec item %q: duration %q is not a positive Go duration like 500ms", item, ds)
			}
			*k.delay(f) = d
		case k.delay != nil:
			*k.delay(f) = k.def
		}
	}
	return nil
}

// Validate reports every probability outside [0, 1] and every missing delay of an enabled spike or
// hookdelay.
func (f Faults) Validate() error {
	var errs []error
	for _, k := range faultKeys {
		p := *k.prob(&f)
		if math.IsNaN(p) || p < 0 || p > 1 {
			errs = append(errs, fmt.Errorf("fault %s: probability %v is outside [0, 1]", k.name, p))
		}
		if k.delay != nil && p > 0 && *k.delay(&f) <= 0 {
			errs = append(errs, fmt.Errorf("fault %s: delay %v must be positive", k.name, *k.delay(&f)))
		}
	}
	return errors.Join(errs...)
}

// IsZero reports whether f injects nothing.
func (f Faults) IsZero() bool {
	for _, k := range faultKeys {
		if *k.prob(&f) > 0 {
			return false
		}
	}
	return true
}

// String returns the canonical spec of f ("none" for no faults); ParseFaults(f.String()) == f.
func (f Faults) String() string {
	var parts []string
	for _, k := range faultKeys {
		p := *k.prob(&f)
		if p <= 0 {
			continue
		}
		s := k.name + "=" + strconv.FormatFloat(p, 'g', -1, 64)
		if k.delay != nil {
			s += ":" + k.delay(&f).String()
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// faultState is the live fault injection of a Server: its own seeded generator, so enabling faults does not
// change the latency samples, and a count per injected fault.
type faultState struct {
	mu     sync.Mutex
	f      Faults
	rng    *rand.Rand
	counts map[string]int
}

func newFaultState(f Faults, seed int64) *faultState {
	return &faultState{f: f, rng: rand.New(rand.NewPCG(uint64(seed), 0xfa017)), counts: map[string]int{}}
}

// hit draws whether the fault called name with probability p(f) happens, and counts it. Nothing is drawn
// for a disabled fault, so a fault run draws exactly as many numbers as it has opportunities.
func (fs *faultState) hit(name string, p func(Faults) float64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	prob := p(fs.f)
	if prob <= 0 || fs.rng.Float64() >= prob {
		return false
	}
	fs.counts[name]++
	return true
}

// pick returns a uniform index in [0, n).
func (fs *faultState) pick(n int) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.rng.IntN(n)
}

func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.f
}

// SetFaults replaces the fault injection while the server runs, e.g. after a client logged in, so that setup
// is not part of the faulted run. It returns the validation error of f and changes nothing then.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("cvatsim faults: %w", err)
	}
	s.faults.mu.Lock()
	s.faults.f = f
	s.faults.mu.Unlock()
	return nil
}

// FaultCounts returns how often each fault key was injected so far (keys as in the spec; only keys that
// happened). Tests and `cvatbench sim --verbose` use it to show that a fault run really faulted.
func (s *Server) FaultCounts() map[string]int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]int, len(s.faults.counts))
	for k, v := range s.faults.counts {
		out[k] = v
	}
	return out
}

// proxyPages are the HTML pages nginx writes for upstream failures.
var proxyPages = map[int]string{
	http.StatusBadGateway:         "502 Bad Gateway",
	http.StatusServiceUnavailable: "503 Service Temporarily Unavailable",
	http.StatusGatewayTimeout:     "504 Gateway Time-out",
}

// injectHTTPFault applies the HTTP faults to one /api request before routing. It reports whether it answered
// (or dropped) the request, and otherwise the extra latency to add to the response.
func (s *Server) injectHTTPFault(w http.ResponseWriter, r *http.Request) (handled bool, spike time.Duration) {
	fs := s.faults
	what := r.Method + " " + r.URL.Path
	switch {
	case fs.hit("reset", func(f Faults) float64 { return f.Reset }):
		s.opts.Logf("cvatsim: fault reset %s", what)
		resetConn(w)
		return true, 0
	case fs.hit("http5xx", func(f Faults) float64 { return f.HTTP5xx }):
		status := []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}[fs.pick(3)]
		s.opts.Logf("cvatsim: fault http5xx %d %s", status, what)
		title := proxyPages[status]
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", title, title)
		}
		return true, 0
	case fs.hit("http429", func(f Faults) float64 { return f.HTTP429 }):
		s.opts.Logf("cvatsim: fault http429 %s", what)
		w.Header().Set("X-Request-Id", uuid4()) // DRF's throttle answers from Django
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", mediaType)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(encodeDRF(obj{{"detail", "Request was throttled. Expected available in 1 second."}}))
		return true, 0
	case r.Method == http.MethodGet && isRequestsPath(r.URL.Path) &&
		fs.hit("redis503", func(f Faults) float64 { return f.Redis503 }):
		s.opts.Logf("cvatsim: fault redis503 %s", what)
		w.Header().Set("X-Request-Id", uuid4())
		w.Header().Set("Content-Type", mediaType)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(encodeDRF("Redis service is not available"))
		return true, 0
	}
	if fs.hit("spike", func(f Faults) float64 { return f.Spike }) {
		spike = fs.get().SpikeDelay
		s.opts.Logf("cvatsim: fault spike %v %s", spike, what)
	}
	return false, spike
}

// isRequestsPath reports /api/requests and /api/requests/{id}.
func isRequestsPath(p string) bool {
	return p == "/api/requests" || strings.HasPrefix(p, "/api/requests/")
}

// resetConn drops the connection without writing anything: a TCP RST when the connection is TCP, so the
// client sees "connection reset by peer". Writers that cannot hijack get net/http's silent abort.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // serveHTTP re-panics it; net/http closes the connection quietly
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// procFailMessage is what a failed import job reports under the procfail fault: the formatted exception of a
// full disk while the worker writes the media (API.md §6.1 message format).
const procFailMessage = "OSError: [Errno 28] No space left on device\n"
