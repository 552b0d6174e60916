// Package realserver gives tests a client for a real CVAT server named by the environment, and skips them
// with a message saying how to provide one when none is named (in CI too: CI cannot build CVAT).
package realserver

import (
	"context"
	"os"
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

// Environment variables naming the server and its credentials.
const (
	EnvURL      = "CVATBENCH_REAL_URL"
	EnvUser     = "CVATBENCH_REAL_USER"
	EnvPassword = "CVATBENCH_REAL_PASSWORD"
	EnvToken    = "CVATBENCH_REAL_TOKEN"
)

// Server is a real CVAT server under test.
type Server struct {
	URL      string
	User     string
	Password string // "" with a token
	Token    string
}

// Get returns the server the environment names, or skips t.
func Get(t testing.TB) Server {
	t.Helper()
	s := Server{URL: os.Getenv(EnvURL), User: os.Getenv(EnvUser), Password: os.Getenv(EnvPassword), Token: os.Getenv(EnvToken)}
	if s.URL == "" {
		t.Skipf("no real CVAT: set %s (and %s/%s or %s) to a CVAT 2.73 server to run this test; ../shared/realcvat/README.md brings one up without Docker", EnvURL, EnvUser, EnvPassword, EnvToken)
	}
	if s.Token == "" && (s.User == "" || s.Password == "") {
		t.Fatalf("%s is set but neither %s nor both %s and %s are", EnvURL, EnvToken, EnvUser, EnvPassword)
	}
	return s
}

// Client logs in (a token login for a password) and returns a client.
func (s Server) Client(t testing.TB) *cvat.Client {
	t.Helper()
	auth := cvat.Bearer(s.Token)
	if s.Token == "" {
		key, err := cvat.Login(context.Background(), s.URL, s.User, s.Password, nil)
		if err != nil {
			t.Fatalf("login to %s: %v", s.URL, err)
		}
		auth = cvat.Token(key)
	}
	c, err := cvat.New(cvat.Config{BaseURL: s.URL, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SameHost reports whether the server runs on this machine (a loopback address): its clock is ours.
func (s Server) SameHost() bool { return cvat.IsLoopbackURL(s.URL) }
