package cvatsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// webhookUserAgent is what CVAT's requests session sends (API.md §8.6).
const webhookUserAgent = "CVAT/" + Version + " python-requests/2.32.4"

// webhook is a CVAT webhook (API.md §8.1).
type webhook struct {
	id           int
	targetURL    string
	description  string
	typ          string
	secret       string
	isActive     bool
	enableSSL    bool
	created      time.Time
	updated      time.Time
	owner        *user
	org          *org // an organization webhook's, or its project's
	projectID    *int
	events       []string
	lastStatus   int
	lastDelivery time.Time
}

// delivery is a WebhookDelivery row, one per attempt.
type delivery struct {
	id         int
	webhookID  int
	event      string
	status     int
	redelivery bool
	attempt    int
	durationMs int
	created    time.Time
	updated    time.Time
	request    obj
	response   string
}

// whItem is one queued delivery: the payload was built when the event fired.
type whItem struct {
	webhookID int
	event     string
	payload   obj
	attempt   int

	// Fault state of this attempt (faults.go): a wrong signature; already delayed or duplicated once.
	badSig, delayed, dup bool
}

// eventGroups maps event resources to their display names (EventsEnum
// groups of /api/webhooks/events).
var eventGroups = map[string]string{
	"project": "Project", "task": "Task", "job": "Job", "issue": "Issue", "comment": "Comment",
	"membership": "Membership", "invitation": "Invitation", "organization": "Organization",
	"completed:request[create:task]":        "Task data creation",
	"completed:request[export:annotations]": "Annotations export",
	"completed:request[export:dataset]":     "Dataset export",
	"completed:request[export:backup]":      "Backup export",
	"completed:request[merge:task]":         "Task merge",
	"completed:request[merge:job]":          "Job merge",
	"completed:request[calculate:quality]":  "Quality calculation",
}

// allEvents is EventsEnum (API.md §8.2), sorted.
var allEvents = func() []string {
	var ev []string
	for _, r := range []string{"project", "task", "job", "issue", "comment", "membership"} {
		for _, a := range []string{"create", "update", "delete"} {
			ev = append(ev, a+":"+r)
		}
	}
	ev = append(ev, "create:invitation", "delete:invitation", "update:organization")
	for k := range eventGroups {
		if strings.HasPrefix(k, "completed:") {
			ev = append(ev, k)
		}
	}
	sort.Strings(ev)
	return ev
}()

// eventsFor lists the events a webhook type accepts (API.md §8.2).
func eventsFor(typ string) []string {
	if typ != "project" {
		return allEvents
	}
	var out []string
	for _, e := range allEvents {
		act, res, _ := strings.Cut(e, ":")
		switch {
		case act == "completed":
			out = append(out, e)
		case res == "task" || res == "job" || res == "issue" || res == "comment":
			out = append(out, e)
		case e == "update:project" || e == "delete:project":
			out = append(out, e)
		}
	}
	return out
}

func eventGroup(e string) string {
	if g, ok := eventGroups[e]; ok {
		return g
	}
	_, res, _ := strings.Cut(e, ":")
	return eventGroups[res]
}

// apiSender is the sender of payloads built in an API call: a BasicUser.
func apiSender(c *call) any { return basicUser(c.user, c.base()) }

// workerSender is the sender of payloads built in the import worker.
func workerSender(u *user) any {
	return obj{{"id", u.id}, {"username", u.username}, {"email", u.email}}
}

// matchingLocked selects the webhooks for an event of an object in project proj (nil: none) and
// organization o (nil: the sandbox): organization webhooks first, then project webhooks, each in id order
// (API.md §8.3).
func (s *Server) matchingLocked(event string, proj *project, o *org) []*webhook {
	var orgHooks, projHooks []*webhook
	for _, w := range s.webhooks {
		if !w.isActive || !slices.Contains(w.events, event) {
			continue
		}
		switch {
		case w.typ == "organization" && o != nil && w.org == o:
			orgHooks = append(orgHooks, w)
		case w.typ == "project" && proj != nil && w.projectID != nil && *w.projectID == proj.id:
			projHooks = append(projHooks, w)
		}
	}
	byID := func(ws []*webhook) { sort.Slice(ws, func(i, j int) bool { return ws[i].id < ws[j].id }) }
	byID(orgHooks)
	byID(projHooks)
	return append(orgHooks, projHooks...)
}

// enqueueLocked queues one delivery for the serial webhook worker.
func (s *Server) enqueueLocked(w *webhook, event string, payload obj) {
	s.whQueue = append(s.whQueue, &whItem{webhookID: w.id, event: event, payload: payload, attempt: 1})
	s.whCond.Signal()
}

// emitResourceLocked fires create:<r> or delete:<r> (API.md §8.5).
func (s *Server) emitResourceLocked(event string, proj *project, o *org, key string, repr obj, sender any) {
	for _, w := range s.matchingLocked(event, proj, o) {
		var p obj
		if strings.HasPrefix(event, "delete:") {
			p = obj{{"event", event}, {key, repr}, {"sender", sender}, {"webhook_id", w.id}}
		} else {
			p = obj{{"event", event}, {"webhook_id", w.id}, {key, repr}, {"sender", sender}}
		}
		s.enqueueLocked(w, event, p)
	}
}

// emitUpdateLocked fires update:<r> with before_update and changes.
func (s *Server) emitUpdateLocked(event string, proj *project, o *org, key string, repr, before, changes obj, sender any) {
	for _, w := range s.matchingLocked(event, proj, o) {
		s.enqueueLocked(w, event, obj{{"event", event}, {"webhook_id", w.id}, {key, repr}, {"sender", sender},
			{"before_update", before}, {"changes", changes}})
	}
}

// emitRequestLocked fires completed:request[create:task] (no sender).
func (s *Server) emitRequestLocked(rq *request) {
	const event = "completed:request[create:task]"
	for _, w := range s.matchingLocked(event, rq.ref.project, rq.ref.org) {
		s.enqueueLocked(w, event, obj{{"event", event}, {"request", s.renderRequest(rq)}, {"webhook_id", w.id}})
	}
}

// webhookWorker is the single webhooks worker: deliveries are serial and
// FIFO, each after the hop's service time (API.md §8.6).
func (s *Server) webhookWorker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.whQueue) == 0 && !s.closed {
			s.whCond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		it := s.whQueue[0]
		s.whQueue = s.whQueue[1:]
		s.mu.Unlock()
		if !s.deliveryFaults(it) {
			continue
		}
		if s.wait(s.ctx, s.prof.WebhookHop) != nil {
			return
		}
		s.deliver(s.ctx, it, false)
		if !it.dup && s.faults.hit("hookdup", func(f Faults) float64 { return f.HookDup }) {
			s.opts.Logf("cvatsim: fault hookdup %s to webhook %d", it.event, it.webhookID)
			cp := *it
			cp.dup, cp.badSig = true, false
			s.mu.Lock()
			s.whQueue = append([]*whItem{&cp}, s.whQueue...)
			s.mu.Unlock()
		}
	}
}

// deliveryFaults applies hookdrop, hookdelay and hookbadsig to an attempt taken from the queue. It reports
// whether the attempt goes out now; a delayed one is queued again later, a dropped one is gone.
func (s *Server) deliveryFaults(it *whItem) bool {
	fs := s.faults
	if fs.hit("hookdrop", func(f Faults) float64 { return f.HookDrop }) {
		s.opts.Logf("cvatsim: fault hookdrop %s to webhook %d", it.event, it.webhookID)
		return false
	}
	if !it.delayed && fs.hit("hookdelay", func(f Faults) float64 { return f.HookDelay }) {
		d := fs.get().HookDelayBy
		s.opts.Logf("cvatsim: fault hookdelay %v %s to webhook %d", d, it.event, it.webhookID)
		cp := *it
		cp.delayed = true
		s.afterFunc(d, func() {
			s.mu.Lock()
			s.whQueue = append(s.whQueue, &cp)
			s.whCond.Signal()
			s.mu.Unlock()
		})
		return false
	}
	if fs.hit("hookbadsig", func(f Faults) float64 { return f.HookBadSig }) {
		s.opts.Logf("cvatsim: fault hookbadsig %s to webhook %d", it.event, it.webhookID)
		it.badSig = true
	}
	return true
}

// webhookClients are the HTTP clients of deliveries: 3 s connect, 10 s read;
// TLS verification only with enable_ssl. No environment proxy.
var webhookClients = newWebhookClients((&net.Dialer{Timeout: 3 * time.Second}).DialContext)

// newWebhookClients builds the delivery clients over dial (plain and with TLS verification).
func newWebhookClients(dial func(ctx context.Context, network, addr string) (net.Conn, error)) [2]*http.Client {
	mk := func(verify bool) *http.Client {
		tr := &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: !verify}, //nolint:gosec // enable_ssl=false asks for it
			MaxIdleConnsPerHost:   2,
		}
		return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	return [2]*http.Client{mk(false), mk(true)}
}

// deliver sends one attempt, records it and schedules a retry on >= 500, 408
// or 429 (connection errors count as 502, timeouts as 504). It returns the
// delivery, or nil when the webhook is gone or inactive.
func (s *Server) deliver(ctx context.Context, it *whItem, ping bool) *delivery {
	s.mu.Lock()
	w := s.webhooks[it.webhookID]
	if w == nil || (!w.isActive && !ping) {
		s.mu.Unlock()
		return nil
	}
	target, secret, enableSSL := w.targetURL, w.secret, w.enableSSL
	s.mu.Unlock()

	body := encodePy(it.payload)
	status, resp, dur := post(ctx, s.hookClients, target, secret, it.badSig, enableSSL, body)
	now := s.now()
	s.mu.Lock()
	d := &delivery{id: s.nextID("delivery"), webhookID: it.webhookID, event: it.event, status: status,
		attempt: it.attempt, durationMs: int(dur / time.Millisecond), created: now, updated: now,
		request: it.payload, response: resp}
	s.delivs = append(s.delivs, d)
	if w := s.webhooks[it.webhookID]; w != nil {
		w.lastStatus, w.lastDelivery = status, now
	}
	retry := !ping && (status >= 500 || status == 408 || status == 429) && it.attempt <= len(s.opts.WebhookRetryDelays)
	s.mu.Unlock()
	if retry {
		next := &whItem{webhookID: it.webhookID, event: it.event, payload: it.payload, attempt: it.attempt + 1}
		s.afterFunc(s.opts.WebhookRetryDelays[it.attempt-1], func() {
			s.mu.Lock()
			s.whQueue = append(s.whQueue, next)
			s.whCond.Signal()
			s.mu.Unlock()
		})
	}
	return d
}

// post sends body to target as CVAT does and returns the status (502 for a
// connection error, 504 for a timeout), the response text (at most 1 MB) and
// the duration. badSig (the hookbadsig fault) signs with a wrong key.
func post(ctx context.Context, clients [2]*http.Client, target, secret string, badSig, enableSSL bool, body []byte) (int, string, time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second) // RQ job timeout of the webhooks queue
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 502, "", time.Since(start)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", webhookUserAgent)
	req.Header.Set("Accept", "*/*")
	if badSig {
		secret += "-not-the-secret"
	}
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set("X-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	client := clients[0]
	if enableSSL {
		client = clients[1]
	}
	resp, err := client.Do(req)
	if err != nil {
		if isTimeout(err) {
			return 504, "", time.Since(start)
		}
		return 502, "", time.Since(start)
	}
	defer resp.Body.Close()
	// Read timeout of 10 s for the body as well.
	timer := time.AfterFunc(10*time.Second, cancel)
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	timer.Stop()
	if err != nil && isTimeout(err) {
		return 504, "", time.Since(start)
	}
	text := string(b)
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	return resp.StatusCode, text, time.Since(start)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// renderWebhook is WebhookRead; last_status and last_delivery_date are absent
// until a delivery exists (API.md §8.1). Callers hold s.mu.
func (s *Server) renderWebhook(w *webhook, base string) obj {
	o := obj{
		{"id", w.id},
		{"url", base + "/api/webhooks/" + itoa(w.id)},
		{"target_url", w.targetURL},
		{"description", w.description},
		{"type", w.typ},
		{"content_type", "application/json"},
		{"is_active", w.isActive},
		{"enable_ssl", w.enableSSL},
		{"created_date", fmtTime(w.created)},
		{"updated_date", fmtTime(w.updated)},
		{"owner", basicUser(w.owner, base)},
		{"project_id", intOrNil(w.projectID)},
		{"organization", orgIDOf(w.org)},
		{"events", append([]string{}, w.events...)},
	}
	if !w.lastDelivery.IsZero() {
		o = append(o, kv{"last_status", w.lastStatus}, kv{"last_delivery_date", fmtTime(w.lastDelivery)})
	}
	return o
}

func renderDelivery(d *delivery) obj {
	return obj{
		{"id", d.id}, {"webhook_id", d.webhookID}, {"event", d.event}, {"status_code", d.status},
		{"redelivery", d.redelivery}, {"attempt", d.attempt}, {"request_duration", d.durationMs},
		{"created_date", fmtTime(d.created)}, {"updated_date", fmtTime(d.updated)}, {"changed_fields", ""},
		{"request", d.request}, {"response", d.response},
	}
}

// validTargetURL is Django's URLField check as far as the host goes: a dotted
// name, an IP or localhost (API.md §8.1).
func validTargetURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 8192 {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || net.ParseIP(host) != nil || (strings.Contains(host, ".") && !strings.HasSuffix(host, "."))
}

// handleCreateWebhook is POST /api/webhooks.
func (s *Server) handleCreateWebhook(c *call) {
	var in struct {
		TargetURL   *string  `json:"target_url"`
		Description *string  `json:"description"`
		Type        *string  `json:"type"`
		ContentType *string  `json:"content_type"`
		Secret      *string  `json:"secret"`
		IsActive    *bool    `json:"is_active"`
		EnableSSL   *bool    `json:"enable_ssl"`
		ProjectID   *int     `json:"project_id"`
		Events      []string `json:"events"`
	}
	if !c.decodeJSON(&in) {
		return
	}
	var errs obj
	req := func(field string, ok bool) {
		if !ok {
			errs = append(errs, kv{field, []string{"This field is required."}})
		}
	}
	req("target_url", in.TargetURL != nil)
	req("type", in.Type != nil)
	req("events", in.Events != nil)
	if in.TargetURL != nil && !validTargetURL(*in.TargetURL) {
		errs = append(errs, kv{"target_url", []string{"Enter a valid URL."}})
	}
	if in.Type != nil && *in.Type != "project" && *in.Type != "organization" {
		errs = append(errs, kv{"type", []string{"\"" + *in.Type + "\" is not a valid choice."}})
	}
	if in.ContentType != nil && *in.ContentType != "application/json" {
		errs = append(errs, kv{"content_type", []string{"\"" + *in.ContentType + "\" is not a valid choice."}})
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > 128 {
		errs = append(errs, kv{"description", []string{"Ensure this field has no more than 128 characters."}})
	}
	if in.Secret != nil && utf8.RuneCountInString(*in.Secret) > 64 {
		errs = append(errs, kv{"secret", []string{"Ensure this field has no more than 64 characters."}})
	}
	for _, e := range in.Events {
		if sort.SearchStrings(allEvents, e) == len(allEvents) || allEvents[sort.SearchStrings(allEvents, e)] != e {
			errs = append(errs, kv{"events", []string{"\"" + e + "\" is not a valid choice."}})
			break
		}
	}
	if len(errs) > 0 {
		c.badRequest(errs)
		return
	}
	if *in.Type == "organization" && c.scope.org == nil {
		// 2.73.0 answers this with an unhandled exception (measured): the webhook needs an organization.
		c.serverError()
		return
	}
	if *in.Type == "project" && in.ProjectID == nil {
		c.badRequest(fieldError("project_id", "This field is required."))
		return
	}
	allowed := map[string]bool{}
	for _, e := range eventsFor(*in.Type) {
		allowed[e] = true
	}
	for _, e := range in.Events {
		if !allowed[e] {
			c.badRequest([]string{"Invalid events list for " + *in.Type + " webhook"})
			return
		}
	}
	now := s.now()
	s.mu.Lock()
	events := append([]string(nil), in.Events...)
	sort.Strings(events)
	events = dedupe(events)
	w := &webhook{targetURL: *in.TargetURL, typ: *in.Type, isActive: true, enableSSL: true,
		created: now, updated: now, owner: c.user, events: events, org: c.scope.org}
	if *in.Type == "project" {
		p := s.projects[*in.ProjectID]
		if p == nil {
			s.mu.Unlock()
			c.badRequest(fieldError("project_id", "Invalid pk \""+itoa(*in.ProjectID)+"\" - object does not exist."))
			return
		}
		if !canSee(c.user, p.owner) {
			s.mu.Unlock()
			c.forbidden()
			return
		}
		pid := p.id
		w.projectID, w.org = &pid, p.org // a project webhook takes its project's organization
	}
	w.id = s.nextID("webhook")
	if in.Description != nil {
		w.description = *in.Description
	}
	if in.Secret != nil {
		w.secret = *in.Secret
	}
	if in.IsActive != nil {
		w.isActive = *in.IsActive
	}
	if in.EnableSSL != nil {
		w.enableSSL = *in.EnableSSL
	}
	s.webhooks[w.id] = w
	out := s.renderWebhook(w, c.base())
	s.mu.Unlock()
	c.json(http.StatusCreated, out)
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, v := range sorted {
		if i == 0 || v != sorted[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// lookupWebhook finds a webhook the caller may see; ok false means 404 sent.
func (s *Server) lookupWebhookLocked(c *call, id int) (*webhook, bool) {
	w := s.webhooks[id]
	if w == nil || !canSee(c.user, w.owner) {
		return nil, false
	}
	return w, true
}

// handleGetWebhook is GET /api/webhooks/{id}.
func (s *Server) handleGetWebhook(c *call) {
	id, ok := c.pathID(0, "Webhook")
	if !ok {
		return
	}
	s.mu.Lock()
	w, ok := s.lookupWebhookLocked(c, id)
	if !ok {
		s.mu.Unlock()
		c.notFound("Webhook")
		return
	}
	out := s.renderWebhook(w, c.base())
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// handleListWebhooks is GET /api/webhooks (default -id).
func (s *Server) handleListWebhooks(c *call) {
	q := c.r.URL.Query()
	s.mu.Lock()
	var ws []*webhook
	for _, w := range s.webhooks {
		if !canSee(c.user, w.owner) || !c.scope.includes(w.org) {
			continue
		}
		if v := q.Get("type"); v != "" && w.typ != v {
			continue
		}
		if v := q.Get("project_id"); v != "" && (w.projectID == nil || itoa(*w.projectID) != v) {
			continue
		}
		ws = append(ws, w)
	}
	desc := sortDesc(q, true)
	sort.Slice(ws, func(i, j int) bool { return (ws[i].id > ws[j].id) == desc })
	items := make([]obj, len(ws))
	for i, w := range ws {
		items[i] = s.renderWebhook(w, c.base())
	}
	s.mu.Unlock()
	c.list(items)
}

// handleDeleteWebhook is DELETE /api/webhooks/{id}.
func (s *Server) handleDeleteWebhook(c *call) {
	id, ok := c.pathID(0, "Webhook")
	if !ok {
		return
	}
	s.mu.Lock()
	if _, ok := s.lookupWebhookLocked(c, id); !ok {
		s.mu.Unlock()
		c.notFound("Webhook")
		return
	}
	delete(s.webhooks, id)
	s.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

// handleWebhookEvents is GET /api/webhooks/events?type=all|project|organization.
func (s *Server) handleWebhookEvents(c *call) {
	typ := c.r.URL.Query().Get("type")
	if typ == "" {
		typ = "all"
	}
	if typ != "all" && typ != "project" && typ != "organization" {
		c.badRequest([]string{"Incorrect value of type parameter"})
		return
	}
	evs := eventsFor(typ)
	items := make([]obj, len(evs))
	for i, e := range evs {
		items[i] = obj{{"key", e}, {"group", obj{{"display_name", eventGroup(e)}}}}
	}
	c.json(http.StatusOK, obj{{"webhook_type", typ}, {"events", items}})
}

// handlePing is POST /api/webhooks/{id}/ping: sent synchronously; 200 with
// the delivery even when the receiver failed (API.md §8.1).
func (s *Server) handlePing(c *call) {
	id, ok := c.pathID(0, "Webhook")
	if !ok {
		return
	}
	s.mu.Lock()
	w, ok := s.lookupWebhookLocked(c, id)
	if !ok {
		s.mu.Unlock()
		c.notFound("Webhook")
		return
	}
	payload := obj{{"event", "ping"}, {"webhook", s.renderWebhook(w, c.base())}, {"sender", apiSender(c)}}
	s.mu.Unlock()
	d := s.deliver(c.ctx, &whItem{webhookID: id, event: "ping", payload: payload, attempt: 1}, true)
	if d == nil {
		c.notFound("Webhook")
		return
	}
	s.mu.Lock()
	out := renderDelivery(d)
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// handleListDeliveries is GET /api/webhooks/{id}/deliveries (newest first).
func (s *Server) handleListDeliveries(c *call) {
	id, ok := c.pathID(0, "Webhook")
	if !ok {
		return
	}
	s.mu.Lock()
	if _, ok := s.lookupWebhookLocked(c, id); !ok {
		s.mu.Unlock()
		c.notFound("Webhook")
		return
	}
	var items []obj
	for i := len(s.delivs) - 1; i >= 0; i-- {
		if d := s.delivs[i]; d.webhookID == id {
			items = append(items, renderDelivery(d))
		}
	}
	s.mu.Unlock()
	c.list(items)
}
