package cvatsim

import (
	"net/http"
	"sort"
	"strconv"
)

// handleListJobs is GET /api/jobs (API.md §7.1): simple filters, sort by id,
// default -id, pagination with page_size=all. Jobs appear only at the
// creation commit, so a non-empty answer is always complete.
func (s *Server) handleListJobs(c *call) {
	q := c.r.URL.Query()
	s.mu.Lock()
	var js []*job
	s.eachCandidateJobLocked(q, func(j *job) {
		if canSee(c.user, j.task.owner) && c.scope.includes(j.task.org) && jobMatches(j, q) {
			js = append(js, j)
		}
	})
	desc := sortDesc(q, true)
	sort.Slice(js, func(a, b int) bool { return (js[a].id > js[b].id) == desc })
	rc := renderCtx{base: c.base()}
	items := make([]obj, len(js))
	for i, j := range js {
		items[i] = s.renderJob(j, rc)
	}
	s.mu.Unlock()
	n := c.list(items)
	c.post += s.prof.APIReadPerJob * timeMul(n)
}

// eachCandidateJobLocked calls fn for the jobs a listing may return: with task_id only that task's, as
// CVAT's index on the task does, so a poller's listing costs the same with 10 tasks on the server as with
// 20,000; otherwise every job.
func (s *Server) eachCandidateJobLocked(q map[string][]string, fn func(*job)) {
	if v := q["task_id"]; len(v) > 0 && v[0] != "" {
		id, err := strconv.Atoi(v[0])
		t := s.tasks[id]
		if err != nil || itoa(id) != v[0] || t == nil || t.deleted {
			return // jobMatches compares the text: "07" matches no task
		}
		for _, jid := range t.jobIDs {
			if j := s.jobs[jid]; j != nil {
				fn(j)
			}
		}
		return
	}
	for _, j := range s.jobs {
		fn(j)
	}
}

// jobMatches applies the simple equality filters of /api/jobs.
func jobMatches(j *job, q map[string][]string) bool {
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 || v[0] == "" {
			return "", false
		}
		return v[0], true
	}
	var projectID, parent string
	if j.task.project != nil {
		projectID = itoa(j.task.project.id)
	}
	if j.parent != nil {
		parent = itoa(*j.parent)
	}
	fields := map[string]string{
		"task_id": itoa(j.task.id), "project_id": projectID, "type": j.typ, "parent_job_id": parent,
		"stage": "annotation", "state": "new", "dimension": "2d", "media_type": "image", "mode": "annotation",
		"task_name": j.task.name,
	}
	for k, want := range fields {
		if v, ok := get(k); ok && v != want {
			return false
		}
	}
	if v, ok := get("project_name"); ok && (j.task.project == nil || j.task.project.name != v) {
		return false
	}
	if _, ok := get("assignee"); ok {
		return false // no job has an assignee
	}
	return true
}

// lookupJob finds a visible job; ok false means 404 was sent.
func (s *Server) lookupJob(c *call) (*job, bool) {
	id, ok := c.pathID(0, "Job")
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil || !canSee(c.user, j.task.owner) {
		c.notFound("Job")
		return nil, false
	}
	return j, true
}

// handleGetJob is GET /api/jobs/{id}.
func (s *Server) handleGetJob(c *call) {
	j, ok := s.lookupJob(c)
	if !ok {
		return
	}
	s.mu.Lock()
	out := s.renderJob(j, renderCtx{base: c.base()})
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}
