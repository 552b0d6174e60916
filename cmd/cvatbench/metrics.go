package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/bench/prom"
	"github.com/cvatbench/cvatbench/bench/record"
)

// buildMeta is what a run reports about the binary: cvatbench_build_info (the Go version is added here).
type buildMeta struct {
	Version string
	Commit  string
}

// DefaultLinger keeps the metrics endpoint up after a run: at least twice a 15 s scrape interval, so the final
// values are scraped (a short run otherwise exits before its last scrape).
const DefaultLinger = 30 * time.Second

// emulatorTarget is the target name of runs against the embedded emulator.
const emulatorTarget = "emulator"

// targetName keeps grouping keys and label values short and free of URL syntax.
var targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

// metricsFlags are the Prometheus export flags of `cvatbench run`.
func metricsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve live Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9464"},
		&cli.DurationFlag{Name: "linger", Value: DefaultLinger, Usage: "keep serving --metrics-addr this long after the run (>= 2x the scrape interval); Ctrl-C ends it early"},
		&cli.StringFlag{Name: "pushgateway", EnvVars: []string{"CVATBENCH_PUSHGATEWAY"}, Usage: "push end-of-run metrics to this Pushgateway URL, one group per job=cvatbench,target,strategy"},
		&cli.BoolFlag{Name: "push-delete", Usage: "after the push (and --linger), delete this run's Pushgateway groups"},
		&cli.StringFlag{Name: "metrics-file", Usage: "write end-of-run metrics to this node_exporter textfile (*.prom, replaced atomically)"},
		&cli.StringFlag{Name: "target", Usage: "name of the CVAT instance in metrics (grouping key, label); default: host:port of --url, or \"emulator\""},
	}
}

// metricsSession is the Prometheus side of one run: live metrics from startMetrics to Finish, end-of-run
// exports in Finish.
type metricsSession struct {
	reg         *prometheus.Registry
	shard       *int              // the share of a sharded run (--shard), nil otherwise
	shardLabels prometheus.Labels // {"shard": index} on every series of a shard
	metrics     *prom.Metrics
	build       prom.BuildInfo
	target      string
	srv         *prom.Server      // nil without --metrics-addr
	gw          *prom.Pushgateway // nil without --pushgateway
	pushDelete  bool
	file        string
	linger      time.Duration
	stderr      io.Writer
	now         func() time.Time
	finished    bool
}

// startMetrics validates the metrics flags (bad values are usage errors, exit 2) and, with --metrics-addr,
// starts serving right away so Prometheus sees the series at zero before the first trial ends.
func startMetrics(c *cli.Context, build buildMeta) (*metricsSession, error) {
	s := &metricsSession{
		reg:        prometheus.NewRegistry(),
		build:      prom.BuildInfo{Version: build.Version, Commit: build.Commit, GoVersion: runtime.Version()},
		pushDelete: c.Bool("push-delete"),
		file:       c.String("metrics-file"),
		linger:     c.Duration("linger"),
		stderr:     c.App.ErrWriter,
		now:        time.Now,
	}
	if c.IsSet("shard") {
		if i, _, err := parseShard(c.String("shard")); err == nil { // run reported a bad --shard already
			s.shard = &i
		}
	}
	if s.stderr == nil {
		s.stderr = io.Discard
	}
	addr := c.String("metrics-addr")
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	s.target = c.String("target")
	if !c.IsSet("target") {
		s.target = defaultTarget(c.String("url"))
	}
	if !targetName.MatchString(s.target) {
		bad("--target %q: want 1-100 characters of [A-Za-z0-9_.:-], starting with a letter or digit", s.target)
	}
	if addr != "" {
		if err := checkListenAddr(addr); err != nil {
			bad("--metrics-addr %q: %v", addr, err)
		}
	}
	if s.linger < 0 {
		bad("--linger %v: must not be negative", s.linger)
	}
	if c.IsSet("linger") && addr == "" && !s.pushDelete {
		bad("--linger needs --metrics-addr or --push-delete")
	}
	if pgw := c.String("pushgateway"); pgw != "" {
		gw, err := prom.NewPushgateway(pgw, s.target, nil)
		if err != nil {
			bad("--pushgateway: %v", err)
		} else if s.shard != nil {
			gw.SetShard(*s.shard)
		}
		s.gw = gw
	} else if s.pushDelete {
		bad("--push-delete needs --pushgateway")
	}
	if s.file != "" {
		if filepath.Ext(s.file) != ".prom" {
			bad("--metrics-file %q: node_exporter reads only *.prom files", s.file)
		} else if st, err := os.Stat(filepath.Dir(s.file)); err != nil || !st.IsDir() {
			bad("--metrics-file %q: directory %s does not exist", s.file, filepath.Dir(s.file))
		}
	}
	if len(errs) > 0 {
		return nil, usageError("run: %s", strings.Join(errs, "; "))
	}

	// A shard's series carry its share, so the shards of one run stay apart wherever they are gathered.
	var reg prometheus.Registerer = s.reg
	if s.shard != nil {
		s.shardLabels = prometheus.Labels{"shard": strconv.Itoa(*s.shard)}
		reg = prometheus.WrapRegistererWith(s.shardLabels, s.reg)
	}
	m, err := prom.New(reg, s.build, c.StringSlice("strategies")...)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s.metrics = m
	if addr != "" {
		// The live endpoint also shows the process itself (goroutines, memory, fds): what a soak watches.
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		srv, err := prom.Serve(addr, s.reg)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		s.srv = srv
		fmt.Fprintf(s.stderr, "metrics: serving %s\n", srv.URL())
	}
	return s, nil
}

// defaultTarget names the CVAT instance: host[:port] of the server URL, or "emulator" for the embedded one.
func defaultTarget(serverURL string) string {
	if serverURL == "" {
		return emulatorTarget
	}
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return "" // rejected by validation; the run's own --url check says why
	}
	return u.Host
}

func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	return nil
}

// Observer is what the runner reports live events to (bench.WithObserver).
func (s *metricsSession) Observer() bench.Observer { return s.metrics }

// Finish exports the end of the run: the run metrics join the served registry (labelled by strategy), the
// textfile is written, the Pushgateway receives one group per strategy; then the endpoint lingers (so the
// final values are scraped; Ctrl-C, i.e. ctx, ends it early), --push-delete removes the groups, and the
// server stops. Exports run even when ctx is already cancelled (an interrupted run still reports, as a
// failure). Every step runs; their errors are joined.
func (s *metricsSession) Finish(ctx context.Context, records []record.Trial, runDuration time.Duration, thresholdFailures int, success bool) error {
	if s.finished {
		return errors.New("metrics: Finish called twice")
	}
	s.finished = true
	run := prom.NewRun(records, prom.RunInfo{
		Duration: runDuration, CompletedAt: s.now(), ThresholdFailures: thresholdFailures, Success: success,
	}, s.build)
	var errs []error
	if s.srv != nil {
		if err := run.RegisterLabelled(s.reg, s.shardLabels); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	if s.file != "" {
		if err := prom.WriteTextfile(s.file, s.target, run, s.shardLabels); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	bg := context.WithoutCancel(ctx)
	if s.gw != nil {
		pctx, cancel := context.WithTimeout(bg, 30*time.Second)
		if err := s.gw.Push(pctx, run); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		cancel()
	}
	if (s.srv != nil || s.pushDelete) && s.linger > 0 {
		fmt.Fprintf(s.stderr, "metrics: lingering %v for a last scrape (Ctrl-C ends it)\n", s.linger)
		t := time.NewTimer(s.linger)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if s.pushDelete {
		dctx, cancel := context.WithTimeout(bg, 30*time.Second)
		if err := s.gw.Delete(dctx, run.Strategies()); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		cancel()
	}
	if err := s.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close stops the metrics server without exporting anything: for a run that failed before it had records.
// Finish calls it; calling it again is harmless.
func (s *metricsSession) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Close(ctx)
	s.srv = nil
	if err != nil {
		return fmt.Errorf("metrics: stop server: %w", err)
	}
	return nil
}
