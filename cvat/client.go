// Package cvat is a small client for the CVAT 2.73 REST API, limited to what cvatbench needs: creating tasks,
// attaching data, and watching requests, jobs and webhooks (see /work/shared/cvat/API.md).
//
// Every HTTP attempt is reported as a Call to Config.OnCall and to the observers attached to the context with
// WithCallObserver, so a benchmark can count requests per trial, retries included.
package cvat

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// mediaType is CVAT's JSON media type. Plain application/json alone gets 406 from DRF (API.md §1.2).
const mediaType = "application/vnd.cvat+json"

// Defaults applied by New to zero Config fields.
const (
	DefaultCallTimeout  = 30 * time.Second
	DefaultMaxAttempts  = 4 // the first try plus the SDK's three retries (API.md §6.1)
	DefaultRetryInitial = 500 * time.Millisecond
	DefaultRetryMax     = 10 * time.Second
)

const (
	defaultUserAgent      = "cvatbench"
	maxErrorBody          = 4 << 10   // APIError.Body limit
	maxBatchBytes         = 100 << 20 // Upload-Multiple batch limit of the SDK and UI (API.md §5.2)
	tusChunkBytes         = 10 << 20  // TUS PATCH size of the SDK (API.md §5.3)
	listPageSize          = "100"     // page size of the List* walks
	tusResumable          = "1.0.0"
	contentTypeJSON       = "application/json"
	contentTypeTUSPayload = "application/offset+octet-stream"
)

// Config configures a Client. Secrets live only inside Auth, whose String and Format redact them, so printing
// a Config with any verb is safe.
type Config struct {
	BaseURL     string        // "http://127.0.0.1:8080": no /api suffix; a trailing slash is tolerated
	Auth        Auth          // nil: anonymous (only /api/server/about works)
	Org         string        // organization slug sent as X-Organization; "": no organization context
	HTTPClient  *http.Client  // nil: a client WITHOUT cookie jar (a jar plus Basic breaks POSTs, API.md §2.2)
	CallTimeout time.Duration // deadline of each API request, its retries included, unless ctx has a shorter one; 0 = 30s
	Retry       RetryPolicy   // zero value = defaults
	OnCall      func(Call)    // optional, called once per HTTP attempt, possibly concurrently
	UserAgent   string        // "": "cvatbench"
}

// RetryPolicy bounds the retries of idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) after a transport
// error or a 429, 502, 503 or 504. POST and PATCH are never retried: CVAT's uploads and creations are not
// idempotent. A Retry-After header replaces the computed backoff.
type RetryPolicy struct {
	MaxAttempts int           // attempts including the first; 0 = DefaultMaxAttempts, 1 = no retries
	Initial     time.Duration // first backoff, doubled per retry, with jitter; 0 = DefaultRetryInitial
	Max         time.Duration // backoff cap (not applied to Retry-After); 0 = DefaultRetryMax
}

// Call describes one HTTP attempt, for request counting and latency accounting.
type Call struct {
	Method    string
	Endpoint  string // templated: "/api/jobs", "/api/tasks/{id}", "/api/requests/{rq_id}", ...
	Status    int    // 0 when no response arrived
	Attempt   int    // 1-based
	Start     time.Time
	Duration  time.Duration // until the response body was read
	RequestID string        // response X-Request-Id
	Err       error         // transport error, nil if a response arrived
}

type observersKey struct{}

// WithCallObserver returns a context whose client calls report every HTTP attempt to fn, in addition to
// Config.OnCall and to observers attached to the parent context (outermost first). fn may be called
// concurrently when the context is shared by concurrent calls.
func WithCallObserver(ctx context.Context, fn func(Call)) context.Context {
	prev, _ := ctx.Value(observersKey{}).([]func(Call))
	next := append(prev[:len(prev):len(prev)], fn)
	return context.WithValue(ctx, observersKey{}, next)
}

// Client talks to one CVAT server. It is safe for concurrent use.
type Client struct {
	base    *url.URL // scheme, host and optional path prefix, without trailing slash
	auth    Auth
	org     string
	hc      *http.Client
	timeout time.Duration
	retry   RetryPolicy
	onCall  func(Call)
	ua      string

	// Seams for tests (export_test.go): waiting, the clock and upload sizes.
	sleep      func(ctx context.Context, d time.Duration) error
	now        func() time.Time
	batchLimit int
	tusChunk   int
}

// New validates cfg and returns a client. It makes no request.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("call timeout %v is negative", cfg.CallTimeout))
	}
	r := cfg.Retry
	if r.MaxAttempts < 0 || r.Initial < 0 || r.Max < 0 {
		errs = append(errs, fmt.Errorf("retry policy %+v has negative values", r))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cvat config: %w", err)
	}
	r.MaxAttempts = cmp.Or(r.MaxAttempts, DefaultMaxAttempts)
	r.Initial = cmp.Or(r.Initial, DefaultRetryInitial)
	r.Max = max(cmp.Or(r.Max, DefaultRetryMax), r.Initial)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		base: base, auth: cfg.Auth, org: cfg.Org, hc: hc, retry: r, onCall: cfg.OnCall,
		timeout:    cmp.Or(cfg.CallTimeout, DefaultCallTimeout),
		ua:         cmp.Or(cfg.UserAgent, defaultUserAgent),
		sleep:      sleepCtx,
		now:        time.Now,
		batchLimit: maxBatchBytes,
		tusChunk:   tusChunkBytes,
	}, nil
}

// String describes the client without secrets.
func (c *Client) String() string {
	s := "cvat.Client(" + c.base.String()
	if c.auth != nil {
		s += ", " + c.auth.String()
	}
	if c.org != "" {
		s += ", org " + strconv.Quote(c.org)
	}
	return s + ")"
}

// Format makes every fmt verb print String, so %#v and %+v cannot reach the credentials.
func (c *Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// BaseURL returns the server URL the client was configured with, without trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("base url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base url %q: scheme must be http or https", raw)
	case u.Host == "":
		return nil, fmt.Errorf("base url %q: no host", raw)
	case u.User != nil:
		return nil, errors.New("base url: credentials in the url are not allowed, use Config.Auth")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("base url %q: no query or fragment allowed", raw)
	case strings.HasSuffix(u.Path, "/api"):
		return nil, fmt.Errorf("base url %q: leave out the /api suffix", raw)
	}
	return u, nil
}

// request describes one API call; do turns it into one or more HTTP attempts.
type request struct {
	method   string
	endpoint string     // templated path for Call and errors
	path     string     // escaped path below the base URL, e.g. "/api/requests/action%3Dcreate..."
	abs      *url.URL   // absolute URL (next links, TUS Location) used instead of path
	query    url.Values // added to path; ignored with abs
	header   http.Header
	ctype    string
	body     func() io.Reader // replayable body; nil: none
	size     int64
	want     int // expected status; 0: any 2xx
	// resend, when set, retries a non-idempotent request like an idempotent one, because the protocol makes a
	// repeat harmless (UploadData). It runs before each resend and may end the call with the answer that a
	// first attempt whose response was lost would have given (adopt non-nil).
	resend func(ctx context.Context) (adopt *response)
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// withJSON sets v, marshalled, as the request body.
func (r request) withJSON(v any) (request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return r, fmt.Errorf("%s %s: encode body: %w", r.method, r.endpoint, err)
	}
	r.ctype = contentTypeJSON
	r.body, r.size = bytesBody(b)
	return r, nil
}

func bytesBody(b []byte) (func() io.Reader, int64) {
	return func() io.Reader { return bytes.NewReader(b) }, int64(len(b))
}

func (c *Client) urlFor(r request) (*url.URL, error) {
	if r.abs != nil {
		return r.abs, nil
	}
	u := *c.base
	raw := c.base.EscapedPath() + r.path
	p, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad path %q: %w", r.method, r.endpoint, raw, err)
	}
	u.Path, u.RawPath = p, raw
	u.RawQuery = r.query.Encode()
	return &u, nil
}

// do runs r under the call deadline, retrying idempotent requests, and returns the response or an error.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u, err := c.urlFor(r)
	if err != nil {
		return nil, err
	}
	attempts := 1
	if idempotent(r.method) || r.resend != nil {
		attempts = c.retry.MaxAttempts
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, r, u, attempt)
		if err == nil {
			return resp, nil
		}
		if attempt >= attempts || ctx.Err() != nil || !retryable(resp, err) {
			return nil, err
		}
		wait := c.backoff(attempt, resp)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait { // ctx deadlines use the real clock
			return nil, err // the wait would outlast the deadline: report the real failure now
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (retry abandoned: %w)", err, serr)
		}
		if r.resend != nil {
			if adopt := r.resend(ctx); adopt != nil {
				return adopt, nil
			}
		}
	}
}

// attempt sends one HTTP request. A non-nil response comes with a nil error or an *APIError.
func (c *Client) attempt(ctx context.Context, r request, u *url.URL, n int) (*response, error) {
	var body io.Reader
	if r.body != nil {
		body = r.body()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.endpoint, err)
	}
	if r.body != nil {
		req.ContentLength = r.size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(r.body()), nil }
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", mediaType)
	req.Header.Set("User-Agent", c.ua)
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if c.org != "" {
		req.Header.Set("X-Organization", c.org)
	}
	if c.auth != nil {
		c.auth.apply(req.Header)
	}

	call := Call{Method: r.method, Endpoint: r.endpoint, Attempt: n, Start: c.now()}
	resp, err := c.hc.Do(req)
	var out *response
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		call.Status, call.RequestID = resp.StatusCode, resp.Header.Get("X-Request-Id")
		out = &response{status: resp.StatusCode, header: resp.Header, body: b}
		if err != nil {
			err = fmt.Errorf("%s %s: read response: %w", r.method, r.endpoint, err)
		}
	} else {
		err = fmt.Errorf("%s %s: %w", r.method, r.endpoint, err)
	}
	call.Duration = c.now().Sub(call.Start)
	if out == nil || err != nil {
		call.Err = err
	}
	c.report(ctx, call)
	if err != nil {
		return nil, err
	}
	if out.status/100 != 2 {
		return out, newAPIError(r.method, r.endpoint, out)
	}
	if r.want != 0 && out.status != r.want {
		// The body of an unexpected success may hold a secret (an access token): keep it out of the error.
		return out, &APIError{Method: r.method, Endpoint: r.endpoint, Status: out.status,
			RequestID: call.RequestID, Detail: fmt.Sprintf("unexpected status, want %d", r.want)}
	}
	return out, nil
}

func (c *Client) report(ctx context.Context, call Call) {
	if c.onCall != nil {
		c.onCall(call)
	}
	obs, _ := ctx.Value(observersKey{}).([]func(Call))
	for _, fn := range obs {
		fn(call)
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func retryable(resp *response, err error) bool {
	if resp == nil {
		return !errors.Is(err, context.Canceled) && !IsPermanentTransportError(err)
	}
	switch resp.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// IsPermanentTransportError reports a transport failure that another attempt cannot mend: https:// to a
// plain-HTTP server, or a certificate the client does not accept.
func IsPermanentTransportError(err error) bool {
	if err == nil {
		return false
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verify) ||
		errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// backoff returns the wait before retry number n (1-based): Retry-After when the server sent one, else
// Initial·2^(n-1) capped at Max, with "equal jitter" (half fixed, half random) to spread synchronized pollers.
func (c *Client) backoff(n int, resp *response) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.header.Get("Retry-After"), c.now()); ok {
			return d
		}
	}
	d := c.retry.Max
	if n-1 < 32 {
		d = min(c.retry.Initial<<(n-1), c.retry.Max)
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// getJSON, sendJSON: the common shapes of a JSON call.
func (c *Client) getJSON(ctx context.Context, r request, out any) error {
	r.method = http.MethodGet
	return c.decode(ctx, r, out)
}

func (c *Client) sendJSON(ctx context.Context, r request, in, out any) error {
	r, err := r.withJSON(in)
	if err != nil {
		return err
	}
	return c.decode(ctx, r, out)
}

func (c *Client) decode(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.endpoint, err)
	}
	return nil
}

// page is one page of any CVAT list endpoint.
type page[T any] struct {
	Count   int     `json:"count"`
	Next    *string `json:"next"`
	Results []T     `json:"results"`
}

// listAll walks every page of a list endpoint, following the absolute next links.
func listAll[T any](ctx context.Context, c *Client, r request) ([]T, error) {
	if r.query == nil {
		r.query = url.Values{}
	}
	r.query.Set("page_size", listPageSize)
	want := c.base.Path + r.path
	var all []T
	for {
		var p page[T]
		if err := c.getJSON(ctx, r, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Results...)
		if p.Next == nil || *p.Next == "" {
			return all, nil
		}
		if len(p.Results) == 0 {
			return nil, fmt.Errorf("%s: empty page with a next link %q", r.endpoint, *p.Next)
		}
		u, err := c.sameOrigin(*p.Next, want)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.endpoint, err)
		}
		r.abs = u
	}
}

// sameOrigin resolves a server-provided link (next page, TUS Location) and refuses links to another origin
// or, when wantPath is set, another path: the credentials must not leave the configured server.
func (c *Client) sameOrigin(link, wantPath string) (*url.URL, error) {
	u, err := c.base.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", link, err)
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || origin(u) != origin(c.base) {
		return nil, fmt.Errorf("link %q is not on the server %s", link, c.base.Redacted())
	}
	if wantPath != "" && u.Path != wantPath {
		return nil, fmt.Errorf("link %q: path is not %s", link, wantPath)
	}
	return u, nil
}

func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// escapeSegment percent-encodes everything but RFC 3986 unreserved characters, like Python's
// quote(s, safe="") that the SDK applies to path parameters: "=" and "&" of an rq_id are encoded too.
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// IsLoopbackURL reports whether rawURL names a server on this host (localhost or a loopback address):
// one that shares the local clock and can reach a receiver on 127.0.0.1.
func IsLoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}
