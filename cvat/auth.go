package cvat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Auth is a way to authenticate to CVAT (API.md §2.1). Its String and Format never reveal the secret, so an
// Auth can be logged or printed as part of a Config.
type Auth interface {
	apply(h http.Header)
	String() string
}

// Basic authenticates every request with user name and password. CVAT checks the password hash on every
// request, which is slow: prefer Bearer or Token for polling (API.md §2.1).
func Basic(user, password string) Auth { return basicAuth{user: user, password: password} }

// Token authenticates with a key from Login ("Authorization: Token <key>"; deprecated by CVAT but fast).
func Token(key string) Auth { return tokenAuth{key: key} }

// Bearer authenticates with a personal access token ("Authorization: Bearer <pat>"), CVAT's preferred method.
func Bearer(pat string) Auth { return bearerAuth{pat: pat} }

// The Auth implementations implement fmt.Formatter so that every verb, %#v included, prints the redacted
// String instead of the struct fields.
type (
	basicAuth  struct{ user, password string }
	tokenAuth  struct{ key string }
	bearerAuth struct{ pat string }
)

func (a basicAuth) apply(h http.Header) {
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.user+":"+a.password)))
}
func (a tokenAuth) apply(h http.Header)  { h.Set("Authorization", "Token "+a.key) }
func (a bearerAuth) apply(h http.Header) { h.Set("Authorization", "Bearer "+a.pat) }

func (a basicAuth) String() string  { return "basic auth as " + strconv.Quote(a.user) }
func (a tokenAuth) String() string  { return "token auth" }
func (a bearerAuth) String() string { return "personal access token auth" }

func (a basicAuth) Format(f fmt.State, _ rune)  { io.WriteString(f, a.String()) }
func (a tokenAuth) Format(f fmt.State, _ rune)  { io.WriteString(f, a.String()) }
func (a bearerAuth) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

// Login exchanges a user name and password for a token key (POST /api/auth/login), to use with Token. The
// session cookies CVAT also sets are dropped: hc should have no cookie jar (nil: a default client without one),
// because session auth would then take precedence and enforce CSRF on every POST (API.md §2.2).
func Login(ctx context.Context, baseURL, username, password string, hc *http.Client) (key string, err error) {
	c, err := New(Config{BaseURL: baseURL, HTTPClient: hc})
	if err != nil {
		return "", err
	}
	var out struct {
		Key string `json:"key"`
	}
	in := map[string]string{"username": username, "password": password}
	r := request{method: http.MethodPost, endpoint: "/api/auth/login", path: "/api/auth/login", want: http.StatusOK}
	if err := c.sendJSON(ctx, r, in, &out); err != nil {
		return "", fmt.Errorf("login as %q: %w", username, err)
	}
	if out.Key == "" {
		return "", fmt.Errorf("login as %q: %w", username, errors.New("no key in the response"))
	}
	return out.Key, nil
}
