package cvat

import (
	"context"
	"fmt"
	"net/http"
)

const orgsPath = "/api/organizations"

// Organization is the part of OrganizationRead cvatbench uses.
type Organization struct {
	ID   int    `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// CreateOrganization creates an organization (201); its creator becomes the owner. The slug is what
// Config.Org names.
func (c *Client) CreateOrganization(ctx context.Context, slug, name string) (Organization, error) {
	var o Organization
	r := request{method: http.MethodPost, endpoint: orgsPath, path: orgsPath, want: http.StatusCreated}
	if err := c.sendJSON(ctx, r, map[string]string{"slug": slug, "name": name}, &o); err != nil {
		return Organization{}, fmt.Errorf("create organization %q: %w", slug, err)
	}
	return o, nil
}

// DeleteOrganization deletes an organization (204). CVAT 2.73 deletes its webhooks and memberships with it
// and moves its projects and tasks to the personal sandbox.
func (c *Client) DeleteOrganization(ctx context.Context, id int) error {
	r := request{method: http.MethodDelete, endpoint: orgsPath + "/{id}", path: orgsPath + "/" + itoa(id), want: http.StatusNoContent}
	if _, err := c.do(ctx, r); err != nil {
		return fmt.Errorf("delete organization %d: %w", id, err)
	}
	return nil
}
