package cvatsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// mediaType is CVAT's API media type (CVATAPIRenderer).
const mediaType = "application/vnd.cvat+json"

// call is one API request being served.
type call struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	args    []string // decoded path segments after the route prefix
	body    []byte
	user    *user
	auth    string // "token", "bearer", "session", "basic" or ""
	pat     *pat
	html    bool          // the browsable-API renderer was negotiated
	scope   orgScope      // the organization context (API.md §2.3)
	post    time.Duration // latency added after the handler ran
	ctx     context.Context
	reqSeen time.Time
}

// base returns scheme://host of the request, for absolute URLs.
func (c *call) base() string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	if p := c.r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + c.r.Host
}

type handlerFunc func(c *call)

// route is one URL pattern with its methods.
type route struct {
	name    string
	methods map[string]handlerFunc
	anon    bool // no authentication needed
}

// Handler returns the HTTP handler of the emulated server.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Logf("cvatsim: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<h1>Server Error (500)</h1>")
		}
	}()
	segs, trailing, ok := splitPath(r.URL.EscapedPath())
	if ok && len(segs) >= 1 && segs[0] == "_cvatsim" {
		s.serveEmulatorOnly(w, r, segs, trailing)
		return
	}
	// Body limit first: nginx answers 413 before Django sees the request,
	// so this answer has no X-Request-Id (API.md §1.3).
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_, _ = io.WriteString(w, "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>\n")
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = b
	}
	// Faults hit every /api request before Django would see it, so a faulted request had no effect.
	var spike time.Duration
	if strings.HasPrefix(r.URL.Path, "/api/") {
		var handled bool
		if handled, spike = s.injectHTTPFault(w, r); handled {
			return
		}
	}
	w.Header().Set("X-Request-Id", uuid4())
	if !ok {
		notFoundHTML(w, r)
		return
	}
	rt, args := s.match(segs, trailing)
	if rt == nil {
		notFoundHTML(w, r)
		return
	}
	c := &call{s: s, r: r, args: args, body: body, ctx: r.Context()}
	rec := &bufferedWriter{h: http.Header{}}
	c.w = rec
	c.post += spike
	s.serveAPI(c, rt)
	// Copy the buffered answer out after the post-handler latency.
	if c.post > 0 {
		_ = s.wait(c.ctx, c.post)
	}
	for k, v := range rec.h {
		w.Header()[k] = v
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rec.buf.Bytes())
	}
}

// serveAPI runs DRF's request phases: slot, negotiation, authentication,
// latency, method dispatch.
func (s *Server) serveAPI(c *call, rt *route) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-c.ctx.Done():
			c.w.WriteHeader(499)
			return
		}
	}
	// Content negotiation comes first in DRF's APIView.initial.
	html, err := negotiate(c.r.Header.Values("Accept"))
	if err != nil {
		c.json(http.StatusNotAcceptable, obj{{"detail", err.Error()}})
		return
	}
	c.html = html
	// Authentication (invalid credentials give 401 even on anonymous views).
	status, detail := s.authenticate(c)
	pre := time.Duration(0)
	if c.auth == "basic" {
		pre += s.prof.BasicAuth
	}
	h, allowed := rt.methods[c.r.Method]
	if !allowed && c.r.Method == http.MethodHead {
		h, allowed = rt.methods[http.MethodGet] // Django's View answers HEAD with GET
	}
	write := c.r.Method != http.MethodGet && c.r.Method != http.MethodHead && c.r.Method != http.MethodOptions
	upload := rt.name == "task data" || rt.name == "tus"
	switch {
	case upload && write && s.prof.APIUpload != (Dist{}):
		pre += s.prof.APIUpload.sample(s.rng)
	case write:
		pre += s.prof.APIWrite.sample(s.rng)
	}
	if write {
		if s.prof.UploadBytesPerSecond > 0 && len(c.body) > 0 {
			pre += time.Duration(float64(len(c.body)) / s.prof.UploadBytesPerSecond * float64(time.Second))
		}
	} else {
		pre += s.prof.APIRead.sample(s.rng)
	}
	if err := s.wait(c.ctx, pre); err != nil {
		c.w.WriteHeader(499)
		return
	}
	if status != 0 {
		if status == http.StatusUnauthorized {
			c.w.Header().Set("WWW-Authenticate", "Token")
		}
		c.json(status, obj{{"detail", detail}})
		return
	}
	if c.user == nil && !rt.anon {
		c.w.Header().Set("WWW-Authenticate", "Token")
		c.json(http.StatusUnauthorized, obj{{"detail", "Authentication credentials were not provided."}})
		return
	}
	if c.pat != nil && c.pat.readOnly && write {
		c.forbidden()
		return
	}
	if !allowed {
		if c.r.Method == http.MethodOptions {
			c.w.Header().Set("Allow", allowHeader(rt))
			c.json(http.StatusOK, obj{{"name", rt.name}, {"description", ""}})
			return
		}
		c.w.Header().Set("Allow", allowHeader(rt))
		c.json(http.StatusMethodNotAllowed, obj{{"detail", fmt.Sprintf("Method %q not allowed.", c.r.Method)}})
		return
	}
	if !rt.anon && !s.resolveOrg(c) {
		return
	}
	h(c)
}

func allowHeader(rt *route) string {
	var ms []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		if _, ok := rt.methods[m]; ok || m == "OPTIONS" {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// bufferedWriter holds a response until the post-handler latency has passed.
type bufferedWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

// Header returns the buffered header map.
func (b *bufferedWriter) Header() http.Header { return b.h }

// WriteHeader records the first status code.
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// Write buffers p.
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// splitPath splits an escaped path into percent-decoded segments. trailing
// reports a final slash. ok is false for paths that cannot be decoded.
func splitPath(escaped string) (segs []string, trailing, ok bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, false, false
	}
	p := escaped[1:]
	if strings.HasSuffix(p, "/") {
		trailing = true
		p = strings.TrimSuffix(p, "/")
	}
	if p == "" {
		return nil, trailing, true
	}
	for _, raw := range strings.Split(p, "/") {
		seg, err := url.PathUnescape(raw)
		if err != nil || seg == "" {
			return nil, false, false
		}
		segs = append(segs, seg)
	}
	return segs, trailing, true
}

// match finds the route for a path. Routers use trailing_slash=False, so a
// trailing slash is a 404, except for the data action (API.md §1.1).
func (s *Server) match(segs []string, trailing bool) (*route, []string) {
	if len(segs) < 2 || segs[0] != "api" {
		return nil, nil
	}
	rest := segs[1:]
	n := len(rest)
	if trailing && !(n == 3 && rest[0] == "tasks" && rest[2] == "data") {
		return nil, nil
	}
	switch rest[0] {
	case "server":
		if n == 2 && rest[1] == "about" {
			return &route{name: "about", anon: true, methods: map[string]handlerFunc{"GET": s.handleAbout}}, nil
		}
	case "auth":
		if n == 2 {
			switch rest[1] {
			case "login":
				return &route{name: "login", anon: true, methods: map[string]handlerFunc{"POST": s.handleLogin}}, nil
			case "logout":
				return &route{name: "logout", anon: true, methods: map[string]handlerFunc{"POST": s.handleLogout}}, nil
			case "access_tokens":
				return &route{name: "access_tokens", methods: map[string]handlerFunc{"GET": s.handleListPATs, "POST": s.handleCreatePAT}}, nil
			}
		}
		if n == 3 && rest[1] == "access_tokens" {
			if rest[2] == "self" {
				return &route{name: "access_token self", methods: map[string]handlerFunc{"GET": s.handlePATSelf}}, nil
			}
			return &route{name: "access_token", methods: map[string]handlerFunc{"GET": s.handleGetPAT, "DELETE": s.handleDeletePAT}}, rest[2:]
		}
	case "organizations":
		switch n {
		case 1:
			return &route{name: "organizations", methods: map[string]handlerFunc{"GET": s.handleListOrgs, "POST": s.handleCreateOrg}}, nil
		case 2:
			return &route{name: "organization", methods: map[string]handlerFunc{"GET": s.handleGetOrg, "DELETE": s.handleDeleteOrg}}, rest[1:]
		}
	case "memberships":
		if n == 1 {
			return &route{name: "memberships", methods: map[string]handlerFunc{"GET": s.handleListMemberships}}, nil
		}
	case "users":
		if n == 2 && rest[1] == "self" {
			return &route{name: "self", methods: map[string]handlerFunc{"GET": s.handleSelf}}, nil
		}
	case "projects":
		switch n {
		case 1:
			return &route{name: "projects", methods: map[string]handlerFunc{"GET": s.handleListProjects, "POST": s.handleCreateProject}}, nil
		case 2:
			return &route{name: "project", methods: map[string]handlerFunc{"GET": s.handleGetProject, "DELETE": s.handleDeleteProject}}, rest[1:]
		}
	case "tasks":
		switch {
		case n == 1:
			return &route{name: "tasks", methods: map[string]handlerFunc{"GET": s.handleListTasks, "POST": s.handleCreateTask}}, nil
		case n == 2:
			return &route{name: "task", methods: map[string]handlerFunc{"GET": s.handleGetTask, "DELETE": s.handleDeleteTask}}, rest[1:]
		case n == 3 && rest[2] == "data":
			return &route{name: "task data", methods: map[string]handlerFunc{"POST": s.handleData, "OPTIONS": s.handleData}}, rest[1:2]
		case n == 4 && rest[2] == "data" && rest[3] == "meta":
			return &route{name: "task data meta", methods: map[string]handlerFunc{"GET": s.handleTaskDataMeta}}, rest[1:2]
		case n == 3 && rest[2] == "status":
			return &route{name: "task status", methods: map[string]handlerFunc{"GET": s.handleTaskStatus}}, rest[1:2]
		case n == 4 && rest[2] == "data":
			return &route{name: "tus", methods: map[string]handlerFunc{"PATCH": s.handleTUSPatch, "HEAD": s.handleTUSHead}}, []string{rest[1], rest[3]}
		}
	case "requests":
		switch n {
		case 1:
			return &route{name: "requests", methods: map[string]handlerFunc{"GET": s.handleListRequests}}, nil
		case 2:
			return &route{name: "request", methods: map[string]handlerFunc{"GET": s.handleGetRequest}}, rest[1:]
		}
	case "labels":
		if n == 1 {
			return &route{name: "labels", methods: map[string]handlerFunc{"GET": s.handleListLabels}}, nil
		}
	case "jobs":
		switch {
		case n == 1:
			return &route{name: "jobs", methods: map[string]handlerFunc{"GET": s.handleListJobs}}, nil
		case n == 2:
			return &route{name: "job", methods: map[string]handlerFunc{"GET": s.handleGetJob}}, rest[1:]
		case n == 3 && rest[2] == "data":
			return &route{name: "job data", methods: map[string]handlerFunc{"GET": s.handleJobData}}, rest[1:2]
		}
	case "webhooks":
		switch {
		case n == 1:
			return &route{name: "webhooks", methods: map[string]handlerFunc{"GET": s.handleListWebhooks, "POST": s.handleCreateWebhook}}, nil
		case n == 2 && rest[1] == "events":
			return &route{name: "webhook events", methods: map[string]handlerFunc{"GET": s.handleWebhookEvents}}, nil
		case n == 2:
			return &route{name: "webhook", methods: map[string]handlerFunc{"GET": s.handleGetWebhook, "DELETE": s.handleDeleteWebhook}}, rest[1:]
		case n == 3 && rest[2] == "ping":
			return &route{name: "webhook ping", methods: map[string]handlerFunc{"POST": s.handlePing}}, rest[1:2]
		case n == 3 && rest[2] == "deliveries":
			return &route{name: "webhook deliveries", methods: map[string]handlerFunc{"GET": s.handleListDeliveries}}, rest[1:2]
		}
	}
	return nil, nil
}

// notFoundHTML is Django's 404 page for an unknown URL (API.md §1.1).
func notFoundHTML(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n")
	}
}

// negotiate reproduces DRF's DefaultContentNegotiation with the renderers
// CVATAPIRenderer and BrowsableAPIRenderer, plus AcceptHeaderVersioning
// (API.md §1.2). q values are ignored, as DRF does; precedence goes by
// specificity. html reports the browsable renderer.
func negotiate(accept []string) (html bool, err error) {
	var ranges []string
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			if p := strings.TrimSpace(part); p != "" {
				ranges = append(ranges, p)
			}
		}
	}
	if len(ranges) == 0 {
		return false, nil
	}
	type mr struct {
		full, sub string
		params    map[string]string
	}
	levels := make([][]mr, 4)
	for _, r := range ranges {
		mt, params, perr := mime.ParseMediaType(r)
		if perr != nil {
			mt = strings.ToLower(strings.TrimSpace(strings.SplitN(r, ";", 2)[0]))
			params = map[string]string{}
		}
		delete(params, "q")
		typ, sub, _ := strings.Cut(mt, "/")
		prec := 2
		switch {
		case typ == "*":
			prec = 0
		case sub == "*":
			prec = 1
		case len(params) > 0:
			prec = 3
		}
		levels[prec] = append(levels[prec], mr{full: mt, sub: sub, params: params})
	}
	matches := func(renderer, rng string) bool {
		rt, rs, _ := strings.Cut(renderer, "/")
		t, sub, _ := strings.Cut(rng, "/")
		return (t == "*" || t == rt) && (sub == "*" || sub == rs)
	}
	for p := 3; p >= 0; p-- {
		for _, renderer := range []string{mediaType, "text/html"} {
			for _, m := range levels[p] {
				if !matches(renderer, m.full) {
					continue
				}
				if v, ok := m.params["version"]; ok && m.full == mediaType && v != "2.0" {
					return false, errors.New(`Invalid version in "Accept" header.`)
				}
				return renderer == "text/html", nil
			}
		}
	}
	return false, errors.New("Could not satisfy the request Accept header.")
}

// json writes v with the negotiated renderer.
func (c *call) json(status int, v any) {
	c.w.Header().Set("Content-Type", mediaType)
	b := encodeDRF(v)
	if c.html {
		c.w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var h bytes.Buffer
		h.WriteString("<!DOCTYPE html>\n<html><head><title>Django REST framework</title></head><body><pre>")
		h.WriteString(htmlEscape(string(b)))
		h.WriteString("</pre></body></html>\n")
		b = h.Bytes()
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// empty writes a body-less answer with the API content type.
func (c *call) empty(status int) {
	c.w.Header().Set("Content-Type", mediaType)
	c.w.WriteHeader(status)
}

// serverError is Django's answer to an unhandled exception with DEBUG off, byte for byte as a real CVAT
// 2.73.0 sent it for an IntegrityError.
func (c *call) serverError() {
	c.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	c.w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(c.w, djangoServerError)
}

const djangoServerError = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n" +
	"  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"

// detail writes {"detail": msg}.
func (c *call) detail(status int, msg string) { c.json(status, obj{{"detail", msg}}) }

// forbidden is DRF's PermissionDenied.
func (c *call) forbidden() {
	c.detail(http.StatusForbidden, "You do not have permission to perform this action.")
}

// notFound is DRF's answer to get_object_or_404 for model m.
func (c *call) notFound(m string) { c.detail(http.StatusNotFound, "No "+m+" matches the given query.") }

// badRequest writes a DRF validation error: a list or a field map.
func (c *call) badRequest(v any) { c.json(http.StatusBadRequest, v) }

// fieldError is {"field": ["msg"]}.
func fieldError(field, msg string) obj { return obj{{field, []string{msg}}} }

// pathID parses the integer id in args[i]; ok false means 404 already sent.
func (c *call) pathID(i int, model string) (int, bool) {
	id, err := strconv.Atoi(c.args[i])
	if err != nil || id <= 0 {
		if err == nil {
			c.notFound(model)
		} else {
			c.detail(http.StatusNotFound, "Not found.")
		}
		return 0, false
	}
	return id, true
}

// page is the outcome of CustomPagination (API.md §1.3).
type page struct {
	start, end int
	next, prev any
}

// paginate slices count items per the page and page_size parameters. ok false
// means the 404 "Invalid page." was sent.
func (c *call) paginate(count int) (page, bool) {
	q := c.r.URL.Query()
	size := 10
	if ps := q.Get("page_size"); ps == "all" {
		size = count
		if size == 0 {
			size = 1
		}
	} else if n, err := strconv.Atoi(ps); err == nil && n > 0 {
		size = n
	}
	pages := (count + size - 1) / size
	if pages == 0 {
		pages = 1 // allow_empty_first_page
	}
	num := 1
	if ps, has := q["page"]; has {
		v := ps[0]
		if v == "last" {
			num = pages
		} else if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= pages {
			num = n
		} else {
			c.detail(http.StatusNotFound, "Invalid page.")
			return page{}, false
		}
	}
	p := page{start: (num - 1) * size, end: min(num*size, count), next: nil, prev: nil}
	u := *c.r.URL
	u.Scheme, u.Host = "http", c.r.Host
	if b := c.base(); strings.HasPrefix(b, "https") {
		u.Scheme = "https"
	}
	if num < pages {
		vals := u.Query()
		vals.Set("page", strconv.Itoa(num+1))
		u.RawQuery = vals.Encode()
		p.next = u.String()
	}
	if num > 1 {
		vals := c.r.URL.Query()
		if num == 2 {
			vals.Del("page")
		} else {
			vals.Set("page", strconv.Itoa(num-1))
		}
		u.RawQuery = vals.Encode()
		p.prev = u.String()
	}
	return p, true
}

// list writes a paginated list of rendered items and returns how many
// results the page holds.
func (c *call) list(items []obj) int {
	p, ok := c.paginate(len(items))
	if !ok {
		return 0
	}
	res := items[p.start:p.end]
	if res == nil {
		res = []obj{}
	}
	c.json(http.StatusOK, obj{{"count", len(items)}, {"next", p.next}, {"previous", p.prev}, {"results", res}})
	return len(res)
}

// sortDesc reports whether the sort parameter asks for id descending; def is
// the default order.
func sortDesc(q url.Values, def bool) bool {
	switch q.Get("sort") {
	case "id":
		return false
	case "-id":
		return true
	}
	return def
}
