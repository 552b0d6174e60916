package cvatsim_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/cvatbench/cvatbench/cvatsim"
)

// benchEnv serves an instant emulator without the schema validator.
func benchEnv(b *testing.B) *env {
	s, err := cvatsim.New(cvatsim.Options{Profile: instantProfile(b)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &env{t: b, s: s, srv: srv, url: srv.URL}
}

func BenchmarkCreateTaskInstant(b *testing.B) {
	e := benchEnv(b)
	imgs := images(10)
	body, ct := multipartBody(map[string]string{"image_quality": "70"}, imgs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := e.createTask(map[string]any{"name": "bench", "segment_size": 3})
		e.must(202, e.do("POST", fmt.Sprintf("/api/tasks/%d/data", id), body, map[string]string{"Content-Type": ct}))
		e.waitVisible(id)
	}
}

func BenchmarkListJobsAll(b *testing.B) {
	e := benchEnv(b)
	id := e.createTask(map[string]any{"name": "bench", "segment_size": 1})
	e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(100))
	e.waitVisible(id)
	path := fmt.Sprintf("/api/jobs?task_id=%d&page_size=all&sort=id", id)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.must(200, e.do("GET", path, nil, nil))
	}
}

func BenchmarkGetRequest(b *testing.B) {
	e := benchEnv(b)
	id := e.createTask(map[string]any{"name": "bench"})
	rq := e.uploadSingle(id, map[string]string{"image_quality": "70"}, images(1))
	e.waitVisible(id)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.request(rq)
	}
}
