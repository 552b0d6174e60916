package cvat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Sentinel errors matched by errors.Is against an *APIError with the corresponding status.
var (
	ErrBadRequest   = errors.New("cvat: bad request")  // 400
	ErrUnauthorized = errors.New("cvat: unauthorized") // 401
	ErrForbidden    = errors.New("cvat: forbidden")    // 403
	ErrNotFound     = errors.New("cvat: not found")    // 404
	ErrConflict     = errors.New("cvat: conflict")     // 409
)

var sentinelStatus = map[error]int{
	ErrBadRequest:   http.StatusBadRequest,
	ErrUnauthorized: http.StatusUnauthorized,
	ErrForbidden:    http.StatusForbidden,
	ErrNotFound:     http.StatusNotFound,
	ErrConflict:     http.StatusConflict,
}

// APIError is a response CVAT answered with a status the call did not expect (usually 4xx or 5xx).
type APIError struct {
	Method, Endpoint string // the endpoint is templated, e.g. "/api/tasks/{id}"
	Status           int
	// Detail is the readable message: DRF's "detail", the messages of a validation error list or object, a
	// JSON string, or the text of a non-JSON body (the 404 of /api/requests/{rq_id} is plain text, API.md §6.1).
	Detail    string
	Body      []byte // the response body, truncated to 4 KiB
	RequestID string // X-Request-Id, to find the call in CVAT's logs
}

// Error reports method, endpoint, status, detail and request id; it never contains request credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Endpoint, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// Is matches the status sentinels (ErrNotFound, ...).
func (e *APIError) Is(target error) bool {
	s, ok := sentinelStatus[target]
	return ok && e.Status == s
}

// RqID returns the "rq_id" of the body. A 409 of Upload-Finish carries the id of the creation request that is
// still queued or running for the task (API.md §5.5); "" when the body has none.
func (e *APIError) RqID() string {
	var v struct {
		RqID string `json:"rq_id"`
	}
	if json.Unmarshal(e.Body, &v) != nil {
		return ""
	}
	return v.RqID
}

// StatusOf returns the HTTP status carried by an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Status
	}
	return 0
}

func newAPIError(method, endpoint string, r *response) *APIError {
	body := r.body
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	return &APIError{Method: method, Endpoint: endpoint, Status: r.status, Detail: detailOf(r.body),
		Body: bytes.Clone(body), RequestID: r.header.Get("X-Request-Id")}
}

var htmlTitle = regexp.MustCompile(`(?is)<title>\s*(.*?)\s*</title>`)

// detailOf extracts a one-line message from an error body (API.md §1.4).
func detailOf(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		return clip(describe(v))
	}
	if b[0] == '<' { // Django's HTML error page: its title is enough
		if m := htmlTitle.FindSubmatch(b); m != nil {
			return clip(string(m[1]))
		}
		return ""
	}
	return clip(string(b))
}

// describe flattens DRF error shapes: {"detail": x}, ["msg", ...], {"field": ["msg"]}, "msg".
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = describe(x)
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		if d, ok := v["detail"]; ok {
			return describe(d)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + describe(v[k])
		}
		return strings.Join(parts, "; ")
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// clip keeps error messages to one short line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}
