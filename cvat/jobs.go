package cvat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// values encodes q as the query of GET /api/jobs.
func (q JobsQuery) values() (url.Values, error) {
	v := url.Values{}
	switch {
	case q.TaskID < 0, q.ProjectID < 0, q.Page < 0, q.PageSize < PageSizeAll:
		return nil, fmt.Errorf("invalid jobs query %+v", q)
	case q.PageSize == PageSizeAll:
		v.Set("page_size", "all")
	case q.PageSize > 0:
		v.Set("page_size", itoa(q.PageSize))
	}
	if q.TaskID > 0 {
		v.Set("task_id", itoa(q.TaskID))
	}
	if q.ProjectID > 0 {
		v.Set("project_id", itoa(q.ProjectID))
	}
	if q.Page > 0 {
		v.Set("page", itoa(q.Page))
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	return v, nil
}

const jobsPath = "/api/jobs"

// ListJobs returns one page of GET /api/jobs. A non-empty answer for a task is always its complete job set,
// because CVAT creates all jobs in one transaction (API.md §7.1). The organization context travels as the
// X-Organization header like on every call, not as the SDK's org/org_id query parameters.
func (c *Client) ListJobs(ctx context.Context, q JobsQuery) (JobPage, error) {
	v, err := q.values()
	if err != nil {
		return JobPage{}, err
	}
	var p JobPage
	err = c.getJSON(ctx, request{endpoint: jobsPath, path: jobsPath, query: v}, &p)
	return p, err
}

// ListJobsPage follows JobPage.Next. The link must point at /api/jobs on the configured server: it is refused
// otherwise, so credentials never go elsewhere (a proxy that rewrites hosts needs BaseURL to match).
func (c *Client) ListJobsPage(ctx context.Context, nextURL string) (JobPage, error) {
	u, err := c.sameOrigin(nextURL, c.base.Path+jobsPath)
	if err != nil {
		return JobPage{}, fmt.Errorf("list jobs page: %w", err)
	}
	var p JobPage
	err = c.getJSON(ctx, request{endpoint: jobsPath, abs: u}, &p)
	return p, err
}

// TaskJobs returns every job of a task in ID order with one call (page_size=all&sort=id); it follows next
// links only if a server ignored page_size=all.
func (c *Client) TaskJobs(ctx context.Context, taskID int) ([]Job, error) {
	if taskID <= 0 {
		return nil, fmt.Errorf("task jobs: invalid task id %d", taskID)
	}
	p, err := c.ListJobs(ctx, JobsQuery{TaskID: taskID, PageSize: PageSizeAll, Sort: "id"})
	jobs := p.Results
	for err == nil && p.Next != nil && *p.Next != "" {
		if len(p.Results) == 0 {
			err = errors.New("empty page with a next link")
			break
		}
		p, err = c.ListJobsPage(ctx, *p.Next)
		jobs = append(jobs, p.Results...)
	}
	if err != nil {
		return nil, fmt.Errorf("jobs of task %d: %w", taskID, err)
	}
	return jobs, nil
}

// JobChunk downloads chunk index (0-based within the job) of a job's data, quality "compressed" or
// "original" ("" = server default, compressed). The body is returned as is: a zip for image tasks. A chunk
// still being built gives 429 with Retry-After, which is retried within the call deadline (API.md §7.2).
func (c *Client) JobChunk(ctx context.Context, jobID, index int, quality string) ([]byte, error) {
	if quality != "" && quality != "compressed" && quality != "original" {
		return nil, fmt.Errorf("job %d chunk %d: unknown quality %q", jobID, index, quality)
	}
	v := url.Values{"type": {"chunk"}, "index": {itoa(index)}}
	if quality != "" {
		v.Set("quality", quality)
	}
	r := request{method: http.MethodGet, endpoint: "/api/jobs/{id}/data", path: "/api/jobs/" + itoa(jobID) + "/data", query: v}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("job %d chunk %d: %w", jobID, index, err)
	}
	return resp.body, nil
}
