package bench

import "testing"

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://cvat.example:8080", "http://cvat.example:8080"},
		{"https://admin:secret@cvat.example/", "https://cvat.example/"},
		{"http://host/?token=abc#frag", "http://host/"},
		{"://bad", "(unparsable url)"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
