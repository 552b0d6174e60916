package cvatsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// labelSpec is one entry of "labels" in a write request.
type labelSpec struct {
	Name string `json:"name"`
}

// handleCreateProject is POST /api/projects (API.md §3).
func (s *Server) handleCreateProject(c *call) {
	var in struct {
		Name   *string     `json:"name"`
		Labels []labelSpec `json:"labels"`
	}
	if !c.decodeJSON(&in) {
		return
	}
	if msg := checkName(in.Name); msg != "" {
		c.badRequest(fieldError("name", msg))
		return
	}
	labels, msg := checkLabels(in.Labels)
	if msg != "" {
		c.badRequest(obj{{"labels", []string{msg}}})
		return
	}
	now := s.now()
	s.mu.Lock()
	p := &project{id: s.nextID("project"), org: c.scope.org, name: *in.Name, owner: c.user, labels: labels, created: now, updated: now}
	p.labelID = s.labelIDsLocked(len(labels))
	s.projects[p.id] = p
	out := s.renderProject(p, c.base())
	s.emitResourceLocked("create:project", p, p.org, "project", out, apiSender(c))
	s.mu.Unlock()
	c.json(http.StatusCreated, out)
}

func checkName(name *string) string {
	switch {
	case name == nil:
		return "This field is required."
	case strings.TrimSpace(*name) == "":
		return "This field may not be blank."
	case utf8.RuneCountInString(*name) > 256:
		return "Ensure this field has no more than 256 characters."
	}
	return ""
}

func checkLabels(in []labelSpec) ([]string, string) {
	var out []string
	seen := map[string]bool{}
	for _, l := range in {
		if strings.TrimSpace(l.Name) == "" {
			return nil, "Label name may not be blank."
		}
		if seen[l.Name] {
			return nil, "All label names must be unique"
		}
		seen[l.Name] = true
		out = append(out, l.Name)
	}
	return out, ""
}

// canSee reports whether u may view an object owned by owner.
func canSee(u, owner *user) bool { return u.superuser || u == owner }

// handleGetProject is GET /api/projects/{id}.
func (s *Server) handleGetProject(c *call) {
	id, ok := c.pathID(0, "Project")
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.projects[id]
	if p == nil || !canSee(c.user, p.owner) {
		s.mu.Unlock()
		c.notFound("Project")
		return
	}
	out := s.renderProject(p, c.base())
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// handleListProjects is GET /api/projects (search on the name, default -id).
func (s *Server) handleListProjects(c *call) {
	q := c.r.URL.Query()
	search := strings.ToLower(q.Get("search"))
	s.mu.Lock()
	var ps []*project
	for _, p := range s.projects {
		if !canSee(c.user, p.owner) || !c.scope.includes(p.org) {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(p.name), search) &&
			!strings.Contains(strings.ToLower(p.owner.username), search) {
			continue
		}
		if n := q.Get("name"); n != "" && p.name != n {
			continue
		}
		ps = append(ps, p)
	}
	desc := sortDesc(q, true)
	sort.Slice(ps, func(i, j int) bool { return (ps[i].id > ps[j].id) == desc })
	items := make([]obj, len(ps))
	for i, p := range ps {
		items[i] = s.renderProject(p, c.base())
	}
	s.mu.Unlock()
	c.list(items)
}

// handleDeleteProject is DELETE /api/projects/{id}: its tasks, jobs and
// project webhooks go with it (API.md §3).
func (s *Server) handleDeleteProject(c *call) {
	id, ok := c.pathID(0, "Project")
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.projects[id]
	if p == nil || !canSee(c.user, p.owner) {
		s.mu.Unlock()
		c.notFound("Project")
		return
	}
	jobs := 0
	for _, t := range s.tasks {
		if t.project == p {
			jobs += len(t.jobIDs)
			s.deleteTaskLocked(t, c, false)
		}
	}
	for wid, w := range s.webhooks {
		if w.projectID != nil && *w.projectID == p.id {
			delete(s.webhooks, wid)
		}
	}
	delete(s.projects, id)
	s.mu.Unlock()
	c.post += s.prof.DeletePerJob * timeMul(jobs)
	c.w.WriteHeader(http.StatusNoContent)
}

// handleCreateTask is POST /api/tasks (API.md §4.1).
func (s *Server) handleCreateTask(c *call) {
	var raw map[string]json.RawMessage
	if !c.decodeJSON(&raw) {
		return
	}
	var in struct {
		Name              *string     `json:"name"`
		Labels            []labelSpec `json:"labels"`
		ProjectID         *int        `json:"project_id"`
		SegmentSize       *int        `json:"segment_size"`
		Overlap           *int        `json:"overlap"`
		ConsensusReplicas *int        `json:"consensus_replicas"`
	}
	if len(c.body) > 0 && !c.decodeJSON(&in) {
		return
	}
	errs := obj{}
	if msg := checkName(in.Name); msg != "" {
		errs = append(errs, kv{"name", []string{msg}})
	}
	if in.SegmentSize != nil && *in.SegmentSize < 0 {
		errs = append(errs, kv{"segment_size", []string{"Ensure this value is greater than or equal to 0."}})
	}
	if in.Overlap != nil && *in.Overlap < 0 {
		errs = append(errs, kv{"overlap", []string{"Ensure this value is greater than or equal to 0."}})
	}
	replicas := 0
	if in.ConsensusReplicas != nil {
		replicas = *in.ConsensusReplicas
		if replicas < 0 {
			errs = append(errs, kv{"consensus_replicas", []string{"Ensure this value is greater than or equal to 0."}})
		} else if replicas == 1 || replicas > 11 {
			errs = append(errs, kv{"consensus_replicas", []string{"Value must be 0 or between 2 and 11"}})
		}
	}
	labels, lmsg := checkLabels(in.Labels)
	if lmsg != "" {
		errs = append(errs, kv{"labels", []string{lmsg}})
	}
	if len(errs) > 0 {
		c.badRequest(errs)
		return
	}
	if _, hasLabels := raw["labels"]; hasLabels && in.ProjectID != nil {
		c.badRequest(fieldError("non_field_errors", "Task must have only one of Label set or project_id"))
		return
	}
	now := s.now()
	s.mu.Lock()
	var p *project
	if in.ProjectID != nil {
		p = s.projects[*in.ProjectID]
		if p == nil || !canSee(c.user, p.owner) {
			s.mu.Unlock()
			c.badRequest(fieldError("project_id", "Invalid pk \""+itoa(*in.ProjectID)+"\" - object does not exist."))
			return
		}
		if p.org != c.scope.org {
			s.mu.Unlock()
			c.badRequest([]string{"The task and its project should be in the same organization."})
			return
		}
	}
	t := &task{id: s.nextID("task"), org: c.scope.org, name: *in.Name, project: p, owner: c.user, created: now, updated: now,
		overlap: in.Overlap, replicas: replicas, labels: labels, tus: map[string]*tusUpload{}}
	t.labelID = s.labelIDsLocked(len(labels))
	if in.SegmentSize != nil {
		t.segSize = *in.SegmentSize
	}
	s.tls[t.id] = &timeline{done: make(chan struct{})}
	s.tasks[t.id] = t
	out := s.renderTask(t, renderCtx{base: c.base()})
	s.emitResourceLocked("create:task", p, t.org, "task", out, apiSender(c))
	if p != nil {
		before := p.updated
		p.updated = now
		s.emitUpdateLocked("update:project", p, p.org, "project", s.renderProject(p, c.base()),
			obj{{"updated_date", fmtTime(before)}}, obj{{"updated_date", obj{{"from", fmtTime(before)}, {"to", fmtTime(now)}}}}, apiSender(c))
	}
	s.mu.Unlock()
	c.json(http.StatusCreated, out)
}

// lookupTask finds a task the caller may see; ok false means 404 was sent.
// Callers hold s.mu.
func (s *Server) lookupTaskLocked(c *call, id int) (*task, bool) {
	t := s.tasks[id]
	if t == nil || !canSee(c.user, t.owner) {
		return nil, false
	}
	return t, true
}

// lockTask resolves the task of the request path with s.mu held. When the id
// is malformed or the task is not visible to the caller it has already
// answered (400/404), released the lock and returns false.
func (s *Server) lockTask(c *call) (*task, bool) {
	id, ok := c.pathID(0, "Task")
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	t, ok := s.lookupTaskLocked(c, id)
	if !ok {
		s.mu.Unlock()
		c.notFound("Task")
		return nil, false
	}
	return t, true
}

// handleGetTask is GET /api/tasks/{id}.
func (s *Server) handleGetTask(c *call) {
	t, ok := s.lockTask(c)
	if !ok {
		return
	}
	out := s.renderTask(t, renderCtx{base: c.base()})
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// handleListTasks is GET /api/tasks with search, simple filters and
// pagination (default order -id).
func (s *Server) handleListTasks(c *call) {
	q := c.r.URL.Query()
	search := strings.ToLower(q.Get("search"))
	s.mu.Lock()
	var ts []*task
	for _, t := range s.tasks {
		if !canSee(c.user, t.owner) || !c.scope.includes(t.org) {
			continue
		}
		if search != "" && !taskMatches(t, search) {
			continue
		}
		if v := q.Get("project_id"); v != "" && (t.project == nil || itoa(t.project.id) != v) {
			continue
		}
		if v := q.Get("name"); v != "" && t.name != v {
			continue
		}
		ts = append(ts, t)
	}
	desc := sortDesc(q, true)
	sort.Slice(ts, func(i, j int) bool { return (ts[i].id > ts[j].id) == desc })
	items := make([]obj, len(ts))
	for i, t := range ts {
		items[i] = s.renderTask(t, renderCtx{base: c.base()})
	}
	s.mu.Unlock()
	c.list(items)
}

// taskMatches is the search filter over CVAT's task search fields.
func taskMatches(t *task, term string) bool {
	fields := []string{t.name, t.owner.username, "annotation"}
	if t.project != nil {
		fields = append(fields, t.project.name)
	}
	if t.initialized {
		fields = append(fields, "2d")
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), term) {
			return true
		}
	}
	return false
}

// handleDeleteTask is DELETE /api/tasks/{id} (API.md §4.3).
func (s *Server) handleDeleteTask(c *call) {
	t, ok := s.lockTask(c)
	if !ok {
		return
	}
	id := t.id
	if rq := s.liveRequestLocked(rqIDFor(id)); rq != nil && rq.status == stStarted {
		// The worker holds the task row lock: wait for its commit for up to
		// CVAT_DB_LOCK_TIMEOUT, then give up with 409 (API.md §4.3, §1.4).
		tl := s.tls[id]
		s.mu.Unlock()
		if !s.waitDone(c, tl.done, dbLockTimeout) {
			c.detail(http.StatusConflict, "This resource is currently busy with another operation. Please try again in a moment.")
			return
		}
		s.mu.Lock()
		if t, ok = s.lookupTaskLocked(c, id); !ok {
			s.mu.Unlock()
			c.notFound("Task")
			return
		}
	}
	n := len(t.jobIDs)
	s.deleteTaskLocked(t, c, true)
	s.mu.Unlock()
	c.post += s.prof.DeletePerJob * timeMul(n)
	c.w.WriteHeader(http.StatusNoContent)
}

// deleteTaskLocked removes a task and its jobs; with events it fires
// delete:job per job, then delete:task. A queued request fails when a worker
// takes it; a running one fails at its commit.
func (s *Server) deleteTaskLocked(t *task, c *call, events bool) {
	rc := renderCtx{base: c.base()}
	if events {
		taskRepr := s.renderTask(t, rc)
		for _, id := range t.jobIDs {
			if j := s.jobs[id]; j != nil {
				s.emitResourceLocked("delete:job", t.project, t.org, "job", s.renderJob(j, rc), apiSender(c))
			}
		}
		s.emitResourceLocked("delete:task", t.project, t.org, "task", taskRepr, apiSender(c))
	}
	for _, id := range t.jobIDs {
		delete(s.jobs, id)
	}
	for k := range s.chunks {
		if k.task == t.id {
			delete(s.chunks, k)
		}
	}
	t.deleted = true
	// Its request (a failed one stays a year, a finished one RequestTTL) keeps pointing at the task: keep
	// only what rendering the request needs (id, project, organization). A pipeline still running holds its
	// own references and fails at the commit.
	t.files, t.tus, t.frames, t.labels, t.labelID, t.jobIDs = nil, nil, nil, nil, nil, nil
	if rq := s.requests[rqIDFor(t.id)]; rq != nil && rq.task == t && (rq.status == stFinished || rq.status == stFailed) {
		rq.task, rq.params = nil, dataParams{} // it renders from rq.ref
	}
	delete(s.tasks, t.id)
	s.forgetTimelineLaterLocked(t.id)
}

// keptDeletedTimelines bounds the ground truth kept for deleted tasks: enough for a run's report and tests
// to read its tasks' timelines after its cleanup, without a soak of many runs growing without bound.
const keptDeletedTimelines = 4096

// forgetTimelineLaterLocked queues the timeline of a deleted task; beyond keptDeletedTimelines the oldest
// goes.
func (s *Server) forgetTimelineLaterLocked(id int) {
	if len(s.deletedTLs) < keptDeletedTimelines {
		s.deletedTLs = append(s.deletedTLs, id)
		return
	}
	i := s.deletedNext % keptDeletedTimelines // a ring: the slot of the oldest
	delete(s.tls, s.deletedTLs[i])
	s.deletedTLs[i] = id
	s.deletedNext++
}

// handleTaskStatus is the deprecated GET /api/tasks/{id}/status (API.md
// §6.3): "Finished" whenever no request exists.
func (s *Server) handleTaskStatus(c *call) {
	t, ok := s.lockTask(c)
	if !ok {
		return
	}
	state, msg := "Finished", ""
	if rq := s.liveRequestLocked(rqIDFor(t.id)); rq != nil {
		switch rq.status {
		case stQueued:
			state = "Queued"
		case stStarted:
			state, msg = "Started", rq.message
		case stFailed:
			state, msg = "Failed", rq.message
		}
	}
	s.mu.Unlock()
	c.w.Header().Set("Deprecation", "true")
	c.json(http.StatusOK, obj{{"state", state}, {"message", msg}, {"progress", 0.0}})
}

// dbLockTimeout is CVAT_DB_LOCK_TIMEOUT: how long a request waits for a row
// lock before answering 409 "busy".
const dbLockTimeout = 10 * time.Second

// waitDone waits for done up to d on the server clock; false on timeout or
// when the call or the server ends.
func (s *Server) waitDone(c *call, done <-chan struct{}, d time.Duration) bool {
	timeout := make(chan struct{})
	s.afterFunc(d, func() { close(timeout) })
	select {
	case <-done:
		return true
	case <-timeout:
	case <-c.ctx.Done():
	case <-s.ctx.Done():
	}
	return false
}

// labelIDsLocked draws n ids from the label sequence.
func (s *Server) labelIDsLocked(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = s.nextID("label")
	}
	return ids
}

// labelColors is the start of CVAT's label palette; colors go by label id.
var labelColors = []string{"#33ddff", "#fa3253", "#34d1b7", "#ff007c", "#ff6037", "#ddff33", "#24b353",
	"#b83df5", "#66ff66", "#32b7fa", "#ffcc33", "#83e070"}

// labelRow is one label with its owner object, for GET /api/labels.
type labelRow struct {
	id        int
	name      string
	projectID any
	taskID    any
}

func renderLabel(l labelRow) obj {
	return obj{
		{"id", l.id}, {"name", l.name}, {"color", labelColors[(l.id-1)%len(labelColors)]},
		{"attributes", []any{}}, {"type", "any"}, {"svg", ""}, {"sublabels", []any{}},
		{"project_id", l.projectID}, {"task_id", l.taskID}, {"parent_id", nil}, {"has_parent", false},
	}
}

func projectLabels(p *project) []labelRow {
	out := make([]labelRow, len(p.labels))
	for i, n := range p.labels {
		out[i] = labelRow{id: p.labelID[i], name: n, projectID: p.id, taskID: nil}
	}
	return out
}

// taskLabels are the labels of a task: its project's when it has one (task.get_labels()).
func taskLabels(t *task) []labelRow {
	if t.project != nil {
		return projectLabels(t.project)
	}
	out := make([]labelRow, len(t.labels))
	for i, n := range t.labels {
		out[i] = labelRow{id: t.labelID[i], name: n, projectID: nil, taskID: t.id}
	}
	return out
}

// handleListLabels is GET /api/labels (LabelViewSet.list): at most one of job_id, task_id and project_id
// (400 otherwise); an unknown or invisible object is a 404; without a filter, every label the caller may
// see. Ordered by id, paginated (schema PaginatedLabelList). The SDK's Project.get_labels() and
// Task.get_labels() call it.
func (s *Server) handleListLabels(c *call) {
	q := c.r.URL.Query()
	n := 0
	for _, k := range []string{"job_id", "task_id", "project_id"} {
		if q.Get(k) != "" {
			n++
		}
	}
	if n > 1 {
		c.badRequest([]string{"job_id, task_id and project_id parameters cannot be used together"})
		return
	}
	idParam := func(k string) (int, bool) {
		id, err := strconv.Atoi(q.Get(k))
		if err != nil {
			c.badRequest(fieldError(k, "A valid integer is required."))
			return 0, false
		}
		return id, true
	}
	var rows []labelRow
	s.mu.Lock()
	switch {
	case q.Get("job_id") != "":
		id, ok := idParam("job_id")
		if !ok {
			s.mu.Unlock()
			return
		}
		j := s.jobs[id]
		if j == nil || !canSee(c.user, j.task.owner) {
			s.mu.Unlock()
			c.detail(http.StatusNotFound, "Job matching query does not exist.")
			return
		}
		rows = taskLabels(j.task)
	case q.Get("task_id") != "":
		id, ok := idParam("task_id")
		if !ok {
			s.mu.Unlock()
			return
		}
		t := s.tasks[id]
		if t == nil || !canSee(c.user, t.owner) {
			s.mu.Unlock()
			c.detail(http.StatusNotFound, "Task matching query does not exist.")
			return
		}
		rows = taskLabels(t)
	case q.Get("project_id") != "":
		id, ok := idParam("project_id")
		if !ok {
			s.mu.Unlock()
			return
		}
		p := s.projects[id]
		if p == nil || !canSee(c.user, p.owner) {
			s.mu.Unlock()
			c.detail(http.StatusNotFound, "Project matching query does not exist.")
			return
		}
		rows = projectLabels(p)
	default:
		for _, p := range s.projects {
			if canSee(c.user, p.owner) {
				rows = append(rows, projectLabels(p)...)
			}
		}
		for _, t := range s.tasks {
			if t.project == nil && canSee(c.user, t.owner) {
				rows = append(rows, taskLabels(t)...)
			}
		}
	}
	s.mu.Unlock()
	if name := q.Get("name"); name != "" {
		rows = slices.DeleteFunc(rows, func(l labelRow) bool { return l.name != name })
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	items := make([]obj, len(rows))
	for i, l := range rows {
		items[i] = renderLabel(l)
	}
	c.list(items)
}

// handleTaskDataMeta is GET /api/tasks/{id}/data/meta (DataMetaReadSerializer; the SDK's task.get_meta()):
// the frames with their sizes, in frame order. Before the data is in, CVAT answers 400.
func (s *Server) handleTaskDataMeta(c *call) {
	t, ok := s.lockTask(c)
	if !ok {
		return
	}
	if !t.initialized {
		s.mu.Unlock()
		c.badRequest([]string{"Data is not uploaded for the task yet"})
		return
	}
	frames := make([]obj, len(t.frames))
	for i, f := range t.frames {
		frames[i] = obj{{"width", f.w}, {"height", f.h}, {"name", f.name}, {"related_files", 0}, {"has_related_context", false}}
	}
	out := obj{
		{"chapters", nil}, {"chunks_updated_date", fmtTime(t.updated)}, {"chunk_size", t.chunkSize},
		{"size", t.size}, {"image_quality", t.imageQuality}, {"start_frame", 0}, {"stop_frame", max(t.size-1, 0)},
		{"frame_filter", ""}, {"frames", frames}, {"deleted_frames", []int{}}, {"included_frames", nil},
		{"storage", "local"}, {"cloud_storage_id", nil}, // where the source files are: uploaded by the client
	}
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}
