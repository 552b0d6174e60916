package cvat_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

func TestAPIErrorDecoding(t *testing.T) {
	long := `{"detail":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name       string
		status     int
		ctype      string
		body       string
		wantDetail string
		sentinel   error
		wantRqID   string
	}{
		{"json detail", 401, "application/vnd.cvat+json", `{"detail":"Invalid token."}`, "Invalid token.", cvat.ErrUnauthorized, ""},
		{"json list", 400, "application/vnd.cvat+json", `["Adding more data is not supported"]`, "Adding more data is not supported", cvat.ErrBadRequest, ""},
		{"json object", 400, "application/vnd.cvat+json", `{"name":["This field is required."],"labels":["bad","worse"]}`,
			"labels: bad; worse; name: This field is required.", cvat.ErrBadRequest, ""},
		{"json string", 503, "application/vnd.cvat+json", `"Redis service is not available"`, "Redis service is not available", nil, ""},
		{"text 404 of requests", 404, "text/html; charset=utf-8", "There is no request with specified id", "There is no request with specified id", cvat.ErrNotFound, ""},
		{"django html 404", 404, "text/html", "<!doctype html><html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>", "Not Found", cvat.ErrNotFound, ""},
		{"forbidden csrf", 403, "application/vnd.cvat+json", `{"detail":"CSRF Failed: CSRF token missing."}`, "CSRF Failed: CSRF token missing.", cvat.ErrForbidden, ""},
		{"conflict with rq_id", 409, "application/vnd.cvat+json", `{"rq_id":"action=create&target=task&target_id=7"}`, "rq_id: action=create&target=task&target_id=7", cvat.ErrConflict, "action=create&target=task&target_id=7"},
		{"empty body", 502, "text/html", "", "", nil, ""},
		{"long body", 400, "application/vnd.cvat+json", long, strings.Repeat("x", 500) + "…", cvat.ErrBadRequest, ""},
	}
	sentinels := []error{cvat.ErrBadRequest, cvat.ErrUnauthorized, cvat.ErrForbidden, cvat.ErrNotFound, cvat.ErrConflict}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.Header().Set("X-Request-Id", "rid-9")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}), false, func(cfg *cvat.Config) { cfg.Retry.MaxAttempts = 1 })
			_, err := c.GetTask(context.Background(), 7)
			apiErr, ok := errors.AsType[*cvat.APIError](err)
			if !ok {
				t.Fatalf("err %v is not an *APIError", err)
			}
			if apiErr.Status != tc.status || apiErr.Detail != tc.wantDetail || apiErr.RequestID != "rid-9" ||
				apiErr.Method != "GET" || apiErr.Endpoint != "/api/tasks/{id}" {
				t.Errorf("got %+v, want status %d detail %q", apiErr, tc.status, tc.wantDetail)
			}
			if len(apiErr.Body) > 4096 || !strings.HasPrefix(tc.body, string(apiErr.Body)) || (len(tc.body) <= 4096 && string(apiErr.Body) != tc.body) {
				t.Errorf("body %d bytes, want the first ≤4096 of %d", len(apiErr.Body), len(tc.body))
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tc.sentinel) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if cvat.StatusOf(err) != tc.status || apiErr.RqID() != tc.wantRqID {
				t.Errorf("StatusOf = %d, RqID = %q", cvat.StatusOf(err), apiErr.RqID())
			}
			if msg := err.Error(); !strings.Contains(msg, "task 7") || !strings.Contains(msg, "rid-9") ||
				!strings.Contains(msg, http.StatusText(tc.status)) {
				t.Errorf("message %q lacks context", msg)
			}
		})
	}
	if cvat.StatusOf(errors.New("plain")) != 0 || cvat.StatusOf(nil) != 0 {
		t.Error("StatusOf of a non-API error is not 0")
	}
}

// TestUnexpectedSuccessHidesBody: a 200 where 201 was expected must not put the body (maybe a token) in the error.
func TestUnexpectedSuccessHidesBody(t *testing.T) {
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"value":"pat-SECRET"}`)
	}), false, nil)
	_, err := c.CreateAccessToken(context.Background(), "bench")
	if err == nil || strings.Contains(err.Error(), "pat-SECRET") || cvat.StatusOf(err) != 200 {
		t.Fatalf("err = %v, want an unexpected-status error without the token", err)
	}
	if e, _ := errors.AsType[*cvat.APIError](err); len(e.Body) != 0 {
		t.Errorf("body kept: %q", e.Body)
	}
}
