package cvat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
)

func TestListJobsQuery(t *testing.T) {
	tests := []struct {
		name    string
		q       cvat.JobsQuery
		want    string
		wantErr bool
	}{
		{"empty", cvat.JobsQuery{}, "", false},
		{"task all by id", cvat.JobsQuery{TaskID: 42, PageSize: cvat.PageSizeAll, Sort: "id"}, "page_size=all&sort=id&task_id=42", false},
		{"sdk walk", cvat.JobsQuery{TaskID: 42, Page: 2}, "page=2&task_id=42", false},
		{"annotation only", cvat.JobsQuery{TaskID: 1, PageSize: 50, Type: "annotation"}, "page_size=50&task_id=1&type=annotation", false},
		{"negative page", cvat.JobsQuery{Page: -1}, "", true},
		{"bad page size", cvat.JobsQuery{PageSize: -2}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			var hits atomic.Int32
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				got = r.URL.RawQuery
				writeJSON(w, 200, `{"count":0,"next":null,"previous":null,"results":[]}`)
			}), true, nil)
			_, err := c.ListJobs(context.Background(), tc.q)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if hits.Load() != 0 {
					t.Error("an invalid query reached the server")
				}
				return
			}
			if got != tc.want {
				t.Errorf("query %q, want %q", got, tc.want)
			}
		})
	}
}

// jobsServer serves n jobs of task 5 in pages of size per page, CVAT style (absolute next links that keep the
// other query parameters; 404 past the end).
func jobsServer(t *testing.T, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		size := 10
		if s := q.Get("page_size"); s == "all" {
			size = n
		} else if s != "" {
			size, _ = strconv.Atoi(s)
		}
		page := 1
		if p := q.Get("page"); p != "" {
			page, _ = strconv.Atoi(p)
		}
		lo := (page - 1) * size
		if lo > n || (lo == n && n > 0) {
			writeJSON(w, 404, `{"detail":"Invalid page."}`)
			return
		}
		hi := min(lo+size, n)
		var items []string
		for id := lo + 1; id <= hi; id++ {
			items = append(items, jobJSON(id, 5))
		}
		next := "null"
		if hi < n {
			q.Set("page", strconv.Itoa(page+1))
			next = strconv.Quote("http://" + r.Host + r.URL.Path + "?" + q.Encode())
		}
		writeJSON(w, 200, fmt.Sprintf(`{"count":%d,"next":%s,"previous":null,"results":[%s]}`, n, next, strings.Join(items, ",")))
	}
}

func jobJSON(id, task int) string {
	return fmt.Sprintf(`{"url":"http://localhost:8080/api/jobs/%[1]d","id":%[1]d,"task_id":%[2]d,"task_name":"bench","project_id":null,"project_name":null,"assignee":null,"guide_id":null,"dimension":"2d","mode":"annotation","media_type":"image","bug_tracker":"","status":"annotation","stage":"annotation","state":"new","frame_count":2,"start_frame":%[3]d,"stop_frame":%[4]d,"data_chunk_size":72,"data_compressed_chunk_type":"imageset","data_original_chunk_type":"imageset","created_date":"2026-08-20T10:00:01.790110Z","updated_date":"2026-08-20T10:00:01.790130Z","issues":{"url":"http://localhost:8080/api/issues?job_id=%[1]d","count":0},"labels":{"url":"http://localhost:8080/api/labels?job_id=%[1]d"},"type":"annotation","organization":null,"target_storage":null,"source_storage":null,"assignee_updated_date":null,"parent_job_id":null,"consensus_replicas":0,"replicas_count":0}`,
		id, task, 2*(id-1), 2*(id-1)+1)
}

func TestJobPagination(t *testing.T) {
	var log callLog
	c, _ := newClient(t, jobsServer(t, 23), true, func(cfg *cvat.Config) { cfg.OnCall = log.add })
	ctx := context.Background()

	p, err := c.ListJobs(ctx, cvat.JobsQuery{TaskID: 5, Page: 1})
	var ids []int
	for pages := 1; ; pages++ {
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range p.Results {
			ids = append(ids, j.ID)
		}
		if p.Next == nil {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
		p, err = c.ListJobsPage(ctx, *p.Next)
	}
	want := make([]int, 23)
	for i := range want {
		want[i] = i + 1
	}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("ids (-want +got):\n%s", d)
	}
	jobs, err := c.TaskJobs(ctx, 5)
	if err != nil || len(jobs) != 23 || jobs[22].StartFrame != 44 || jobs[22].StopFrame != 45 {
		t.Fatalf("TaskJobs = %d jobs, %v", len(jobs), err)
	}
	for _, call := range log.all() {
		if call.Endpoint != "/api/jobs" || call.Status != 200 {
			t.Errorf("call %s %s %d", call.Method, call.Endpoint, call.Status)
		}
	}
}

func TestListJobsPageRefusesOtherServers(t *testing.T) {
	var hits atomic.Int32
	c, srv := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 200, `{"count":0,"next":null,"previous":null,"results":[]}`)
	}), false, nil)
	u, _ := url.Parse(srv.URL)
	tests := []struct {
		name, next string
		wantErr    bool
	}{
		{"same server", srv.URL + "/api/jobs?page=2&task_id=5", false},
		{"relative", "/api/jobs?page=2", false},
		{"other host", "http://evil.example/api/jobs?page=2", true},
		{"other port", "http://" + u.Hostname() + ":1/api/jobs?page=2", true},
		{"other scheme", "https://" + u.Host + "/api/jobs?page=2", true},
		{"other path", srv.URL + "/api/tasks?page=2", true},
		{"garbage", "http://[::1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			_, err := c.ListJobsPage(context.Background(), tc.next)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if sent := hits.Load() != before; sent == tc.wantErr {
				t.Errorf("request sent: %v", sent)
			}
		})
	}
}

func TestJobChunk(t *testing.T) {
	tests := []struct {
		quality, wantQuery string
		wantErr            bool
	}{
		{"compressed", "index=3&quality=compressed&type=chunk", false},
		{"original", "index=3&quality=original&type=chunk", false},
		{"", "index=3&type=chunk", false},
		{"best", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.quality, func(t *testing.T) {
			var log callLog
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/jobs/9/data" || r.URL.RawQuery != tc.wantQuery || r.Header.Get("Accept") != "application/vnd.cvat+json" {
					t.Errorf("got %s?%s accept %q", r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept"))
				}
				w.Header().Set("Content-Type", "application/zip")
				_, _ = w.Write([]byte("PK\x03\x04zip"))
			}), false, func(cfg *cvat.Config) { cfg.OnCall = log.add })
			b, err := c.JobChunk(context.Background(), 9, 3, tc.quality)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && (string(b) != "PK\x03\x04zip" || log.all()[0].Endpoint != "/api/jobs/{id}/data") {
				t.Errorf("body %q, calls %+v", b, log.all())
			}
		})
	}
}
