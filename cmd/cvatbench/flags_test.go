package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// flagCase is one bad (or unreachable) value of one flag. Cases of flags a command does not define are skipped,
// so the table may run ahead of the commands.
type flagCase struct {
	name string
	cmd  string // subcommand; "" for the app itself
	flag string // the flag the case covers, without dashes; "" for none
	env  map[string]string
	args []string // after the subcommand; run cases get --out <temp dir> first
	code int      // exitUsage for bad input, exitRuntime for failures at run time
	want string   // substring of the error line
}

// flagsExempt lists flags without a case here, and why.
var flagsExempt = map[string]string{
	// Covered through run() by other tests of this package.
	"run/sim-profile":    "TestRunBadInputIsOneLineExit2",
	"run/upload-mode":    "TestRunBadInputIsOneLineExit2",
	"run/slo":            "TestRunSLO",
	"sim/profile":        "TestSimBadFlagsAreUsageErrors",
	"sim/print-profile":  "TestSimBadFlagsAreUsageErrors",
	"sim/password":       "TestSimBadFlagsAreUsageErrors",
	"sim/per-job":        "TestSimBadFlagsAreUsageErrors",
	"cleanup/url":        "TestCleanupBadInputIsOneLineExit2",
	"cleanup/user":       "TestCleanupBadInputIsOneLineExit2",
	"cleanup/password":   "TestCleanupBadInputIsOneLineExit2",
	"cleanup/token":      "TestCleanupBadInputIsOneLineExit2",
	"cleanup/older-than": "TestCleanupBadInputIsOneLineExit2",
	"report/format":      "TestReportBadInputIsExit2",
	"report/percentiles": "TestReportBadInputIsExit2",
	"report/slo":         "TestReportBadInputIsExit2",
	"report/out":         "TestReportBadInputIsExit2",
	"report/merge":       "TestReportBadInputIsExit2",
	"compare/format":     "TestCompareCommand",
	"compare/resamples":  "TestCompareCommand",
	"compare/confidence": "TestCompareCommand",
	// Free text the server judges: no value is invalid before a request is made.
	"cleanup/org":   "free text; a wrong slug is the server's 4xx (runtime)",
	"calibrate/org": "free text; a wrong slug is the server's 4xx (runtime)",
}

// flagsCases is the table; dir is a valid results directory for report and compare, file a regular file.
func flagsCases(dir, file, busy, reject string) []flagCase {
	const unreachable = "http://127.0.0.1:1" // nothing listens on port 1
	u := unreachable
	noCreds := map[string]string{"CVAT_USER": "", "CVAT_PASSWORD": "", "CVAT_ACCESS_TOKEN": ""}
	return []flagCase{
		// App level.
		{name: "clock method unknown", cmd: "run", flag: "clock", args: []string{"--clock", "ntp"}, code: exitUsage, want: `--clock "ntp"`},
		{name: "unknown command", cmd: "", args: []string{"benchmark"}, code: exitUsage, want: "benchmark"},
		{name: "unknown command with flags", cmd: "", args: []string{"benchmark", "--tasks", "1"}, code: exitUsage, want: "unknown command"},
		{name: "help for an unknown command", cmd: "", args: []string{"help", "benchmark"}, code: exitUsage, want: "benchmark"},

		// run: credentials and target.
		{name: "url ftp scheme", cmd: "run", flag: "url", args: []string{"--url", "ftp://127.0.0.1:1", "--token", "tok-Zz1"}, code: exitUsage, want: "--url"},
		{name: "url with credentials", cmd: "run", flag: "url", args: []string{"--url", "http://admin:pw-in-url-Zz1@127.0.0.1:1", "--token", "tok-Zz1"}, code: exitUsage, want: "credentials"},
		{name: "url with api suffix", cmd: "run", flag: "url", args: []string{"--url", u + "/api", "--token", "tok-Zz1"}, code: exitUsage, want: "/api"},
		{name: "url port out of range", cmd: "run", flag: "url", args: []string{"--url", "http://127.0.0.1:99999", "--token", "tok-Zz1"}, code: exitUsage, want: "--url port"},
		{name: "url with query", cmd: "run", flag: "url", args: []string{"--url", u + "/?token=tok-Zz1", "--token", "tok-Zz1"}, code: exitUsage, want: "--url"},
		{name: "url unreachable with token", cmd: "run", flag: "url", args: []string{"--url", u, "--token", "tok-Zz1"}, code: exitRuntime, want: "connection refused"},
		{name: "url unreachable with password", cmd: "run", flag: "url", args: []string{"--url", u, "--user", "u", "--password", "pw-Zz1"}, code: exitRuntime, want: "connection refused"},
		{name: "token rejected by the server", cmd: "run", flag: "token", args: []string{"--url", reject, "--token", "tok-Zz1"}, code: exitRuntime, want: "401"},
		{name: "env token and flag user", cmd: "run", flag: "user", env: map[string]string{"CVAT_ACCESS_TOKEN": "tok-Zz1"}, args: []string{"--url", u, "--user", "u", "--password", "pw-Zz1"}, code: exitUsage, want: "not both"},
		{name: "password without user", cmd: "run", flag: "password", args: []string{"--url", u, "--password", "pw-Zz1"}, code: exitUsage, want: "needs --token or both"},
		{name: "env password without user", cmd: "run", flag: "password", env: map[string]string{"CVAT_PASSWORD": "pw-Zz1"}, args: []string{"--url", u}, code: exitUsage, want: "needs --token or both"},
		{name: "unknown fault profile", cmd: "run", flag: "sim-faults", args: []string{"--sim-faults", "doom"}, code: exitUsage, want: "--sim-faults"},
		{name: "fault probability above 1", cmd: "run", flag: "sim-faults", args: []string{"--sim-faults", "procfail=1.5"}, code: exitUsage, want: "--sim-faults"},
		{name: "faults with url", cmd: "run", flag: "sim-faults", args: []string{"--sim-faults", "flaky", "--url", u, "--token", "tok-Zz1"}, code: exitUsage, want: "--sim-faults"},
		{name: "unknown what-if", cmd: "run", flag: "sim-what-if", args: []string{"--sim-what-if", "instant-jobs"}, code: exitUsage, want: `--sim-what-if: unknown what-if "instant-jobs"`},
		{name: "what-if with url", cmd: "run", flag: "sim-what-if", args: []string{"--sim-what-if", "prealloc-jobs", "--strategies", "poll", "--url", u, "--token", "tok-Zz1"}, code: exitUsage, want: "needs the embedded emulator"},
		{name: "prealloc without the what-if", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll,prealloc"}, code: exitUsage, want: "strategy prealloc needs --sim-what-if prealloc-jobs"},
		{name: "sim unknown what-if", cmd: "sim", flag: "what-if", args: []string{"--what-if", "x"}, code: exitUsage, want: `--what-if: unknown what-if "x"`},
		{name: "static cache not a bool", cmd: "run", flag: "sim-static-cache", args: []string{"--sim-static-cache=maybe"}, code: exitUsage, want: "sim-static-cache"},
		{name: "token without url", cmd: "run", flag: "token", args: []string{"--token", "tok-Zz1"}, code: exitUsage, want: "need --url"},
		{name: "org without url", cmd: "run", flag: "org", args: []string{"--org", "team"}, code: exitUsage, want: "need --url"},

		// run: workload.
		{name: "strategy twice", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll,poll"}, code: exitUsage, want: "twice"},
		{name: "spec with an unknown key", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll:period=1s"}, code: exitUsage, want: `poll has no parameter "period"`},
		{name: "spec with a bad value", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll:interval=fast"}, code: exitUsage, want: "interval=fast: not a duration"},
		{name: "spec without a value", cmd: "run", flag: "strategies", args: []string{"--strategies", "backoff:factor"}, code: exitUsage, want: "is not key=value"},
		{name: "spec with a negative interval", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll:interval=-25ms"}, code: exitUsage, want: "interval must be positive"},
		{name: "spec with a factor below 1", cmd: "run", flag: "strategies", args: []string{"--strategies", "backoff:factor=0.5"}, code: exitUsage, want: "factor must be at least 1"},
		{name: "spec duplicating a bare name", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll", "--strategies", "poll:interval=0.1s"}, code: exitUsage, want: "same configuration"},
		{name: "spec given twice in two spellings", cmd: "run", flag: "strategies", args: []string{"--strategies", "poll:interval=25ms", "--strategies", "poll:interval=0.025s"}, code: exitUsage, want: "twice"},
		{name: "two webhook specs on a fixed port", cmd: "run", flag: "strategies", args: []string{"--strategies", "webhook,webhook:safety=1s", "--webhook-listen", "127.0.0.1:18080"}, code: exitUsage, want: "use port 0"},
		{name: "empty strategy", cmd: "run", flag: "strategies", args: []string{"--strategies", ""}, code: exitUsage, want: `unknown strategy ""`},
		{name: "negative batch", cmd: "run", flag: "batch", args: []string{"--batch", "-2"}, code: exitUsage, want: "batch -2 must be positive"},
		{name: "batch above the limit", cmd: "run", flag: "batch", args: []string{"--batch", "1001", "--tasks", "2000", "--strategies", "poll"}, code: exitUsage, want: "batch 1001 exceeds the limit of 1000 tasks"},
		{name: "batch above the tasks", cmd: "run", flag: "batch", args: []string{"--batch", "10", "--tasks", "5", "--strategies", "poll"}, code: exitUsage, want: "exceeds the 5 tasks per strategy"},
		{name: "batch at a rate", cmd: "run", flag: "batch", args: []string{"--batch", "2", "--tasks", "4", "--rate", "5", "--strategies", "poll"}, code: exitUsage, want: "runs closed loop"},
		{name: "project-poll without batch", cmd: "run", flag: "strategies", args: []string{"--strategies", "project-poll"}, code: exitUsage, want: "strategy project-poll waits for a batch of tasks: it needs --batch"},
		{name: "project-webhook on a fixed port", cmd: "run", flag: "strategies", args: []string{"--strategies", "project-webhook", "--batch", "2", "--tasks", "4", "--concurrency", "2", "--webhook-listen", "127.0.0.1:18081"}, code: exitUsage, want: "use port 0"},
		{name: "negative tasks", cmd: "run", flag: "tasks", args: []string{"--tasks", "-1"}, code: exitUsage, want: "-1"},
		{name: "a billion tasks", cmd: "run", flag: "tasks", args: []string{"--tasks", "1000000000"}, code: exitUsage, want: "tasks per strategy 1000000000 exceeds the limit"},
		{name: "trials above the limit", cmd: "run", flag: "tasks", args: []string{"--strategies", "poll,sdk,cli,backoff,ui,busyloop", "--image-quality", "50,70", "--tasks", "100000"}, code: exitUsage, want: "exceed the limit of 1000000"},
		{name: "tasks not a number", cmd: "run", flag: "tasks", args: []string{"--tasks", "x"}, code: exitUsage, want: "-tasks"},
		{name: "negative concurrency", cmd: "run", flag: "concurrency", args: []string{"--concurrency", "-1"}, code: exitUsage, want: "concurrency -1"},
		{name: "concurrency above the limit", cmd: "run", flag: "concurrency", args: []string{"--concurrency", "100000", "--tasks", "100000"}, code: exitUsage, want: "concurrency 100000 exceeds the limit"},
		{name: "zero concurrency", cmd: "run", flag: "concurrency", args: []string{"--concurrency", "0"}, code: exitUsage, want: "concurrency"},
		{name: "negative rate", cmd: "run", flag: "rate", args: []string{"--rate", "-1"}, code: exitUsage, want: "rate -1"},
		{name: "NaN rate", cmd: "run", flag: "rate", args: []string{"--rate", "NaN"}, code: exitUsage, want: "rate NaN"},
		{name: "infinite rate", cmd: "run", flag: "rate", args: []string{"--rate", "+Inf"}, code: exitUsage, want: "rate"},
		{name: "shard index past the count", cmd: "run", flag: "shard", args: []string{"--shard", "3/2", "--run-id", "20261203T120000Z-1a2b"}, code: exitUsage, want: `"3/2" is not INDEX/COUNT`},
		{name: "shard of none", cmd: "run", flag: "shard", args: []string{"--shard", "0/0", "--run-id", "20261203T120000Z-1a2b"}, code: exitUsage, want: `"0/0" is not INDEX/COUNT`},
		{name: "shard without run id", cmd: "run", flag: "shard", args: []string{"--shard", "1/4"}, code: exitUsage, want: "needs the run id all shards share"},
		{name: "run id of another form", cmd: "run", flag: "run-id", args: []string{"--run-id", "my-run"}, code: exitUsage, want: "is not of the form 20261203T120000Z-1a2b"},
		{name: "max in flight in closed loop", cmd: "run", flag: "max-in-flight", args: []string{"--max-in-flight", "5"}, code: exitUsage, want: "applies to open loop"},
		{name: "max in flight negative", cmd: "run", flag: "max-in-flight", args: []string{"--rate", "2", "--max-in-flight", "-1"}, code: exitUsage, want: "max in flight -1"},
		{name: "rate not a number", cmd: "run", flag: "rate", args: []string{"--rate", "fast"}, code: exitUsage, want: "-rate"},
		{name: "zero images", cmd: "run", flag: "images", args: []string{"--images", "0"}, code: exitUsage, want: "images 0"},
		{name: "negative images", cmd: "run", flag: "images", args: []string{"--images", "-1"}, code: exitUsage, want: "images -1"},
		{name: "images above the limit", cmd: "run", flag: "images", args: []string{"--images", "100000"}, code: exitUsage, want: "images 100000 exceeds the limit"},
		{name: "images times size above the pixel budget", cmd: "run", flag: "images", args: []string{"--images", "10000", "--image-size", "640x480"}, code: exitUsage, want: "pixels"},
		{name: "image size zero", cmd: "run", flag: "image-size", args: []string{"--image-size", "0x0"}, code: exitUsage, want: `"0x0"`},
		{name: "image size too wide", cmd: "run", flag: "image-size", args: []string{"--image-size", "10001x1"}, code: exitUsage, want: `"10001x1"`},
		{name: "image size above 8192", cmd: "run", flag: "image-size", args: []string{"--image-size", "8193x8193"}, code: exitUsage, want: `"8193x8193"`},
		{name: "image format upper case", cmd: "run", flag: "image-format", args: []string{"--image-format", "PNG"}, code: exitUsage, want: `"PNG"`},
		{name: "images dir missing", cmd: "run", flag: "images-dir", args: []string{"--images-dir", filepath.Join(dir, "no-such-dir"), "--sim-profile", "instant"}, code: exitRuntime, want: "no-such-dir"},
		{name: "images dir without images", cmd: "run", flag: "images-dir", args: []string{"--images-dir", dir, "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1", "--concurrency", "1"}, code: exitRuntime, want: "images dir"},
		{name: "image quality above 100", cmd: "run", flag: "image-quality", args: []string{"--image-quality", "101"}, code: exitUsage, want: "101"},
		{name: "image quality not a number", cmd: "run", flag: "image-quality", args: []string{"--image-quality", "high"}, code: exitUsage, want: "image-quality"},
		{name: "chunks mode unknown", cmd: "run", flag: "chunks", args: []string{"--chunks", "some"}, code: exitUsage, want: `chunks "some" is not one of first, all, none`},
		{name: "quality target SSIM above 1", cmd: "run", flag: "quality-target", args: []string{"--quality-target", "ssim>=1.5"}, code: exitUsage, want: "SSIM lies in [-1, 1]"},
		{name: "quality target unknown metric", cmd: "run", flag: "quality-target", args: []string{"--quality-target", "vmaf>=90"}, code: exitUsage, want: "not ssim or psnr"},
		{name: "quality target without the probe", cmd: "run", flag: "quality-target", args: []string{"--quality-target", "psnr>=40", "--chunks", "none"}, code: exitUsage, want: "--chunks none"},
		{name: "segment size twice", cmd: "run", flag: "segment-size", args: []string{"--segment-size", "5,5"}, code: exitUsage, want: "segment size 5 given twice"},
		{name: "segment size not a number", cmd: "run", flag: "segment-size", args: []string{"--segment-size", "big"}, code: exitUsage, want: "segment-size"},
		{name: "output format unknown", cmd: "run", flag: "output", args: []string{"--output", "yaml"}, code: exitUsage, want: `--output: unknown format "yaml"`},
		{name: "quiet not a bool", cmd: "run", flag: "quiet", args: []string{"--quiet=maybe"}, code: exitUsage, want: "quiet"},
		{name: "negative segment size", cmd: "run", flag: "segment-size", args: []string{"--segment-size", "-1"}, code: exitUsage, want: "segment size -1"},
		{name: "upload mode upper case", cmd: "run", flag: "upload-mode", args: []string{"--upload-mode", "TUS"}, code: exitUsage, want: `"TUS"`},
		{name: "seed not a number", cmd: "run", flag: "seed", args: []string{"--seed", "x"}, code: exitUsage, want: "-seed"},
		{name: "negative timeout", cmd: "run", flag: "timeout", args: []string{"--timeout", "-1s"}, code: exitUsage, want: "timeout -1s"},
		{name: "timeout above histogram range", cmd: "run", flag: "timeout", args: []string{"--timeout", "31m"}, code: exitUsage, want: "31m0s"},
		{name: "negative duration", cmd: "run", flag: "duration", args: []string{"--duration", "-1s"}, code: exitUsage, want: "duration -1s must not be negative"},
		{name: "timeout without unit", cmd: "run", flag: "timeout", args: []string{"--timeout", "5"}, code: exitUsage, want: "-timeout"},
		{name: "out is a file", cmd: "run", flag: "out", args: []string{"--out", file, "--sim-profile", "instant", "--strategies", "poll", "--tasks", "1", "--concurrency", "1"}, code: exitRuntime, want: "results dir"},

		// run: strategy parameters.
		{name: "zero poll interval", cmd: "run", flag: "poll-interval", args: []string{"--poll-interval", "0s"}, code: exitUsage, want: "poll interval 0s"},
		{name: "negative poll interval", cmd: "run", flag: "poll-interval", args: []string{"--poll-interval", "-1ms"}, code: exitUsage, want: "poll interval -1ms"},
		{name: "negative sdk period", cmd: "run", flag: "sdk-period", args: []string{"--sdk-period", "-1s"}, code: exitUsage, want: "sdk period -1s"},
		{name: "zero cli period", cmd: "run", flag: "cli-period", args: []string{"--cli-period", "0s"}, code: exitUsage, want: "cli period 0s"},
		{name: "zero backoff initial", cmd: "run", flag: "backoff-initial", args: []string{"--backoff-initial", "0s"}, code: exitUsage, want: "backoff initial 0s"},
		{name: "backoff factor below 1", cmd: "run", flag: "backoff-factor", args: []string{"--backoff-factor", "0.5"}, code: exitUsage, want: "backoff factor 0.5"},
		{name: "NaN backoff factor", cmd: "run", flag: "backoff-factor", args: []string{"--backoff-factor", "NaN"}, code: exitUsage, want: "backoff factor NaN"},
		{name: "backoff max below initial", cmd: "run", flag: "backoff-max", args: []string{"--backoff-max", "1ms", "--backoff-initial", "1s"}, code: exitUsage, want: "backoff max 1ms"},
		{name: "backoff jitter 1.5", cmd: "run", flag: "backoff-jitter", args: []string{"--backoff-jitter", "1.5"}, code: exitUsage, want: "jitter 1.5"},
		{name: "negative backoff jitter", cmd: "run", flag: "backoff-jitter", args: []string{"--backoff-jitter", "-0.1"}, code: exitUsage, want: "jitter -0.1"},
		{name: "zero safety poll", cmd: "run", flag: "safety-poll", args: []string{"--safety-poll", "0s"}, code: exitUsage, want: "safety poll 0s"},
		{name: "webhook listen without port", cmd: "run", flag: "webhook-listen", args: []string{"--webhook-listen", "nope"}, code: exitUsage, want: `"nope"`},
		{name: "webhook listen port out of range", cmd: "run", flag: "webhook-listen", args: []string{"--webhook-listen", "127.0.0.1:99999", "--sim-profile", "instant", "--strategies", "webhook", "--tasks", "1", "--concurrency", "1"}, code: exitUsage, want: "99999"},
		{name: "webhook listen on all interfaces without url", cmd: "run", flag: "webhook-listen", args: []string{"--webhook-listen", "0.0.0.0:0", "--sim-profile", "instant", "--strategies", "webhook", "--tasks", "1", "--concurrency", "1"}, code: exitUsage, want: "0.0.0.0"},
		{name: "webhook listen port by name", cmd: "run", flag: "webhook-listen", args: []string{"--webhook-listen", "127.0.0.1:http", "--strategies", "webhook"}, code: exitUsage, want: `"http"`},
		{name: "webhook url ftp", cmd: "run", flag: "webhook-url", args: []string{"--webhook-url", "ftp://x"}, code: exitUsage, want: `"ftp://x"`},
		{name: "webhook url relative", cmd: "run", flag: "webhook-url", args: []string{"--webhook-url", "/hook"}, code: exitUsage, want: `"/hook"`},

		// run: metrics export (startMetrics), through the whole command.
		{name: "metrics addr without port", cmd: "run", flag: "metrics-addr", args: []string{"--metrics-addr", "localhost"}, code: exitUsage, want: "--metrics-addr"},
		{name: "metrics addr busy", cmd: "run", flag: "metrics-addr", args: []string{"--metrics-addr", busy, "--sim-profile", "instant"}, code: exitRuntime, want: "metrics"},
		{name: "negative linger", cmd: "run", flag: "linger", args: []string{"--metrics-addr", "127.0.0.1:0", "--linger", "-1s"}, code: exitUsage, want: "--linger"},
		{name: "pushgateway not a url", cmd: "run", flag: "pushgateway", args: []string{"--pushgateway", "localhost:9091"}, code: exitUsage, want: "--pushgateway"},
		{name: "push delete alone", cmd: "run", flag: "push-delete", args: []string{"--push-delete"}, code: exitUsage, want: "--push-delete"},
		{name: "push delete not a bool", cmd: "run", flag: "push-delete", args: []string{"--push-delete=maybe"}, code: exitUsage, want: "push-delete"},
		{name: "metrics file not prom", cmd: "run", flag: "metrics-file", args: []string{"--metrics-file", filepath.Join(dir, "m.txt")}, code: exitUsage, want: "*.prom"},
		{name: "target with slash", cmd: "run", flag: "target", args: []string{"--target", "a/b"}, code: exitUsage, want: "--target"},

		// sim. A case that is wrongly accepted starts serving; the test's context ends it.
		{name: "addr malformed", cmd: "sim", flag: "addr", args: []string{"--addr", "nonsense"}, code: exitUsage, want: "nonsense"},
		{name: "addr port out of range", cmd: "sim", flag: "addr", args: []string{"--addr", "127.0.0.1:99999"}, code: exitUsage, want: "99999"},
		{name: "addr empty", cmd: "sim", flag: "addr", args: []string{"--addr", ""}, code: exitUsage, want: "--addr"},
		{name: "addr port by name", cmd: "sim", flag: "addr", args: []string{"--addr", "127.0.0.1:http"}, code: exitUsage, want: `"http"`},
		{name: "addr busy", cmd: "sim", flag: "addr", args: []string{"--addr", busy}, code: exitRuntime, want: "address already in use"},
		{name: "empty user", cmd: "sim", flag: "user", args: []string{"--user", ""}, code: exitUsage, want: "--user"},
		{name: "workers not a number", cmd: "sim", flag: "import-workers", args: []string{"--import-workers", "x"}, code: exitUsage, want: "import-workers"},
		{name: "one job per user not a bool", cmd: "sim", flag: "one-job-per-user", args: []string{"--one-job-per-user=maybe"}, code: exitUsage, want: "one-job-per-user"},
		{name: "static cache not a bool", cmd: "sim", flag: "static-cache", args: []string{"--static-cache=maybe"}, code: exitUsage, want: "static-cache"},
		{name: "zero request ttl", cmd: "sim", flag: "request-ttl", args: []string{"--request-ttl", "0s"}, code: exitUsage, want: "--request-ttl"},
		{name: "seed not a number", cmd: "sim", flag: "seed", args: []string{"--seed", "x"}, code: exitUsage, want: "seed"},
		{name: "api slots -2", cmd: "sim", flag: "api-slots", args: []string{"--api-slots", "-2"}, code: exitUsage, want: "--api-slots"},
		{name: "negative pickup", cmd: "sim", flag: "pickup", args: []string{"--pickup", "-2ms"}, code: exitUsage, want: "--pickup"},
		{name: "negative processing median", cmd: "sim", flag: "processing-median", args: []string{"--processing-median", "-2ms"}, code: exitUsage, want: "--processing-median"},
		{name: "negative per image", cmd: "sim", flag: "per-image", args: []string{"--per-image", "-2ms"}, code: exitUsage, want: "--per-image"},
		{name: "negative webhook hop", cmd: "sim", flag: "webhook-hop", args: []string{"--webhook-hop", "-2ms"}, code: exitUsage, want: "--webhook-hop"},
		{name: "unknown fault profile", cmd: "sim", flag: "faults", args: []string{"--faults", "doom"}, code: exitUsage, want: "doom"},
		{name: "negative fault spike", cmd: "sim", flag: "faults", args: []string{"--faults", "spike=0.5:-1s"}, code: exitUsage, want: "spike"},
		{name: "verbose not a bool", cmd: "sim", flag: "verbose", args: []string{"--verbose=maybe"}, code: exitUsage, want: "verbose"},

		// cleanup.
		{name: "dry run not a bool", cmd: "cleanup", flag: "dry-run", args: []string{"--url", u, "--token", "tok-Zz1", "--dry-run=maybe"}, code: exitUsage, want: "dry-run"},
		{name: "yes not a bool", cmd: "cleanup", flag: "yes", args: []string{"--url", u, "--token", "tok-Zz1", "--yes=maybe"}, code: exitUsage, want: "yes"},
		{name: "calibrate url scheme", cmd: "calibrate", flag: "url", args: []string{"--url", "ftp://x"}, code: exitUsage, want: "--url"},
		{name: "calibrate unknown emulator profile", cmd: "calibrate", flag: "sim-profile", args: []string{"--sim-profile", "nope"}, code: exitUsage, want: `unknown profile "nope"`},
		{name: "calibrate user without password", cmd: "calibrate", flag: "user", env: noCreds, args: []string{"--url", u, "--user", "x"}, code: exitUsage, want: "needs --token or both"},
		{name: "calibrate password without user", cmd: "calibrate", flag: "password", env: noCreds, args: []string{"--url", u, "--password", "x"}, code: exitUsage, want: "needs --token or both"},
		{name: "calibrate token to nowhere", cmd: "calibrate", flag: "token", env: noCreds, args: []string{"--url", u, "--token", "tok-Zz1"}, code: exitRuntime, want: "connection refused"},
		{name: "calibrate empty out", cmd: "calibrate", flag: "out", args: []string{"--out", ""}, code: exitUsage, want: "--out"},
		{name: "calibrate empty name", cmd: "calibrate", flag: "name", args: []string{"--name", ""}, code: exitUsage, want: "--name"},
		{name: "calibrate unknown base profile", cmd: "calibrate", flag: "base-profile", args: []string{"--base-profile", "nope"}, code: exitUsage, want: `unknown profile "nope"`},
		{name: "calibrate receiver value", cmd: "calibrate", flag: "receiver", args: []string{"--receiver", "maybe"}, code: exitUsage, want: `--receiver "maybe"`},
		{name: "calibrate two repeats", cmd: "calibrate", flag: "repeats", args: []string{"--repeats", "2"}, code: exitUsage, want: "repeats 2"},
		{name: "calibrate no workers", cmd: "calibrate", flag: "expected-workers", args: []string{"--expected-workers", "0"}, code: exitUsage, want: "expected worker"},
		{name: "calibrate samples file missing", cmd: "calibrate", flag: "from-samples", args: []string{"--from-samples", filepath.Join(dir, "no-such.samples.json")}, code: exitUsage, want: "no-such.samples.json"},
		{name: "calibrate samples not JSON", cmd: "calibrate", flag: "from-samples", args: []string{"--from-samples", file}, code: exitUsage, want: "read samples"},
		{name: "calibrate webhook listen port", cmd: "calibrate", flag: "webhook-listen", args: []string{"--webhook-listen", "127.0.0.1:99999"}, code: exitUsage, want: "99999"},
		{name: "calibrate webhook url scheme", cmd: "calibrate", flag: "webhook-url", args: []string{"--webhook-url", "ftp://x/"}, code: exitUsage, want: "ftp://x/"},
		{name: "calibrate zero timeout", cmd: "calibrate", flag: "timeout", args: []string{"--timeout", "0s"}, code: exitUsage, want: "timeout"},
		{name: "calibrate seed not a number", cmd: "calibrate", flag: "seed", args: []string{"--seed", "x"}, code: exitUsage, want: "seed"},
		{name: "unreachable server", cmd: "cleanup", flag: "", args: []string{"--url", u, "--token", "tok-Zz1", "--yes"}, code: exitRuntime, want: "connection refused"},

		// report and compare.
		{name: "quality target with a bad comparison", cmd: "report", flag: "quality-target", args: []string{"--quality-target", "ssim<=0.9", dir}, code: exitUsage, want: "the comparison is not >= or >"},
		{name: "quality target on a run without chunk probes", cmd: "report", flag: "quality-target", args: []string{"--quality-target", "ssim>=0.9", dir}, code: exitUsage, want: "read no chunks"},
		{name: "plots not a bool", cmd: "report", flag: "plots", args: []string{"--plots=maybe", dir}, code: exitUsage, want: "plots"},
		{name: "html not a bool", cmd: "report", flag: "html", args: []string{"--html=maybe", dir}, code: exitUsage, want: "html"},
		{name: "missing directory", cmd: "report", flag: "", args: []string{filepath.Join(dir, "nope")}, code: exitRuntime, want: "nope"},
		{name: "file instead of directory", cmd: "report", flag: "", args: []string{file}, code: exitRuntime, want: "report:"},
		{name: "fail-on unknown", cmd: "compare", flag: "fail-on", args: []string{"--fail-on", "better", dir, dir}, code: exitUsage, want: `--fail-on "better"`},
		{name: "negative seed", cmd: "compare", flag: "seed", args: []string{"--seed", "-1", dir, dir}, code: exitUsage, want: "seed"},
		{name: "min trials 1", cmd: "compare", flag: "min-trials", args: []string{"--min-trials", "1", dir, dir}, code: exitUsage, want: "--min-trials 1"},
		{name: "missing directory", cmd: "compare", flag: "", args: []string{dir, filepath.Join(dir, "nope")}, code: exitRuntime, want: "nope"},
	}
}

// flagsFixture makes a real results directory (for report and compare), a regular file, a busy address and
// the URL of a server that answers 401 to everything (a wrong token, without the client's retries).
func flagsFixture(t *testing.T) (dir, file, busy, reject string) {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"cvatbench", "run", "--sim-profile", "instant", "--strategies", "poll",
		"--tasks", "2", "--concurrency", "1", "--images", "1", "--image-size", "8x8", "--poll-interval", "5ms",
		"--out", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("fixture run: exit %d: %s", code, stderr.String())
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("fixture dirs %v", dirs)
	}
	file = filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":"Invalid token."}`))
	}))
	t.Cleanup(srv.Close)
	return dirs[0], file, ln.Addr().String(), srv.URL
}

// flagDefined reports whether command cmd defines flag (or, for cmd "", whether the app exists).
func flagDefined(cmd, flag string) bool {
	if cmd == "" {
		return true
	}
	for _, c := range commands() {
		if c.Name != cmd {
			continue
		}
		if flag == "" {
			return true
		}
		for _, f := range c.Flags {
			if slices.Contains(f.Names(), flag) {
				return true
			}
		}
	}
	return false
}

// flagsCredentialEnv clears every variable a flag reads, so the host cannot leak into a case. Unset rather
// than empty: urfave/cli counts an empty variable as set.
func flagsCredentialEnv(t *testing.T) {
	for _, k := range []string{"CVAT_USER", "CVAT_PASSWORD", "CVAT_ACCESS_TOKEN", "CVATBENCH_PUSHGATEWAY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// TestEveryFlagRejectsBadValuesOnOneLine feeds each command a bad value per flag: bad input exits 2, a failure
// at run time exits 1, and either way stderr holds exactly one line, "cvatbench: ...", with no stack trace,
// stdout stays empty, and no credential value given is echoed.
func TestEveryFlagRejectsBadValuesOnOneLine(t *testing.T) {
	dir, file, busy, reject := flagsFixture(t)
	for _, tc := range flagsCases(dir, file, busy, reject) {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			if !flagDefined(tc.cmd, tc.flag) {
				t.Skipf("%s has no --%s", tc.cmd, tc.flag)
			}
			flagsCredentialEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := []string{"cvatbench"}
			if tc.cmd != "" {
				args = append(args, tc.cmd)
			}
			if tc.cmd == "run" && !slices.Contains(tc.args, "--out") {
				args = append(args, "--out", t.TempDir())
			}
			args = append(args, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, &stdout, &stderr)

			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			msg := strings.TrimRight(stderr.String(), "\n")
			switch {
			case strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic"):
				t.Errorf("stack trace on stderr:\n%s", msg)
			case strings.Contains(msg, "\n"):
				t.Errorf("stderr has %d lines, want 1:\n%s", strings.Count(msg, "\n")+1, msg)
			case !strings.HasPrefix(msg, "cvatbench:"):
				t.Errorf("stderr %q does not start with cvatbench:", msg)
			case !strings.Contains(msg, tc.want):
				t.Errorf("stderr %q lacks %q", msg, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout not empty:\n%s", stdout.String())
			}
			for _, secret := range []string{"tok-Zz1", "pw-Zz1", "pw-in-url-Zz1"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output echoes the credential %q", secret)
				}
			}
		})
	}
}

// TestEveryFlagHasABadInputCase fails when a command gains a flag that neither the table above nor another
// named test feeds a bad value: new flags must come with their validation.
func TestEveryFlagHasABadInputCase(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range flagsCases("d", "f", "b", "r") {
		covered[tc.cmd+"/"+tc.flag] = true
	}
	for _, c := range commands() {
		for _, f := range c.Flags {
			name := f.Names()[0]
			if name == "help" {
				continue
			}
			key := c.Name + "/" + name
			if !covered[key] && flagsExempt[key] == "" {
				t.Errorf("--%s of %s has no bad-input case: add one to flagsCases (flags_test.go)", name, c.Name)
			}
		}
	}
	// An exemption for a flag that no longer exists is stale.
	for key := range flagsExempt {
		cmd, flag, _ := strings.Cut(key, "/")
		if !flagDefined(cmd, flag) {
			t.Errorf("flagsExempt names %s, which does not exist", key)
		}
	}
}

// TestRunIgnoresEmptyCredentialVariables: an exported but empty CVAT_USER/CVAT_PASSWORD/CVAT_ACCESS_TOKEN (a CI
// template, a `.env` with blanks) must not count as credentials for the embedded emulator. urfave/cli marks a
// flag as set when its variable exists, even empty.
func TestRunIgnoresEmptyCredentialVariables(t *testing.T) {
	for _, k := range []string{"CVAT_USER", "CVAT_PASSWORD", "CVAT_ACCESS_TOKEN"} {
		t.Setenv(k, "")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"cvatbench", "run", "--sim-profile", "instant", "--strategies", "poll",
		"--tasks", "1", "--concurrency", "1", "--images", "1", "--image-size", "8x8", "--poll-interval", "5ms",
		"--out", t.TempDir()}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d with empty credential variables: %s", code, stderr.String())
	}
}
