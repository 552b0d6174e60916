package cvat_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

// roundTripFunc serves canned responses in memory, so the benchmark measures the client, not the network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkTaskJobs builds GET /api/jobs?task_id=..&page_size=all&sort=id and decodes a page of 100 jobs: the
// per-poll cost of the jobs-list strategies.
func BenchmarkTaskJobs(b *testing.B) {
	items := make([]string, 100)
	for i := range items {
		items[i] = jobJSON(i+1, 5)
	}
	body := []byte(`{"count":100,"next":null,"previous":null,"results":[` + strings.Join(items, ",") + `]}`)
	hdr := http.Header{"Content-Type": {"application/vnd.cvat+json"}, "X-Request-Id": {"r"}}
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: hdr, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
	})
	c, err := cvat.New(cvat.Config{BaseURL: "http://cvat.local:8080", Auth: cvat.Bearer("pat"), HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := cvat.WithCallObserver(context.Background(), func(cvat.Call) {})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		jobs, err := c.TaskJobs(ctx, 5)
		if err != nil || len(jobs) != 100 {
			b.Fatalf("%d jobs, %v", len(jobs), err)
		}
	}
}
