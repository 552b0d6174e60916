package prom

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
)

// Job is the Pushgateway job name of every push.
const Job = "cvatbench"

// MetricsPath is where Serve exposes the metrics.
const MetricsPath = "/metrics"

// Server exposes a Gatherer for scraping while a run is in progress (and while it lingers afterwards).
type Server struct {
	ln   net.Listener
	hs   *http.Server
	done chan struct{}
}

// Serve listens on addr now (so a port conflict fails the run before it starts) and serves g on /metrics in
// the text or OpenMetrics format, or protobuf when the scraper asks for it (native histograms travel only
// over protobuf).
func Serve(addr string, g prometheus.Gatherer) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	s := &Server{ln: ln, hs: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(ln) // ErrServerClosed after Close
	}()
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the scrape URL.
func (s *Server) URL() string { return "http://" + s.Addr() + MetricsPath }

// Close stops the server, letting an in-flight scrape finish until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.hs.Close())
	}
	<-s.done
	return err
}

// Pushgateway pushes end-of-run metrics.
//
// Grouping key: job="cvatbench", target=<Target>, strategy=<strategy>, and shard=<index> for a share of a
// sharded run (SetShard). One group per target and strategy, so a
// run replaces the metrics of its own strategies on its own target and leaves other targets and strategies
// alone. There is deliberately no run id in the key: the Pushgateway keeps every group forever, and a run id
// would grow them without bound.
type Pushgateway struct {
	url      string // without credentials: it appears in errors
	user     string
	password string
	target   string
	shard    string // "" unless a shard of a run
	client   *http.Client
}

// SetShard puts the process's share of a sharded run (its index) into the grouping key (shard=<index>), so
// the shards of one run push side by side instead of replacing each other's groups.
func (p *Pushgateway) SetShard(index int) { p.shard = strconv.Itoa(index) }

// NewPushgateway validates rawURL (http or https with a host; user info becomes basic auth and is kept out of
// errors) and target (non-empty). A nil client gets one with a 10 s timeout: push has no context for Delete.
func NewPushgateway(rawURL, target string, client *http.Client) (*Pushgateway, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pushgateway url %q: want http(s)://host[:port][/path]", redact(rawURL))
	}
	if target == "" {
		return nil, errors.New("pushgateway: empty target")
	}
	p := &Pushgateway{target: target, client: client}
	if u.User != nil {
		p.user = u.User.Username()
		p.password, _ = u.User.Password()
		u.User = nil
	}
	p.url = u.String()
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}
	return p, nil
}

// redact removes user info from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User = nil
	return u.String()
}

func (p *Pushgateway) pusher(ctx context.Context, strategy string) *push.Pusher {
	ps := push.New(p.url, Job).Grouping("target", p.target).Grouping("strategy", strategy).
		Client(ctxDoer{ctx: ctx, c: p.client})
	if p.shard != "" {
		ps = ps.Grouping("shard", p.shard)
	}
	if p.user != "" {
		ps = ps.BasicAuth(p.user, p.password)
	}
	return ps
}

// Push sends the end-of-run metrics of every strategy of run, one group each, with POST (push's Add): the
// families in the push replace the same families of the group, others stay. A failed run carries no
// last-success gauge, so the previous success time survives.
func (p *Pushgateway) Push(ctx context.Context, run *Run) error {
	var errs []error
	for _, s := range run.Strategies() {
		reg, err := run.Registry(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.pusher(ctx, s).Gatherer(reg).AddContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("push %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// Delete removes the groups of the given strategies (job, target, strategy); the Pushgateway keeps a group
// until it is deleted.
func (p *Pushgateway) Delete(ctx context.Context, strategies []string) error {
	var errs []error
	for _, s := range strategies {
		if err := p.pusher(ctx, s).Delete(); err != nil {
			errs = append(errs, fmt.Errorf("delete pushed group %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// ctxDoer gives push's Delete, which takes no context, one anyway.
type ctxDoer struct {
	ctx context.Context
	c   *http.Client
}

func (d ctxDoer) Do(r *http.Request) (*http.Response, error) { return d.c.Do(r.WithContext(d.ctx)) }

// WriteTextfile writes the end-of-run metrics of every strategy, labelled strategy and target (and shard, for
// a share of a sharded run: extra), plus cvatbench_build_info, to path for node_exporter's textfile
// collector. The file is replaced atomically, so node_exporter never reads half of it; path must end in .prom
// for node_exporter to pick it up.
func WriteTextfile(path, target string, run *Run, extra prometheus.Labels) error {
	labels := prometheus.Labels{"target": target}
	maps.Copy(labels, extra)
	reg := prometheus.NewRegistry()
	if err := run.RegisterLabelled(reg, labels); err != nil {
		return err
	}
	if err := reg.Register(newBuildInfo(run.build, labels)); err != nil {
		return err
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("write metrics file: %w", err)
	}
	return nil
}
