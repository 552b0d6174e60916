// Package schemacheck validates HTTP traffic against CVAT's OpenAPI schema (cvat/schema.yml, CVAT 2.73.0).
//
// Tests use it in two places: around the emulator's handler (Middleware), to prove the emulator answers what
// the schema promises, and around the client's transport (Transport), to prove the client sends what the schema
// accepts. Real CVAT deviates from its own schema in a few documented ways; those are allowed explicitly and
// narrowly in deviations.go, each with a reference to /work/shared/cvat/API.md.
//
// It is a normal package so that tests of several packages can share it, but only tests import it.
package schemacheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvShared names the environment variable pointing at a directory that contains cvat/schema.yml.
const EnvShared = "CVATBENCH_SHARED"

// cvatJSON is CVAT's response media type (API.md §1.2); it is JSON and must be decoded as such.
const cvatJSON = "application/vnd.cvat+json"

// Validator checks requests and responses against the loaded schema. It is safe for concurrent use: the
// document and router are read-only after loading.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	// Path is the schema file that was loaded.
	Path string
	// LoadDuration is how long reading, parsing and resolving the schema took (once per process).
	LoadDuration time.Duration
}

var (
	loadOnce  sync.Once
	loaded    *Validator
	loadErr   error
	missingAt string // schema path looked for, when it does not exist
)

func init() {
	// The decoder registry is global in kin-openapi; registering CVAT's JSON media type here keeps every
	// Validator consistent and happens before any validation can run.
	openapi3filter.RegisterBodyDecoder(cvatJSON, openapi3filter.JSONBodyDecoder)
}

// Load returns the process-wide Validator, loading the schema on first use. The schema is found through
// CVATBENCH_SHARED (a directory containing cvat/schema.yml), else ../shared next to the module root. When it
// is missing the test is skipped, or fails if env CI is set.
func Load(t testing.TB) *Validator {
	t.Helper()
	first := false
	loadOnce.Do(func() {
		first = true
		path, err := schemaPath()
		if err != nil {
			loadErr = err
			return
		}
		if _, err := os.Stat(path); err != nil {
			missingAt = path
			return
		}
		loaded, loadErr = LoadFile(path)
	})
	switch {
	case missingAt != "":
		msg := fmt.Sprintf("schemacheck: CVAT schema not found at %s; set %s to a directory containing cvat/schema.yml", missingAt, EnvShared)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case loadErr != nil:
		t.Fatalf("schemacheck: %v", loadErr)
	}
	if first {
		t.Logf("schemacheck: loaded %s in %s", loaded.Path, loaded.LoadDuration.Round(time.Millisecond))
	}
	return loaded
}

// schemaPath resolves where cvat/schema.yml should be.
func schemaPath() (string, error) {
	if dir := os.Getenv(EnvShared); dir != "" {
		return filepath.Join(dir, "cvat", "schema.yml"), nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "cvat", "schema.yml"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find module root: no go.mod above %s; set %s", wd, EnvShared)
		}
	}
}

// LoadFile parses the schema at path and builds its router. Most callers want Load, which does this once.
func LoadFile(path string) (*Validator, error) {
	start := time.Now()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("parse schema %s: %w", path, err)
	}
	// The schema has no servers section; without one every host matches, which is what we need for
	// httptest servers on random ports.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build router: %w", err)
	}
	return &Validator{doc: doc, router: router, Path: path, LoadDuration: time.Since(start)}, nil
}

// Doc returns the parsed schema, for tests that validate values against components.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// CheckValue validates a decoded JSON value (from json.Unmarshal into any) against the named component
// schema, as a response body.
func (v *Validator) CheckValue(component string, value any) error {
	ref, ok := v.doc.Components.Schemas[component]
	if !ok || ref.Value == nil {
		return fmt.Errorf("schema component %q not found", component)
	}
	return ref.Value.VisitJSON(value, openapi3.VisitAsResponse(), openapi3.MultiErrors())
}

// options are the filter options shared by all checks.
func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		// Authentication is the emulator's and client's business, tested elsewhere; the schema lists
		// several alternative schemes and the filter would demand one of them.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		// Undocumented statuses are errors; documented error forms are let through in deviations.go.
		IncludeResponseStatus: true,
		// Never mutate the request we were given.
		SkipSettingDefaults: true,
		MultiError:          true,
	}
}

// CheckRequest validates r (path, query, headers) and body against the operation it routes to. body is the
// complete request body (nil or empty for none); r.Body is not read.
func (v *Validator) CheckRequest(r *http.Request, body []byte) error {
	if skipPath(r.URL) {
		return nil
	}
	if err := v.checkRequest(r, body, false); err != nil {
		return fmt.Errorf("%s %s: request: %w", r.Method, r.URL.EscapedPath(), err)
	}
	return nil
}

// checkRequest checks r; server relaxes the rules where CVAT accepts what the schema forbids (normalizeQuery).
func (v *Validator) checkRequest(r *http.Request, body []byte, server bool) error {
	if ok, err := checkTUSRequest(r); ok {
		return err
	}
	nr := normalizeRequest(r, body, server)
	route, params, err := v.router.FindRoute(nr)
	if err != nil {
		return fmt.Errorf("route: %w", err)
	}
	opts := options()
	multipart := isMultipart(nr.Header.Get("Content-Type"))
	if multipart {
		// kin-openapi's multipart decoder rejects CVAT's indexed field names (client_files[0]); we check
		// the form ourselves below.
		opts.ExcludeRequestBody = true
	}
	in := &openapi3filter.RequestValidationInput{Request: nr, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return err
	}
	if multipart {
		return checkMultipart(route, nr.Header.Get("Content-Type"), body)
	}
	return nil
}

// CheckResponse validates a response (status, headers, body) to request r. r.Body is not read.
func (v *Validator) CheckResponse(r *http.Request, status int, h http.Header, body []byte) error {
	if skipPath(r.URL) {
		return nil
	}
	if err := v.checkResponse(r, status, h, body); err != nil {
		return fmt.Errorf("%s %s: response %d: %w", r.Method, r.URL.EscapedPath(), status, err)
	}
	return nil
}

func (v *Validator) checkResponse(r *http.Request, status int, h http.Header, body []byte) error {
	if ok, err := checkTUSResponse(r, status, h); ok {
		return err
	}
	nr := normalizeRequest(r, nil, true)
	route, params, err := v.router.FindRoute(nr)
	if err != nil {
		if ok, derr := allowedUnrouted(err, status, h, body); ok {
			return derr
		}
		return fmt.Errorf("route: %w", err)
	}
	if ok, err := allowedResponse(route, nr, status, h, body); ok {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: nr, PathParams: params, Route: route},
		Status:                 status,
		Header:                 h,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                options(),
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// normalizeRequest returns a copy of r with the documented deviations undone (see deviations.go) and body as
// its body, so that the filter sees what the schema describes.
func normalizeRequest(r *http.Request, body []byte, server bool) *http.Request {
	nr := r.Clone(context.Background())
	nr.Body = io.NopCloser(bytes.NewReader(body))
	nr.ContentLength = int64(len(body))
	nr.GetBody = nil
	u := *r.URL
	nr.URL = &u
	if u.Host == "" && r.Host != "" {
		nr.URL.Host = r.Host // server side: route on the Host header like the client did
	}
	normalizePath(nr.URL)
	normalizeQuery(nr.URL, server)
	normalizeHeaders(nr.Header)
	return nr
}

// skipPath reports whether u is emulator-only (no such path exists in real CVAT).
func skipPath(u *url.URL) bool {
	return strings.HasPrefix(u.Path, "/_cvatsim/")
}

// errEmptyBody is returned when a response needs a body and has none.
var errEmptyBody = errors.New("empty body")
