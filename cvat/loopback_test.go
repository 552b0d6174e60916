package cvat_test

import (
	"testing"

	"github.com/cvatbench/cvatbench/cvat"
)

func TestIsLoopbackURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost": true, "https://[::1]:443/x": true, "http://127.3.2.1": true,
		"https://cvat.example.com": false, "http://10.0.0.5:8080": false, "::not a url": false, "": false,
	} {
		if got := cvat.IsLoopbackURL(raw); got != want {
			t.Errorf("IsLoopbackURL(%q) = %v, want %v", raw, got, want)
		}
	}
}
