package strategies_test

import (
	"strings"
	"testing"

	"github.com/cvatbench/cvatbench/strategies"
)

// TestNewWebhookRejectsAddressesPrepareWouldFailOn: what Prepare would only learn by listening (a port out of
// range, a receiver on all interfaces with no URL for CVAT to use) is rejected by the constructor.
func TestNewWebhookRejectsAddressesPrepareWouldFailOn(t *testing.T) {
	tests := []struct {
		name        string
		listen, url string
		want        []string // substrings of the error; nil: valid
	}{
		{"loopback, any port", "127.0.0.1:0", "", nil},
		{"named host", "localhost:8099", "", nil},
		{"ipv6 loopback", "[::1]:0", "", nil},
		{"all interfaces with url", "0.0.0.0:8099", "https://bench.example/hook", nil},
		{"port highest", "127.0.0.1:65535", "", nil},
		{"port above range", "127.0.0.1:99999", "", []string{`"127.0.0.1:99999"`, `port "99999"`}},
		{"negative port", "127.0.0.1:-1", "", []string{`port "-1"`}},
		{"empty port", "127.0.0.1:", "", []string{`port ""`}},
		{"service name", "127.0.0.1:http", "", []string{`port "http"`}},
		{"no port", "nope", "", []string{`"nope"`}},
		{"ipv4 unspecified without url", "0.0.0.0:0", "", []string{`"0.0.0.0:0" is on all interfaces`}},
		{"ipv6 unspecified without url", "[::]:0", "", []string{"all interfaces"}},
		{"no host without url", ":0", "", []string{"all interfaces"}},
		{"bad url", "127.0.0.1:0", "ftp://x", []string{`webhook url "ftp://x"`}},
		{"every problem at once", "0.0.0.0:70000", "", []string{"0..65535", "all interfaces"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := strategies.DefaultParams()
			p.WebhookListen, p.WebhookURL = tc.listen, tc.url
			w, err := strategies.NewWebhook(p)
			if cerr := strategies.CheckWebhookAddress(tc.listen, tc.url); (cerr == nil) != (err == nil) {
				t.Errorf("CheckWebhookAddress = %v, NewWebhook = %v: they disagree", cerr, err)
			}
			if tc.want == nil {
				if err != nil || w == nil {
					t.Fatalf("NewWebhook = %v, %v; want a strategy", w, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewWebhook accepted %q with url %q", tc.listen, tc.url)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}
