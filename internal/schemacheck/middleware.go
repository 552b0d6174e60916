package schemacheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
)

// Middleware wraps a server handler (the emulator) and reports, with t.Errorf, every request and response
// that does not match the schema. Requests the handler rejected with a 4xx are not reported: rejecting
// invalid input is the server's job, and the error answer itself is still checked. Paths under /_cvatsim/
// are emulator-only and skipped.
func (v *Validator) Middleware(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if skipPath(r.URL) {
			h.ServeHTTP(w, r)
			return
		}
		var reqBody []byte
		if r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("schemacheck: %s %s: read request body: %v", r.Method, r.URL.EscapedPath(), err)
			}
			reqBody = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		orig := r.Clone(r.Context()) // the handler may change r; validate what arrived
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		hdr := rec.header
		if hdr == nil {
			hdr = w.Header().Clone()
		}
		for _, err := range v.checkExchange(orig, reqBody, status, hdr, rec.body.Bytes(), false) {
			t.Errorf("schemacheck: %v", err)
		}
	})
}

// Transport wraps a client transport (nil means http.DefaultTransport) and reports, with t.Errorf, every
// outgoing request and every response it gets that does not match the schema. Unlike Middleware it reports
// invalid requests whatever the server answered: a client must not send them.
func (v *Validator) Transport(t testing.TB, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &transport{v: v, t: t, next: rt}
}

// transport is the client-side checker behind Transport.
type transport struct {
	v    *Validator
	t    testing.TB
	next http.RoundTripper
}

// RoundTrip sends req through the wrapped transport and checks both directions.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if skipPath(req.URL) {
		return tr.next.RoundTrip(req)
	}
	reqBody, req, err := bufferRequestBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, readErr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if readErr != nil {
		// Hand the partial body and the error to the caller like the real transport would.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(respBody), errReader{readErr}))
		return resp, nil
	}
	for _, err := range tr.v.checkExchange(req, reqBody, resp.StatusCode, resp.Header, respBody, true) {
		tr.t.Errorf("schemacheck: %v", err)
	}
	return resp, nil
}

// bufferRequestBody reads req's body without consuming it for the next transport: through GetBody when the
// request can replay its body, else by reading it and sending a clone with the buffered bytes.
func bufferRequestBody(req *http.Request) ([]byte, *http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, req, nil
	}
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, nil, fmt.Errorf("schemacheck: replay request body: %w", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("schemacheck: read request body: %w", err)
		}
		return b, req, nil
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("schemacheck: read request body: %w", err)
	}
	clone := req.Clone(req.Context())
	clone.Body = io.NopCloser(bytes.NewReader(b))
	clone.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	clone.ContentLength = int64(len(b))
	return b, clone, nil
}

// checkExchange checks one request/response pair. strictRequests reports invalid requests even when the
// server rejected them (client-side checking).
func (v *Validator) checkExchange(r *http.Request, reqBody []byte, status int, h http.Header, respBody []byte, strictRequests bool) []error {
	var errs []error
	respErr := v.CheckResponse(r, status, h, respBody)
	var reqErr error
	if !skipPath(r.URL) {
		if err := v.checkRequest(r, reqBody, !strictRequests); err != nil {
			reqErr = fmt.Errorf("%s %s: request: %w", r.Method, r.URL.EscapedPath(), err)
		}
	}
	if reqErr != nil {
		switch {
		case isRouteError(reqErr) && respErr == nil && status >= 400:
			// Unknown URL or method, answered the way Django does (allowedUnrouted).
		case !strictRequests && status >= 400 && status < 500:
			// The server rejected the invalid request, as it should.
		default:
			errs = append(errs, reqErr)
		}
	}
	if respErr != nil {
		errs = append(errs, respErr)
	}
	return errs
}

// recorder tees a handler's response to the real writer and keeps status, headers and body for checking.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

// WriteHeader records the status and a snapshot of the headers sent with it.
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records body bytes; the first write implies 200 like net/http does.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Flush passes flushes through so streaming handlers keep working.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes hijacking through; a hijacked connection is not checked.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := r.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("schemacheck: response writer cannot hijack")
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// errReader returns err on every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
