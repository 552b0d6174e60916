package cvat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/cvat"
	"github.com/cvatbench/cvatbench/internal/schemacheck"
)

// newClient starts h in an httptest server and returns a client for it that never sleeps for real.
// mod adjusts the config; schema wraps the transport in the OpenAPI validator (for schema-shaped fakes).
func newClient(t *testing.T, h http.Handler, schema bool, mod func(*cvat.Config)) (*cvat.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	if _, found := findShared(); schema && (found || os.Getenv("CI") != "") {
		hc = &http.Client{Transport: schemacheck.Load(t).Transport(t, srv.Client().Transport)}
	} else if schema {
		t.Log("schema validation off: set CVATBENCH_SHARED to a directory containing cvat/schema.yml")
	}
	cfg := cvat.Config{BaseURL: srv.URL, Auth: cvat.Token("test-key"), HTTPClient: hc}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cvat.New(cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	cvat.SetSleep(c, func(context.Context, time.Duration) error { return nil })
	return c, srv
}

// writeJSON answers like CVAT: vnd.cvat+json and an X-Request-Id.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/vnd.cvat+json")
	w.Header().Set("X-Request-Id", "req-1")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// callLog collects Calls from any number of goroutines.
type callLog struct {
	mu    sync.Mutex
	calls []cvat.Call
}

func (l *callLog) add(c cvat.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *callLog) all() []cvat.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]cvat.Call(nil), l.calls...)
}

// findShared locates /work/shared: $CVATBENCH_SHARED, else ../shared next to the module root.
func findShared() (string, bool) {
	dir := os.Getenv("CVATBENCH_SHARED")
	if dir == "" {
		wd, _ := os.Getwd()
		for d := wd; d != "" && filepath.Dir(d) != d; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "..", "shared")
				break
			}
		}
	}
	_, err := os.Stat(filepath.Join(dir, "cvat", "schema.yml"))
	return dir, dir != "" && err == nil
}

// sharedDir returns the shared directory, skipping the test (failing it under CI) when it is missing.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, ok := findShared()
	if !ok {
		msg := "CVAT reference files not found (" + dir + "): set CVATBENCH_SHARED to a directory containing cvat/"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}
