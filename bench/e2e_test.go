package bench_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/cvatsim"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
	"github.com/cvatbench/cvatbench/report"
	"github.com/cvatbench/cvatbench/strategies"
)

// fastClock keeps real time but caps every wait at 1 ms, so strategies with multi-second schedules (sdk, ui)
// finish at once against the instant emulator.
type fastClock struct{}

func (fastClock) Now() time.Time                         { return time.Now() }
func (fastClock) After(d time.Duration) <-chan time.Time { return time.After(min(d, time.Millisecond)) }

func newSim(t *testing.T) (*cvatsim.Server, string) {
	t.Helper()
	return newSimBehind(t, nil)
}

// newSimBehind is newSim with wrap (nil: none) between the test's HTTP server and the schema-checked emulator,
// to watch what the run sends and gets.
func newSimBehind(t *testing.T, wrap func(http.Handler) http.Handler) (*cvatsim.Server, string) {
	t.Helper()
	prof, err := cvatsim.LookupProfile("instant")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cvatsim.New(cvatsim.Options{Profile: prof, Users: []cvatsim.UserSpec{{Username: "other", Password: "other-pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = schemacheck.Load(t).Middleware(t, srv.Handler()) // every response checked against CVAT's schema
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs.URL
}

func loginClient(t testing.TB, base, user, password string) *cvat.Client {
	t.Helper()
	key, err := cvat.Login(context.Background(), base, user, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runOnSim runs cfg with client against srv, on the fast clock with the emulator's timeline as ground truth,
// and loads what the run saved.
func runOnSim(t *testing.T, srv *cvatsim.Server, client *cvat.Client, cfg bench.Config) (bench.Result, *report.Run) {
	t.Helper()
	r, err := bench.New(cfg, bench.WithClient(client), bench.WithClock(fastClock{}),
		bench.WithGroundTruth(func(_ context.Context, id int) (time.Time, bool, error) {
			tl, ok := srv.Timeline(id)
			return tl.JobsVisibleAt, ok && !tl.JobsVisibleAt.IsZero(), nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	run, err := report.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return res, run
}

func TestRunAgainstEmulator(t *testing.T) {
	srv, base := newSim(t)
	admin := loginClient(t, base, "admin", "admin")
	other := loginClient(t, base, "other", "other-pw")
	ctx := context.Background()
	foreign, err := other.CreateTask(ctx, cvat.TaskSpec{Name: "cvatbench-not-ours", Labels: []cvat.Label{{Name: "car"}}})
	if err != nil {
		t.Fatal(err)
	}

	cfg := bench.DefaultConfig()
	cfg.Strategies = strategies.Defaults()
	cfg.TasksPerStrategy = 1
	cfg.Concurrency = 3
	cfg.Images = 4
	cfg.ImageSize = "16x12"
	cfg.SegmentSizes = []int{2}
	cfg.Timeout = 30 * time.Second
	cfg.PollInterval, cfg.SDKPeriod, cfg.CLIPeriod = time.Millisecond, time.Millisecond, time.Millisecond
	cfg.BackoffInitial, cfg.BackoffMax, cfg.SafetyPoll = time.Millisecond, 2*time.Millisecond, 50*time.Millisecond
	cfg.WebhookListen = "127.0.0.1:0"
	cfg.OutDir = t.TempDir()
	cfg.Chunks = record.ChunksFirst // the probe's calls, schema-checked, must stay out of every strategy's count
	obs := &countingObserver{calls: map[string]int{}}
	r, err := bench.New(cfg, bench.WithClient(admin), bench.WithClock(fastClock{}), bench.WithObserver(obs),
		bench.WithGroundTruth(func(ctx context.Context, id int) (time.Time, bool, error) {
			tl, err := srv.WaitJobsVisible(ctx, id)
			return tl.JobsVisibleAt, err == nil && !tl.JobsVisibleAt.IsZero(), err
		}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run, err := report.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Trials) != cfg.Trials() || res.Errors != 0 || len(res.CleanupErrors) != 0 {
		t.Fatalf("result %+v", res)
	}
	if obs.started != cfg.Trials() || obs.finished != cfg.Trials() {
		t.Errorf("observer saw %d started, %d finished, want %d", obs.started, obs.finished, cfg.Trials())
	}
	for _, tr := range run.Trials {
		t.Run(tr.Strategy, func(t *testing.T) {
			// The observer sees every call of the trial: create, upload, the wait, and any look after it.
			if got := obs.calls[tr.Strategy]; got < tr.Requests+2 {
				t.Errorf("observer saw %d calls, trial counted %d waiting", got, tr.Requests)
			}
			if tr.Result != record.ResultOK || len(tr.JobIDs) != 2 {
				t.Fatalf("result %s (%s), jobs %v", tr.Result, tr.Error, tr.JobIDs)
			}
			seq := []*time.Time{tr.CreateSentAt, tr.TaskCreatedAt, tr.UploadDoneAt, tr.JobsObtainedAt}
			for i := 1; i < len(seq); i++ {
				if seq[i] == nil || seq[i-1] == nil || seq[i].Before(*seq[i-1]) {
					t.Fatalf("timestamps out of order: %v", seq)
				}
			}
			if tr.JobsVisibleSource != record.VisibleFromEmulator || tr.JobsVisibleAt == nil || tr.JobsVisibleAt.After(*tr.JobsObtainedAt) {
				t.Errorf("jobs visible %v (%s) after obtained %v", tr.JobsVisibleAt, tr.JobsVisibleSource, tr.JobsObtainedAt)
			}
			if tr.RequestCreatedAt == nil || tr.RequestFinishedAt == nil || tr.ServerProcessingMs == nil {
				t.Errorf("server dates missing: %+v", tr)
			}
			// Server and client share one clock: the true offset is 0 and must lie within the bound (plus the
			// microsecond rounding of server dates).
			if tr.ClockOffsetMs == nil || abs(*tr.ClockOffsetMs) > *tr.ClockOffsetErrorMs+0.01 {
				t.Errorf("offset %v ms beyond ±%v", tr.ClockOffsetMs, tr.ClockOffsetErrorMs)
			}
			total := 0
			for _, n := range tr.RequestsByEndpoint {
				total += n
			}
			if total != tr.Requests || (tr.Strategy != "webhook" && tr.Requests == 0) {
				t.Errorf("requests %d, by endpoint %v", tr.Requests, tr.RequestsByEndpoint)
			}
			for ep := range tr.RequestsByEndpoint {
				if strings.Contains(ep, "/data") {
					t.Errorf("the strategy's requests count %q, a call of the chunk probe", ep)
				}
			}
			// Chunk 0 of the second job (frames 2-3), read cold and warm, scored against the originals.
			if p := tr.Chunks; p == nil || p.Error != "" || p.JobID != tr.JobIDs[1] || p.Frames != 2 || len(p.SSIM) != 2 ||
				p.ColdMs == nil || p.WarmMs == nil || p.Attempts < 3 {
				t.Errorf("chunk probe %+v", p)
			}
		})
	}
	if n := srv.TaskCount(); n != 1 {
		t.Errorf("%d tasks left on the emulator, want only the foreign one", n)
	}
	if _, err := admin.GetTask(ctx, foreign.ID); err != nil {
		t.Errorf("foreign task: %v", err)
	}
	projects, err := admin.ListProjects(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != 0 {
		t.Errorf("%d projects left: %v", len(projects), projects)
	}
	hooks, err := admin.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 0 {
		t.Errorf("%d webhooks left", len(hooks))
	}
}

type countingObserver struct {
	mu                sync.Mutex
	started, finished int
	calls             map[string]int
}

func (o *countingObserver) TrialStarted(string) { o.mu.Lock(); o.started++; o.mu.Unlock() }
func (o *countingObserver) APICall(s string, _ cvat.Call) {
	o.mu.Lock()
	o.calls[s]++
	o.mu.Unlock()
}
func (o *countingObserver) TrialFinished(record.Trial) { o.mu.Lock(); o.finished++; o.mu.Unlock() }

func abs(v float64) float64 { return max(v, -v) }

// A webhook receiver port in use fails the run before it creates anything on the server.
func TestBusyWebhookPortFailsBeforeAnyCreate(t *testing.T) {
	_, base := newSim(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	key, err := cvat.Login(context.Background(), base, "admin", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	client, writes := writeCountingClient(t, base, cvat.Token(key))
	cfg := bench.DefaultConfig()
	cfg.Strategies = []string{"poll", "webhook"}
	cfg.TasksPerStrategy, cfg.Concurrency = 1, 1
	cfg.WebhookListen = busy.Addr().String()
	cfg.OutDir = t.TempDir()
	r, err := bench.New(cfg, bench.WithClient(client))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "webhook receiver") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run = %v, want the busy receiver port", err)
	}
	if len(writes()) != 0 || res.Dir != "" {
		t.Errorf("writes %v, results dir %q: want nothing created or written", writes(), res.Dir)
	}
}

// A read-only access token fails the run up front, naming the token, before anything is written.
func TestReadOnlyTokenFailsBeforeAnyWrite(t *testing.T) {
	_, base := newSim(t)
	mk := func(body string) string {
		req, _ := http.NewRequest("POST", base+"/api/auth/access_tokens", strings.NewReader(body))
		req.SetBasicAuth("admin", "admin")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/vnd.cvat+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Value string `json:"value"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 {
			t.Fatalf("create token: %d %v", resp.StatusCode, err)
		}
		return out.Value
	}
	for _, tc := range []struct {
		body     string
		readOnly bool
	}{{`{"name":"ro-default"}`, true}, {`{"name":"rw","read_only":false}`, false}} {
		client, writes := writeCountingClient(t, base, cvat.Bearer(mk(tc.body)))
		cfg := bench.DefaultConfig()
		cfg.Strategies, cfg.TasksPerStrategy, cfg.Concurrency, cfg.Images, cfg.ImageSize = []string{"poll"}, 1, 1, 1, "16x16"
		cfg.PollInterval = time.Millisecond
		cfg.OutDir = t.TempDir()
		r, err := bench.New(cfg, bench.WithClient(client), bench.WithClock(fastClock{}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(context.Background())
		switch {
		case tc.readOnly && (err == nil || !strings.Contains(err.Error(), `access token "ro-default" is read-only`) || len(writes()) != 0):
			t.Errorf("read-only token: Run = %v, writes %v; want the read-only error before any write", err, writes())
		case !tc.readOnly && err != nil:
			t.Errorf("writable token: Run = %v", err)
		}
	}
}

// writeCountingClient is a client of base whose every non-GET call is listed by writes.
func writeCountingClient(t *testing.T, base string, auth cvat.Auth) (*cvat.Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var list []string
	client, err := cvat.New(cvat.Config{BaseURL: base, Auth: auth, OnCall: func(c cvat.Call) {
		if c.Method != "GET" {
			mu.Lock()
			list = append(list, c.Method+" "+c.Endpoint)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return client, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), list...)
	}
}

// orgRecorder notes, for every creation the emulator answered, the organization of the created object.
type orgRecorder struct {
	next    http.Handler
	mu      sync.Mutex
	created map[string][]any // path -> organization of each object created there
}

func (o *orgRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	o.next.ServeHTTP(rec, r)
	if r.Method == http.MethodPost && rec.Code == http.StatusCreated {
		var v struct {
			Organization any `json:"organization"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &v) == nil {
			o.mu.Lock()
			o.created[r.URL.Path] = append(o.created[r.URL.Path], v.Organization)
			o.mu.Unlock()
		}
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestRunInOrganization runs the strategies inside an organization (cvat.Config.Org, what run --org sets):
// every project, task and webhook of the run is created in it, every trial succeeds, and the cleanup leaves
// the organization empty and the personal sandbox's foreign task alone.
func TestRunInOrganization(t *testing.T) {
	orgs := &orgRecorder{created: map[string][]any{}}
	_, base := newSimBehind(t, func(h http.Handler) http.Handler { orgs.next = h; return orgs })
	ctx := context.Background()
	key, err := cvat.Login(ctx, base, "admin", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	sandbox, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key)})
	if err != nil {
		t.Fatal(err)
	}
	org, err := sandbox.CreateOrganization(ctx, "lab", "the lab")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.CreateTask(ctx, cvat.TaskSpec{Name: "cvatbench-not-ours", Labels: []cvat.Label{{Name: "car"}}}); err != nil {
		t.Fatal(err)
	}
	inOrg, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(key), Org: "lab"})
	if err != nil {
		t.Fatal(err)
	}

	cfg := bench.DefaultConfig()
	cfg.Strategies = []string{"poll", "sdk", "backoff", "webhook"}
	cfg.TasksPerStrategy, cfg.Concurrency, cfg.Images, cfg.ImageSize = 2, 2, 2, "16x12"
	cfg.Timeout = 30 * time.Second
	cfg.PollInterval, cfg.SDKPeriod = time.Millisecond, time.Millisecond
	cfg.BackoffInitial, cfg.BackoffMax, cfg.SafetyPoll = time.Millisecond, 2*time.Millisecond, 50*time.Millisecond
	cfg.WebhookListen = "127.0.0.1:0"
	cfg.Target, cfg.Org, cfg.OutDir = base, "lab", t.TempDir()
	r, err := bench.New(cfg, bench.WithClient(inOrg), bench.WithClock(fastClock{}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(ctx)
	if err != nil || res.Errors != 0 || res.Recorded != cfg.Trials() || len(res.CleanupErrors) != 0 {
		t.Fatalf("run: %v, result %+v", err, res)
	}
	orgs.mu.Lock()
	defer orgs.mu.Unlock()
	for _, path := range []string{"/api/projects", "/api/tasks", "/api/webhooks"} {
		got := orgs.created[path]
		if path == "/api/tasks" {
			got = got[1:] // the foreign sandbox task came first
		}
		if len(got) == 0 {
			t.Errorf("nothing created at %s", path)
		}
		for _, o := range got {
			if o != float64(org.ID) {
				t.Errorf("%s created in organization %v, want %d", path, o, org.ID)
			}
		}
	}
	for _, list := range []func() (int, error){
		func() (int, error) { ts, err := inOrg.ListTasks(ctx, ""); return len(ts), err },
		func() (int, error) { ps, err := inOrg.ListProjects(ctx, ""); return len(ps), err },
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("left in the organization: %d (%v)", n, err)
		}
	}
	if ts, err := sandbox.ListTasks(ctx, ""); err != nil || len(ts) != 1 || ts[0].Name != "cvatbench-not-ours" {
		t.Errorf("sandbox after the run: %v (%v), want only the foreign task", ts, err)
	}
}
