package cvat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// About reads GET /api/server/about, which needs no authentication; Version tells the CVAT release.
func (c *Client) About(ctx context.Context) (About, error) {
	var a About
	if err := c.getJSON(ctx, request{endpoint: "/api/server/about", path: "/api/server/about"}, &a); err != nil {
		return About{}, fmt.Errorf("server about: %w", err)
	}
	return a, nil
}

// Self returns the authenticated user; use it to check credentials.
func (c *Client) Self(ctx context.Context) (User, error) {
	var u User
	if err := c.getJSON(ctx, request{endpoint: "/api/users/self", path: "/api/users/self"}, &u); err != nil {
		return User{}, fmt.Errorf("current user: %w", err)
	}
	return u, nil
}

// AccessToken is schema AccessTokenRead (without the value, which CVAT shows only at creation).
type AccessToken struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	ReadOnly bool   `json:"read_only"`
}

// UsesAccessToken reports whether the client authenticates with a personal access token (Bearer).
func (c *Client) UsesAccessToken() bool {
	_, ok := c.auth.(bearerAuth)
	return ok
}

// AccessTokenSelf reads the personal access token the client authenticates with (GET
// /api/auth/access_tokens/self): a read-only token gets 403 on every write (CALIBRATION.md §5.4).
func (c *Client) AccessTokenSelf(ctx context.Context) (AccessToken, error) {
	var t AccessToken
	if err := c.getJSON(ctx, request{endpoint: "/api/auth/access_tokens/self", path: "/api/auth/access_tokens/self"}, &t); err != nil {
		return AccessToken{}, fmt.Errorf("access token: %w", err)
	}
	return t, nil
}

// CreateAccessToken creates a personal access token without expiry, with write access, and returns its value
// for Bearer. CVAT shows the value only once; a PAT cannot create another PAT (use Basic or Token).
func (c *Client) CreateAccessToken(ctx context.Context, name string) (value string, err error) {
	in := struct {
		Name       string  `json:"name"`
		ExpiryDate *string `json:"expiry_date"`
		ReadOnly   bool    `json:"read_only"`
	}{Name: name}
	var out struct {
		Value string `json:"value"`
	}
	r := request{method: http.MethodPost, endpoint: "/api/auth/access_tokens", path: "/api/auth/access_tokens", want: http.StatusCreated}
	if err := c.sendJSON(ctx, r, in, &out); err != nil {
		return "", fmt.Errorf("create access token %q: %w", name, err)
	}
	if out.Value == "" {
		return "", fmt.Errorf("create access token %q: %w", name, errors.New("no value in the response"))
	}
	return out.Value, nil
}
