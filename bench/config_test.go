package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cvatbench/cvatbench/bench/record"
	"github.com/google/go-cmp/cmp"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Strategies = []string{"poll", "sdk"}
	c.TasksPerStrategy = 4
	c.Concurrency = 2
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the joined error; nil = valid
	}{
		{"defaults are valid", func(*Config) {}, nil},
		{"default config as shipped", func(c *Config) { *c = DefaultConfig() }, nil},
		{"open loop", func(c *Config) { c.Concurrency, c.Rate = 0, 0.5 }, nil},
		{"images dir without count", func(c *Config) { c.ImagesDir, c.Images, c.ImageSize, c.ImageFormat = "x", 0, "", "" }, nil},
		{"sweep", func(c *Config) { c.ImageQualities = []int{1, 50, 100} }, nil},
		{"no strategies", func(c *Config) { c.Strategies = nil }, []string{"no strategies"}},
		{"unknown strategy", func(c *Config) { c.Strategies = []string{"poll", "nap"} }, []string{`unknown strategy "nap"`, "known: "}},
		{"duplicate strategy", func(c *Config) { c.Strategies = []string{"poll", "poll"} }, []string{`"poll" given twice`}},
		{"zero tasks", func(c *Config) { c.TasksPerStrategy = 0 }, []string{"tasks per strategy 0"}},
		{"rate and concurrency", func(c *Config) { c.Rate = 1 }, []string{"exclusive"}},
		{"neither rate nor concurrency", func(c *Config) { c.Concurrency = 0 }, []string{"neither concurrency nor rate"}},
		{"negative rate", func(c *Config) { c.Concurrency, c.Rate = 0, -1 }, []string{"rate -1"}},
		{"negative concurrency", func(c *Config) { c.Concurrency = -2 }, []string{"concurrency -2"}},
		{"concurrency above trials", func(c *Config) { c.TasksPerStrategy, c.Concurrency = 1, 3 }, []string{"concurrency 3 exceeds the 2 scheduled trials"}},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout 0s must be positive"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"timeout -1s must be positive"}},
		{"timeout beyond histogram", func(c *Config) { c.Timeout = time.Hour }, []string{"exceeds 30m0s"}},
		{"quality 0", func(c *Config) { c.ImageQualities = []int{0} }, []string{"image quality 0 is outside 1..100"}},
		{"quality 101", func(c *Config) { c.ImageQualities = []int{70, 101} }, []string{"image quality 101"}},
		{"no quality", func(c *Config) { c.ImageQualities = nil }, []string{"no image quality"}},
		{"duplicate quality", func(c *Config) { c.ImageQualities = []int{70, 70} }, []string{"image quality 70 given twice"}},
		{"bad image size", func(c *Config) { c.ImageSize = "640*480" }, []string{`image size "640*480"`}},
		{"zero image side", func(c *Config) { c.ImageSize = "0x480" }, []string{`image size "0x480"`}},
		{"huge image", func(c *Config) { c.ImageSize = "20000x10" }, []string{`image size "20000x10"`}},
		{"bad format", func(c *Config) { c.ImageFormat = "bmp" }, []string{`image format "bmp"`}},
		{"zero images", func(c *Config) { c.Images = 0 }, []string{"images 0 must be at least 1"}},
		{"negative images with dir", func(c *Config) { c.ImagesDir, c.Images = "x", -1 }, []string{"images -1"}},
		{"negative segment size", func(c *Config) { c.SegmentSizes = []int{5, -1} }, []string{"segment size -1"}},
		{"segment size twice", func(c *Config) { c.SegmentSizes = []int{5, 5} }, []string{"segment size 5 given twice"}},
		{"no segment size", func(c *Config) { c.SegmentSizes = nil }, []string{"no segment size given"}},
		{"bad upload mode", func(c *Config) { c.UploadMode = "ftp" }, []string{`upload mode "ftp"`}},
		{"no out dir", func(c *Config) { c.OutDir = "" }, []string{"no output directory"}},
		{"zero poll interval", func(c *Config) { c.PollInterval = 0 }, []string{"poll interval 0s"}},
		{"negative sdk period", func(c *Config) { c.SDKPeriod = -time.Second }, []string{"sdk period -1s"}},
		{"backoff initial above max", func(c *Config) { c.BackoffInitial, c.BackoffMax = time.Minute, time.Second }, []string{"backoff initial 1m0s exceeds"}},
		{"backoff factor below 1", func(c *Config) { c.BackoffFactor = 0.5 }, []string{"backoff factor 0.5"}},
		{"jitter above 1", func(c *Config) { c.BackoffJitter = 1.5 }, []string{"backoff jitter 1.5"}},
		// Upper bounds: beyond them a run crashes (memory) instead of measuring.
		{"tasks at the limit", func(c *Config) { c.TasksPerStrategy = record.MaxTasksPerStrategy }, nil},
		{"tasks above the limit", func(c *Config) { c.TasksPerStrategy = record.MaxTasksPerStrategy + 1 }, []string{"tasks per strategy 100001 exceeds the limit of 100000"}},
		{"a billion tasks", func(c *Config) { c.TasksPerStrategy = 1_000_000_000 }, []string{"tasks per strategy 1000000000 exceeds"}},
		{"trials above the limit", func(c *Config) {
			c.Strategies, c.ImageQualities, c.TasksPerStrategy = []string{"poll", "sdk", "cli", "backoff", "ui", "busyloop"}, []int{50, 70}, 100_000
		}, []string{"1200000 trials (6 strategies × 2 image qualities × 1 segment sizes × 100000 tasks) exceed the limit of 1000000"}},
		{"concurrency at the limit", func(c *Config) { c.Concurrency, c.TasksPerStrategy = record.MaxConcurrency, 500 }, nil},
		{"concurrency above the limit", func(c *Config) { c.Concurrency, c.TasksPerStrategy = record.MaxConcurrency+1, 1000 }, []string{"concurrency 1001 exceeds the limit of 1000"}},
		{"images at the limit", func(c *Config) { c.Images, c.ImageSize = record.MaxImages, "64x48" }, nil},
		{"images above the limit", func(c *Config) { c.Images = record.MaxImages + 1 }, []string{"images 10001 exceeds the limit of 10000"}},
		{"images above the limit with dir", func(c *Config) { c.ImagesDir, c.Images = "x", 100_000 }, []string{"images 100000 exceeds"}},
		{"image side at the limit", func(c *Config) { c.Images, c.ImageSize = 1, "8192x8192" }, nil},
		{"image side above the limit", func(c *Config) { c.Images, c.ImageSize = 1, "8193x1" }, []string{`image size "8193x1"`, "1..8192"}},
		{"pixels at the budget", func(c *Config) { c.Images, c.ImageSize = 16, "8192x8192" }, nil}, // 2^30 exactly
		{"pixels above the budget", func(c *Config) { c.Images, c.ImageSize = 17, "8192x8192" }, []string{"images 17 of 8192x8192 make 1140850688 pixels", "1073741824"}},
		{"default size, many images", func(c *Config) { c.Images = 5000 }, []string{"images 5000 of 640x480"}},
		// The webhook receiver's address is checked up front when the webhook strategy runs.
		{"webhook port out of range", func(c *Config) { c.Strategies, c.WebhookListen = []string{"webhook"}, "127.0.0.1:99999" },
			[]string{`"127.0.0.1:99999"`, "0..65535"}},
		{"webhook port by name", func(c *Config) { c.Strategies, c.WebhookListen = []string{"webhook"}, "127.0.0.1:http" }, []string{`port "http"`}},
		{"webhook on all interfaces without url", func(c *Config) { c.Strategies, c.WebhookListen = []string{"webhook"}, "0.0.0.0:0" },
			[]string{`"0.0.0.0:0" is on all interfaces`}},
		{"webhook without host without url", func(c *Config) { c.Strategies, c.WebhookListen = []string{"webhook"}, ":8080" },
			[]string{"all interfaces"}},
		{"webhook on all interfaces with url", func(c *Config) {
			c.Strategies, c.WebhookListen, c.WebhookURL = []string{"webhook"}, "[::]:8080", "http://bench.example:8080/hook"
		}, nil},
		{"webhook url relative", func(c *Config) { c.Strategies, c.WebhookURL = []string{"webhook"}, "/hook" }, []string{`webhook url "/hook"`}},
		{"webhook address unused without the webhook strategy", func(c *Config) { c.WebhookListen = "nope" }, nil},
		{"all problems at once", func(c *Config) { c.Timeout, c.ImageFormat, c.TasksPerStrategy = 0, "gif", 0 },
			[]string{"timeout 0s", `image format "gif"`, "tasks per strategy 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := Validate(c)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigJSONRoundTripUsesMilliseconds(t *testing.T) {
	c := validConfig()
	c.Timeout = 90 * time.Second
	c.PollInterval = 250 * time.Millisecond
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"timeout_ms":90000`, `"poll_interval_ms":250`, `"strategies":["poll","sdk"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// meta.json records the chunk mode the run used, not the "" that chose it.
	if !strings.Contains(string(b), `"chunks":"none"`) {
		t.Errorf("JSON %s does not name the resolved chunk mode", b)
	}
	c.Chunks = c.ChunkMode()
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
