package cvat_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cvatbench/cvatbench/cvat"
)

// Fuzz targets. Seed corpora live in testdata/fuzz/<FuzzName>/ and run as ordinary tests with `go test`;
// `go test -run '^$' -fuzz FuzzRequestIDPath -fuzztime 30s ./cvat` explores further. Both targets answer in
// memory through fuzzTransport, so an iteration costs microseconds and opens no socket.

// fuzzSecret is the token every fuzz client sends; it must never show up in an error.
const fuzzSecret = "fuzz-key-6b1f0c2e"

// fuzzTransport answers every request with a canned response and remembers the last request.
type fuzzTransport struct {
	status int
	header http.Header
	body   []byte
	last   *http.Request
}

func (f *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.last = r
	return &http.Response{StatusCode: f.status, Header: f.header.Clone(), Body: io.NopCloser(bytes.NewReader(f.body)),
		ContentLength: int64(len(f.body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// fuzzClient returns a client whose every call goes to tr, without retries or sleeping.
func fuzzClient(t *testing.T, base string, tr *fuzzTransport) *cvat.Client {
	t.Helper()
	c, err := cvat.New(cvat.Config{BaseURL: base, Auth: cvat.Token(fuzzSecret), HTTPClient: &http.Client{Transport: tr},
		Retry: cvat.RetryPolicy{MaxAttempts: 1}, CallTimeout: time.Minute})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	cvat.SetSleep(c, func(context.Context, time.Duration) error { return nil })
	return c
}

// fuzzUnreserved reports whether b may appear unescaped in the rq_id segment: RFC 3986 unreserved characters,
// and "%" of an escape.
func fuzzUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-._~%", b) >= 0
}

// FuzzRequestIDPath: for any rq_id, the path GetRequest puts on the wire is the base path, "/api/requests/",
// and one segment that a server decodes back to exactly the id; the segment holds no raw "/", "?", "#" (nor
// anything else outside the unreserved set), so an id can neither leave its segment nor start a query.
func FuzzRequestIDPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, rqID string) {
		for _, prefix := range []string{"", "/cvat"} {
			tr := &fuzzTransport{status: http.StatusOK, header: http.Header{"Content-Type": {"application/vnd.cvat+json"}},
				body: []byte(`{"id":"x","status":"queued","message":"","operation":{"type":"create:task","target":"task"},"created_date":"2026-08-20T10:00:01Z"}`)}
			c := fuzzClient(t, "http://cvat.test"+prefix, tr)
			_, err := c.GetRequest(context.Background(), rqID)
			if rqID == "" {
				if err == nil || tr.last != nil {
					t.Fatalf("empty rq_id: err %v, request sent %v", err, tr.last != nil)
				}
				continue
			}
			if err != nil {
				t.Fatalf("GetRequest(%q): %v", rqID, err)
			}
			// What goes on the request line, and what a server makes of it.
			wire := tr.last.URL.RequestURI()
			base := prefix + "/api/requests/"
			seg, ok := strings.CutPrefix(wire, base)
			if !ok {
				t.Fatalf("request line %q does not start with %q", wire, base)
			}
			for i := 0; i < len(seg); i++ {
				if !fuzzUnreserved(seg[i]) {
					t.Fatalf("segment %q of rq_id %q holds raw %q", seg, rqID, seg[i])
				}
			}
			if dec, err := url.PathUnescape(seg); err != nil || dec != rqID {
				t.Fatalf("segment %q decodes to %q (%v), want %q", seg, dec, err, rqID)
			}
			srv, err := url.ParseRequestURI(wire)
			if err != nil {
				t.Fatalf("server cannot parse %q: %v", wire, err)
			}
			if srv.Path != base+rqID || srv.RawQuery != "" || srv.Fragment != "" {
				t.Fatalf("server sees path %q query %q fragment %q, want path %q", srv.Path, srv.RawQuery, srv.Fragment, base+rqID)
			}
			if got := cvat.EscapeSegment(rqID); got != seg {
				t.Fatalf("EscapeSegment(%q) = %q, request used %q", rqID, got, seg)
			}
		}
	})
}

// maxDetail bounds APIError.Detail: 500 bytes plus the ellipsis.
const maxDetail = 500 + len("…")

// FuzzAPIErrorDecoding: whatever status, content type and body a server answers, the client does not panic;
// a non-2xx answer is an *APIError with the status, a one-line Detail of bounded length, at most 4 KiB of the
// body, and an Error text without the credentials.
func FuzzAPIErrorDecoding(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		status = 100 + int(uint(status)%900) // any three-digit status
		h := http.Header{"X-Request-Id": {"rid-fuzz"}}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		tr := &fuzzTransport{status: status, header: h, body: body}
		c := fuzzClient(t, "http://cvat.test", tr)
		_, err := c.GetTask(context.Background(), 7)
		if status/100 == 2 && err == nil {
			return
		}
		if err == nil {
			t.Fatalf("status %d gave no error", status)
		}
		msg := err.Error()
		if !bytes.Contains(body, []byte(fuzzSecret)) && strings.Contains(msg, fuzzSecret) {
			t.Fatalf("error leaks the token: %q", msg)
		}
		apiErr, ok := errors.AsType[*cvat.APIError](err)
		if !ok {
			if status/100 != 2 {
				t.Fatalf("status %d: %v is not an *APIError", status, err)
			}
			return // a 2xx whose body is not a task: a decode error
		}
		if apiErr.Status != status || cvat.StatusOf(err) != status || apiErr.Method != http.MethodGet ||
			apiErr.Endpoint != "/api/tasks/{id}" || apiErr.RequestID != "rid-fuzz" {
			t.Fatalf("status %d: got %+v", status, apiErr)
		}
		if n := len(apiErr.Detail); n > maxDetail {
			t.Fatalf("Detail is %d bytes, more than %d", n, maxDetail)
		}
		if strings.ContainsAny(apiErr.Detail, "\r\n") {
			t.Fatalf("Detail has several lines: %q", apiErr.Detail)
		}
		if len(apiErr.Body) > 4096 || !bytes.HasPrefix(body, apiErr.Body) || (len(body) <= 4096 && len(apiErr.Body) != len(body)) {
			t.Fatalf("Body is %d bytes, want the first min(4096, %d)", len(apiErr.Body), len(body))
		}
		if got := errors.Is(err, cvat.ErrNotFound); got != (status == http.StatusNotFound) {
			t.Fatalf("status %d: errors.Is(err, ErrNotFound) = %v", status, got)
		}
		if rq := apiErr.RqID(); !utf8.ValidString(rq) {
			t.Fatalf("RqID %q is not valid UTF-8", rq)
		}
	})
}
