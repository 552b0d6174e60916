package prom_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cvatbench/cvatbench/bench/prom"
)

type gotRequest struct {
	method, path, user, password string
	families                     map[string]*dto.MetricFamily
}

// groupingKey normalises a Pushgateway path: the grouping key is a set, client_golang sends it in map order.
func groupingKey(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/metrics/"), "/")
	var pairs []string
	for i := 0; i+1 < len(parts); i += 2 {
		pairs = append(pairs, parts[i]+"="+parts[i+1])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// fakeGateway records what a Pushgateway would receive.
func fakeGateway(t *testing.T, status int) (*httptest.Server, func() []gotRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []gotRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := gotRequest{method: r.Method, path: groupingKey(r.URL.Path), families: map[string]*dto.MetricFamily{}}
		g.user, g.password, _ = r.BasicAuth()
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(r.Header))
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					break
				}
				g.families[mf.GetName()] = &mf
			}
		}
		mu.Lock()
		got = append(got, g)
		mu.Unlock()
		if status == 0 {
			if r.Method == http.MethodDelete {
				w.WriteHeader(http.StatusAccepted)
			}
			return
		}
		http.Error(w, "gateway says no", status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []gotRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]gotRequest(nil), got...)
	}
}

func TestPushGroupsPerStrategy(t *testing.T) {
	srv, got := fakeGateway(t, 0)
	gw, err := prom.NewPushgateway(strings.Replace(srv.URL, "http://", "http://bob:s3cret@", 1), "cvat.example:8080", nil)
	if err != nil {
		t.Fatal(err)
	}
	run := prom.NewRun(sampleRecords(), prom.RunInfo{Success: true, CompletedAt: time.Unix(100, 0)}, testBuild)
	if err := gw.Push(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if err := gw.Delete(context.Background(), run.Strategies()); err != nil {
		t.Fatal(err)
	}
	reqs := got()
	want := []struct{ method, path string }{
		{http.MethodPost, "job=cvatbench,strategy=poll,target=cvat.example:8080"},
		{http.MethodPost, "job=cvatbench,strategy=sdk,target=cvat.example:8080"},
		{http.MethodDelete, "job=cvatbench,strategy=poll,target=cvat.example:8080"},
		{http.MethodDelete, "job=cvatbench,strategy=sdk,target=cvat.example:8080"},
	}
	if len(reqs) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(reqs), len(want), reqs)
	}
	for i, w := range want {
		r := reqs[i]
		if r.method != w.method || r.path != w.path {
			t.Errorf("request %d: %s %s, want %s %s", i, r.method, r.path, w.method, w.path)
		}
		if r.user != "bob" || r.password != "s3cret" {
			t.Errorf("request %d: basic auth %q/%q, want the URL's user info", i, r.user, r.password)
		}
	}
	poll := reqs[0].families
	for _, name := range []string{prom.NameRunTimeToJobs, prom.NameRunDuration, prom.NameRunLastCompletion,
		prom.NameRunLastSuccess, prom.NameRunThresholdFailure, prom.NameBuildInfo} {
		if poll[name] == nil {
			t.Errorf("pushed group lacks %s (got %d families)", name, len(poll))
		}
	}
	if s := poll[prom.NameRunTimeToJobs]; s != nil {
		if n := s.GetMetric()[0].GetSummary().GetSampleCount(); n != 1000 {
			t.Errorf("pushed summary count = %d, want 1000", n)
		}
	}
}

// A shard pushes into groups of its own: two shards of one run never replace each other's metrics.
func TestPushShardGroups(t *testing.T) {
	srv, got := fakeGateway(t, 0)
	gw, err := prom.NewPushgateway(srv.URL, "emulator", nil)
	if err != nil {
		t.Fatal(err)
	}
	gw.SetShard(2)
	run := prom.NewRun(sampleRecords(), prom.RunInfo{Success: true, CompletedAt: time.Unix(100, 0)}, testBuild)
	if err := gw.Push(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	for _, r := range got() {
		if !strings.Contains(r.path, "shard=2") {
			t.Errorf("%s %s: no shard in the grouping key", r.method, r.path)
		}
	}
}

func TestPushErrorsKeepSecretsOut(t *testing.T) {
	srv, _ := fakeGateway(t, http.StatusInternalServerError)
	gw, err := prom.NewPushgateway(strings.Replace(srv.URL, "http://", "http://bob:s3cret@", 1), "emulator", nil)
	if err != nil {
		t.Fatal(err)
	}
	run := prom.NewRun(sampleRecords(), prom.RunInfo{}, testBuild)
	for name, err := range map[string]error{
		"push":   gw.Push(context.Background(), run),
		"delete": gw.Delete(context.Background(), []string{"poll"}),
	} {
		if err == nil {
			t.Errorf("%s: want an error from a 500", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s error leaks the password: %v", name, err)
		}
	}
}

func TestNewPushgatewayValidates(t *testing.T) {
	tests := []struct {
		name, url, target string
		ok                bool
	}{
		{"http", "http://127.0.0.1:9091", "emulator", true},
		{"https with path", "https://pgw.example/prefix", "emulator", true},
		{"no scheme", "127.0.0.1:9091", "emulator", false},
		{"ftp", "ftp://pgw.example", "emulator", false},
		{"no host", "http://", "emulator", false},
		{"empty target", "http://127.0.0.1:9091", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := prom.NewPushgateway(tc.url, tc.target, nil)
			if (err == nil) != tc.ok {
				t.Errorf("NewPushgateway(%q, %q) error = %v, want ok=%v", tc.url, tc.target, err, tc.ok)
			}
		})
	}
}

func TestWriteTextfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cvatbench.prom")
	completed := time.Unix(1767323045, 0)
	run := prom.NewRun(sampleRecords(), prom.RunInfo{Duration: 3 * time.Second, CompletedAt: completed}, testBuild)
	if err := prom.WriteTextfile(path, "emulator", run, nil); err != nil {
		t.Fatal(err)
	}
	fromFile := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(f)
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, name := range slices.Sorted(maps.Keys(mfs)) { // a registry gathers sorted; compare relies on it
			out = append(out, mfs[name])
		}
		return out, nil
	})
	want := `
# HELP cvatbench_run_duration_seconds Wall-clock duration of the whole run.
# TYPE cvatbench_run_duration_seconds gauge
cvatbench_run_duration_seconds{strategy="poll",target="emulator"} 3
cvatbench_run_duration_seconds{strategy="sdk",target="emulator"} 3
# HELP cvatbench_run_threshold_failures Thresholds the run violated.
# TYPE cvatbench_run_threshold_failures gauge
cvatbench_run_threshold_failures{strategy="poll",target="emulator"} 0
cvatbench_run_threshold_failures{strategy="sdk",target="emulator"} 0
# HELP cvatbench_build_info cvatbench build metadata; always 1.
# TYPE cvatbench_build_info gauge
cvatbench_build_info{commit="abc123",goversion="go1.26.8",target="emulator",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(fromFile, strings.NewReader(want),
		prom.NameRunDuration, prom.NameRunThresholdFailure, prom.NameBuildInfo); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(fromFile, prom.NameRunLastSuccess); err != nil || n != 0 {
		t.Errorf("failed run wrote %d last-success series (err %v), want none", n, err)
	}
	if n, err := testutil.GatherAndCount(fromFile, prom.NameRunTimeToJobs); err != nil || n != 2 {
		t.Errorf("summary series = %d (err %v), want one per strategy", n, err)
	}
}

func TestServe(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := prom.New(reg, testBuild, "poll")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := prom.Serve("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	m.TrialStarted("poll")
	want := `
# HELP cvatbench_tasks_in_flight Trials started and not yet finished.
# TYPE cvatbench_tasks_in_flight gauge
cvatbench_tasks_in_flight{strategy="poll"} 1
`
	if err := testutil.ScrapeAndCompare(srv.URL(), strings.NewReader(want), prom.NameTasksInFlight); err != nil {
		t.Error(err)
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL(), nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("content type %q, want OpenMetrics", ct)
	}
	if !strings.HasSuffix(string(body), "# EOF\n") {
		t.Errorf("OpenMetrics body lacks # EOF:\n%s", body)
	}

	if _, err := prom.Serve(srv.Addr(), reg); err == nil {
		t.Error("second Serve on a taken address: want an error")
	}
}
