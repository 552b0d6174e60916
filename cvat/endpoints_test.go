package cvat_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

const (
	taskJSON    = `{"url":"http://localhost:8080/api/tasks/42","id":42,"name":"bench-0001","project_id":9,"project_name":"cvatbench","owner":{"url":"http://localhost:8080/api/users/1","id":1,"username":"admin1","first_name":"Admin","last_name":"First"},"assignee":null,"bug_tracker":"","created_date":"2026-08-20T10:00:00.912345Z","updated_date":"2026-08-20T10:00:00.918001Z","overlap":null,"segment_size":2,"status":"annotation","guide_id":null,"data":null,"dimension":"","mode":"","media_type":"","subset":"","organization_id":null,"organization":null,"target_storage":null,"source_storage":null,"jobs":{"count":0,"completed":0,"validation":0,"url":"http://localhost:8080/api/jobs?task_id=42"},"labels":{"url":"http://localhost:8080/api/labels?task_id=42"},"assignee_updated_date":null,"validation_mode":null,"consensus_enabled":false}`
	projectJSON = `{"url":"http://localhost:8080/api/projects/9","id":9,"name":"cvatbench","owner":{"url":"http://localhost:8080/api/users/1","id":1,"username":"admin1","first_name":"Admin","last_name":"First"},"assignee":null,"guide_id":null,"bug_tracker":"","task_subsets":[],"created_date":"2026-08-20T10:00:00.1Z","updated_date":"2026-08-20T10:00:00.1Z","status":"annotation","dimension":null,"organization":null,"organization_id":null,"target_storage":null,"source_storage":null,"tasks":{"count":0,"url":"http://localhost:8080/api/tasks?project_id=9"},"labels":{"url":"http://localhost:8080/api/labels?project_id=9"},"assignee_updated_date":null}`
	requestJSON = `{"status":"finished","message":"","id":"action=create&target=task&target_id=42","operation":{"type":"create:task","target":"task","project_id":9,"task_id":42,"job_id":null,"org_id":null,"format":null,"lightweight":null},"progress":0.0,"created_date":"2026-08-20T10:00:01.204311Z","started_date":"2026-08-20T10:00:01.262087Z","finished_date":"2026-08-20T10:00:01.839512Z","expiry_date":"2026-08-20T10:08:21.839512Z","owner":{"id":1,"username":"admin1"},"result_url":null,"result_id":null}`
	userJSON    = `{"url":"http://localhost:8080/api/users/1","id":1,"username":"admin1","first_name":"Admin","last_name":"First","email":"admin1@localhost","groups":["admin"],"is_staff":true,"is_superuser":true,"is_active":true,"last_login":null,"date_joined":"2026-08-20T10:00:00Z","has_analytics_access":true}`
	aboutJSON   = `{"name":"Computer Vision Annotation Tool","subtitle":"Open Data Annotation Platform","description":"CVAT","version":"2.73.0","logo_url":"http://localhost:8080/static/logo.svg"}`
	tokenJSON   = `{"id":5,"name":"cvatbench","created_date":"2026-08-20T10:00:00Z","updated_date":"2026-08-20T10:00:00Z","expiry_date":null,"last_used_date":null,"read_only":false,"owner":{"url":"http://localhost:8080/api/users/1","id":1,"username":"admin1","first_name":"","last_name":""},"value":"pat-value"}`
)

func list(items ...string) string {
	s := fmt.Sprintf(`{"count":%d,"next":null,"previous":null,"results":[`, len(items))
	for i, it := range items {
		if i > 0 {
			s += ","
		}
		s += it
	}
	return s + "]}"
}

// TestEndpoints checks method, path, query, body and status handling of the simple calls, against the schema.
func TestEndpoints(t *testing.T) {
	one := 1
	pid := 9
	tests := []struct {
		name      string
		call      func(context.Context, *cvat.Client) (any, error)
		wantReq   string // "METHOD path?query body"
		status    int
		resp      string
		wantValue string // fmt of the result
	}{
		{"about", func(ctx context.Context, c *cvat.Client) (any, error) { a, err := c.About(ctx); return a.Version, err },
			"GET /api/server/about ", 200, aboutJSON, "2.73.0"},
		{"self", func(ctx context.Context, c *cvat.Client) (any, error) { u, err := c.Self(ctx); return u.Username, err },
			"GET /api/users/self ", 200, userJSON, "admin1"},
		{"access token", func(ctx context.Context, c *cvat.Client) (any, error) { return c.CreateAccessToken(ctx, "cvatbench") },
			`POST /api/auth/access_tokens {"name":"cvatbench","expiry_date":null,"read_only":false}`, 201, tokenJSON, "pat-value"},
		{"create project", func(ctx context.Context, c *cvat.Client) (any, error) {
			p, err := c.CreateProject(ctx, cvat.ProjectSpec{Name: "cvatbench", Labels: []cvat.Label{{Name: "object"}}})
			return p.ID, err
		}, `POST /api/projects {"name":"cvatbench","labels":[{"name":"object"}]}`, 201, projectJSON, "9"},
		{"get project", func(ctx context.Context, c *cvat.Client) (any, error) {
			p, err := c.GetProject(ctx, 9)
			return p.Name, err
		}, "GET /api/projects/9 ", 200, projectJSON, "cvatbench"},
		{"delete project", func(ctx context.Context, c *cvat.Client) (any, error) { return nil, c.DeleteProject(ctx, 9) },
			"DELETE /api/projects/9 ", 204, "", "<nil>"},
		{"list projects", func(ctx context.Context, c *cvat.Client) (any, error) {
			p, err := c.ListProjects(ctx, "bench")
			return len(p), err
		}, "GET /api/projects?page_size=100&search=bench ", 200, list(projectJSON, projectJSON), "2"},
		{"create task", func(ctx context.Context, c *cvat.Client) (any, error) {
			tk, err := c.CreateTask(ctx, cvat.TaskSpec{Name: "bench-0001", ProjectID: &pid, SegmentSize: 2, Overlap: &one})
			return tk.Jobs.URL, err
		}, `POST /api/tasks {"name":"bench-0001","project_id":9,"segment_size":2,"overlap":1}`, 201, taskJSON, "http://localhost:8080/api/jobs?task_id=42"},
		{"get task", func(ctx context.Context, c *cvat.Client) (any, error) {
			tk, err := c.GetTask(ctx, 42)
			return tk.Initialized(), err
		}, "GET /api/tasks/42 ", 200, taskJSON, "false"},
		{"delete task", func(ctx context.Context, c *cvat.Client) (any, error) { return nil, c.DeleteTask(ctx, 42) },
			"DELETE /api/tasks/42 ", 204, "", "<nil>"},
		{"list tasks", func(ctx context.Context, c *cvat.Client) (any, error) {
			ts, err := c.ListTasks(ctx, "")
			return len(ts), err
		}, "GET /api/tasks?page_size=100 ", 200, list(taskJSON), "1"},
		{"list requests", func(ctx context.Context, c *cvat.Client) (any, error) {
			rs, err := c.ListRequests(ctx, cvat.RequestFilter{Action: "create", Target: "task", TaskID: 42, Status: "finished"})
			if err != nil || len(rs) != 1 {
				return nil, fmt.Errorf("%d requests, %w", len(rs), err)
			}
			return rs[0].FinishedDate.Sub(*rs[0].StartedDate).String(), nil
		}, "GET /api/requests?action=create&page_size=100&status=finished&target=task&task_id=42 ", 200, list(requestJSON), "577.425ms"},
		{"task jobs", func(ctx context.Context, c *cvat.Client) (any, error) {
			js, err := c.TaskJobs(ctx, 5)
			if err != nil || len(js) != 2 {
				return nil, fmt.Errorf("%d jobs, %w", len(js), err)
			}
			return js[1].StartFrame, nil
		}, "GET /api/jobs?page_size=all&sort=id&task_id=5 ", 200, list(jobJSON(1, 5), jobJSON(2, 5)), "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = r.Method + " " + r.URL.RequestURI() + " " + string(b)
				if len(b) > 0 && r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("content type %q", r.Header.Get("Content-Type"))
				}
				if tc.resp == "" {
					w.WriteHeader(tc.status)
					return
				}
				writeJSON(w, tc.status, tc.resp)
			}), true, nil)
			v, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantReq {
				t.Errorf("request\n got %s\nwant %s", got, tc.wantReq)
			}
			if s := fmt.Sprint(v); s != tc.wantValue {
				t.Errorf("value %s, want %s", s, tc.wantValue)
			}
		})
	}
}
