package cvat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

const tasksPath = "/api/tasks"

// CreateTask creates a task without data (201). Data parameters such as image_quality belong to UploadData.
func (c *Client) CreateTask(ctx context.Context, spec TaskSpec) (Task, error) {
	var t Task
	r := request{method: http.MethodPost, endpoint: tasksPath, path: tasksPath, want: http.StatusCreated}
	if err := c.sendJSON(ctx, r, spec, &t); err != nil {
		return Task{}, fmt.Errorf("create task %q: %w", spec.Name, err)
	}
	return t, nil
}

// GetTask reads one task; Task.Initialized tells whether its data was processed (API.md §4.2).
func (c *Client) GetTask(ctx context.Context, id int) (Task, error) {
	var t Task
	r := request{endpoint: tasksPath + "/{id}", path: tasksPath + "/" + itoa(id)}
	if err := c.getJSON(ctx, r, &t); err != nil {
		return Task{}, fmt.Errorf("task %d: %w", id, err)
	}
	return t, nil
}

// DeleteTask deletes a task and its jobs (204). While the task is being processed CVAT may answer 409 busy.
func (c *Client) DeleteTask(ctx context.Context, id int) error {
	r := request{method: http.MethodDelete, endpoint: tasksPath + "/{id}", path: tasksPath + "/" + itoa(id), want: http.StatusNoContent}
	if _, err := c.do(ctx, r); err != nil {
		return fmt.Errorf("delete task %d: %w", id, err)
	}
	return nil
}

// ListTasks returns every task matching search ("" = all) in the client's organization context.
func (c *Client) ListTasks(ctx context.Context, search string) ([]Task, error) {
	ts, err := listAll[Task](ctx, c, request{endpoint: tasksPath, path: tasksPath, query: searchQuery(search)})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return ts, nil
}

func searchQuery(search string) url.Values {
	if search == "" {
		return nil
	}
	return url.Values{"search": {search}}
}

const requestsPath = "/api/requests"

// GetRequest reads a background request. The opaque rq_id is percent-encoded as one path segment, "=" and "&"
// included, like the SDK does (API.md §1.1). An unknown or expired id gives ErrNotFound with a text body.
func (c *Client) GetRequest(ctx context.Context, rqID string) (Request, error) {
	if rqID == "" {
		return Request{}, errors.New("get request: empty rq_id")
	}
	var out Request
	r := request{endpoint: requestsPath + "/{rq_id}", path: requestsPath + "/" + escapeSegment(rqID)}
	if err := c.getJSON(ctx, r, &out); err != nil {
		return Request{}, fmt.Errorf("request %q: %w", rqID, err)
	}
	return out, nil
}

// ListRequests returns the caller's own requests matching f, newest first.
func (c *Client) ListRequests(ctx context.Context, f RequestFilter) ([]Request, error) {
	v := url.Values{}
	for k, s := range map[string]string{"action": f.Action, "target": f.Target, "status": f.Status} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.TaskID > 0 {
		v.Set("task_id", itoa(f.TaskID))
	}
	if f.ProjectID > 0 {
		v.Set("project_id", itoa(f.ProjectID))
	}
	rs, err := listAll[Request](ctx, c, request{endpoint: requestsPath, path: requestsPath, query: v})
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return rs, nil
}
