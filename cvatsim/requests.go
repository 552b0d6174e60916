package cvatsim

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// liveRequestLocked returns the request with id, or nil when unknown or
// expired. Expiry is evaluated lazily against the clock: a finished request
// disappears RequestTTL after finished_date (API.md §6.1); failed ones stay.
func (s *Server) liveRequestLocked(id string) *request {
	rq := s.requests[id]
	if rq == nil {
		return nil
	}
	if rq.status == stFinished && (rq.expired || !s.now().Before(rq.finished.Add(s.ttl))) {
		delete(s.requests, id)
		return nil
	}
	return rq
}

// requestSweepEvery: every this many new requests, the expired ones are dropped, so a long run's memory does
// not grow with requests nobody asks for again (liveRequestLocked drops only those it is asked about).
const requestSweepEvery = 64

// sweepRequestsLocked drops every request that has expired.
func (s *Server) sweepRequestsLocked() {
	for id := range s.requests {
		s.liveRequestLocked(id)
	}
}

var legacyRqID = regexp.MustCompile(`^create:task-([0-9]+)$`)

// canonicalRqID accepts the key=value pairs in any order and the legacy
// create:task-<id> form (API.md §5.5); anything else is returned unchanged.
func canonicalRqID(id string) string {
	if m := legacyRqID.FindStringSubmatch(id); m != nil {
		return "action=create&target=task&target_id=" + m[1]
	}
	vals, err := url.ParseQuery(id)
	if err != nil || len(vals) != 3 || vals.Get("action") != "create" || vals.Get("target") != "task" {
		return id
	}
	if n, err := strconv.Atoi(vals.Get("target_id")); err == nil {
		return rqIDFor(n)
	}
	return id
}

// handleGetRequest is GET /api/requests/{rq_id}; the 404 is Django's
// HttpResponseNotFound, not JSON (API.md §6.1).
func (s *Server) handleGetRequest(c *call) {
	id := canonicalRqID(c.args[0])
	s.mu.Lock()
	rq := s.liveRequestLocked(id)
	if rq == nil {
		s.mu.Unlock()
		c.w.Header().Set("Content-Type", "text/html; charset=utf-8")
		c.w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(c.w, "There is no request with specified id")
		return
	}
	if !canSee(c.user, rq.owner) && !canSee(c.user, rq.ref.owner) {
		s.mu.Unlock()
		c.forbidden()
		return
	}
	out := s.renderRequest(rq)
	s.mu.Unlock()
	c.w.Header().Set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private")
	c.json(http.StatusOK, out)
}

// handleListRequests is GET /api/requests: only the caller's own requests,
// simple filters, default order -created_date (API.md §6.2).
func (s *Server) handleListRequests(c *call) {
	q := c.r.URL.Query()
	s.mu.Lock()
	var rqs []*request
	for id := range s.requests {
		rq := s.liveRequestLocked(id)
		if rq == nil || rq.owner != c.user || !c.scope.includes(rq.ref.org) || !requestMatches(rq, q) {
			continue
		}
		rqs = append(rqs, rq)
	}
	key := q.Get("sort")
	desc := strings.HasPrefix(key, "-")
	field := strings.TrimPrefix(key, "-")
	if field != "status" && field != "action" && field != "created_date" {
		field, desc = "created_date", true
	}
	sort.SliceStable(rqs, func(i, j int) bool {
		a, b := rqs[i], rqs[j]
		if field == "status" && a.status != b.status {
			return (a.status < b.status) != desc
		}
		if a.created.Equal(b.created) {
			return (a.seq < b.seq) != desc
		}
		return a.created.Before(b.created) != desc
	})
	items := make([]obj, len(rqs))
	for i, rq := range rqs {
		items[i] = s.renderRequest(rq)
	}
	s.mu.Unlock()
	c.w.Header().Set("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private")
	c.list(items)
}

// requestMatches applies the simple filters of GET /api/requests.
func requestMatches(rq *request, q url.Values) bool {
	checks := []struct {
		param string
		value string
	}{
		{"status", rq.status},
		{"task_id", itoa(rq.ref.id)},
		{"action", "create"},
		{"target", "task"},
	}
	for _, ch := range checks {
		if v, ok := q[ch.param]; ok && v[0] != "" && v[0] != ch.value {
			return false
		}
	}
	if v := q.Get("project_id"); v != "" && (rq.ref.project == nil || itoa(rq.ref.project.id) != v) {
		return false
	}
	for _, never := range []string{"job_id", "subresource", "format"} {
		if q.Get(never) != "" {
			return false
		}
	}
	return true
}
