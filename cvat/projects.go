package cvat

import (
	"context"
	"fmt"
	"net/http"
)

const projectsPath = "/api/projects"

// CreateProject creates a project (201). Webhook strategies need one: sandbox tasks outside a project fire no
// webhooks (API.md §8.3).
func (c *Client) CreateProject(ctx context.Context, spec ProjectSpec) (Project, error) {
	var p Project
	r := request{method: http.MethodPost, endpoint: projectsPath, path: projectsPath, want: http.StatusCreated}
	if err := c.sendJSON(ctx, r, spec, &p); err != nil {
		return Project{}, fmt.Errorf("create project %q: %w", spec.Name, err)
	}
	return p, nil
}

// GetProject reads one project.
func (c *Client) GetProject(ctx context.Context, id int) (Project, error) {
	var p Project
	r := request{endpoint: projectsPath + "/{id}", path: projectsPath + "/" + itoa(id)}
	if err := c.getJSON(ctx, r, &p); err != nil {
		return Project{}, fmt.Errorf("project %d: %w", id, err)
	}
	return p, nil
}

// DeleteProject deletes a project with its tasks and jobs (204).
func (c *Client) DeleteProject(ctx context.Context, id int) error {
	r := request{method: http.MethodDelete, endpoint: projectsPath + "/{id}", path: projectsPath + "/" + itoa(id), want: http.StatusNoContent}
	if _, err := c.do(ctx, r); err != nil {
		return fmt.Errorf("delete project %d: %w", id, err)
	}
	return nil
}

// ListProjects returns every project matching search ("" = all) in the client's organization context.
func (c *Client) ListProjects(ctx context.Context, search string) ([]Project, error) {
	ps, err := listAll[Project](ctx, c, request{endpoint: projectsPath, path: projectsPath, query: searchQuery(search)})
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return ps, nil
}
