package cvatsim

import "strconv"

func itoa(i int) string { return strconv.Itoa(i) }

// renderCtx says where a representation is built: in an API call (absolute
// URLs, names filled) or in the import worker (relative URLs, null names;
// API.md §8.5).
type renderCtx struct {
	base   string // "" in the worker
	worker bool
}

// renderTask is TaskReadSerializer.to_representation, dropping the keys the
// task's state leaves out (API.md §4.2). Callers hold s.mu.
func (s *Server) renderTask(t *task, rc renderCtx) obj {
	var projectID, projectName any
	if t.project != nil {
		projectID = t.project.id
		if !rc.worker {
			projectName = t.project.name
		}
	}
	var data any
	if t.dataID != 0 {
		data = t.dataID
	}
	var overlap any
	if t.overlap != nil {
		overlap = *t.overlap
	}
	mediaType, mode, dim := "", "", ""
	if t.initialized {
		mediaType, mode, dim = "image", "annotation", "2d"
	}
	o := obj{
		{"url", rc.base + "/api/tasks/" + itoa(t.id)},
		{"id", t.id},
		{"name", t.name},
		{"project_id", projectID},
		{"project_name", projectName},
		{"owner", basicUser(t.owner, rc.base)},
		{"assignee", nil},
		{"bug_tracker", ""},
		{"created_date", fmtTime(t.created)},
		{"updated_date", fmtTime(t.updated)},
		{"overlap", overlap},
		{"segment_size", t.segSize},
		{"status", "annotation"},
		{"data_chunk_size", t.chunkSize},
		{"data_original_chunk_type", "imageset"},
		{"data_compressed_chunk_type", "imageset"},
		{"data_cloud_storage_id", nil},
		{"guide_id", nil},
		{"size", t.size},
		{"image_quality", t.imageQuality},
		{"data", data},
		{"dimension", dim},
		{"mode", mode},
		{"media_type", mediaType},
		{"subset", ""},
		{"organization_id", orgIDOf(t.org)},
		{"organization", orgIDOf(t.org)},
		{"target_storage", nil},
		{"source_storage", nil},
		{"jobs", obj{{"count", len(t.jobIDs)}, {"completed", 0}, {"validation", 0},
			{"url", rc.base + "/api/jobs?task_id=" + itoa(t.id)}}},
		{"labels", obj{{"url", rc.base + "/api/labels?task_id=" + itoa(t.id)}}},
		{"assignee_updated_date", nil},
		{"validation_mode", s.validationMode(t)},
		{"consensus_enabled", t.replicas > 0},
	}
	switch {
	case t.dataID == 0:
		o = o.without("size", "data_cloud_storage_id", "image_quality", "data_chunk_size",
			"data_original_chunk_type", "data_compressed_chunk_type")
	case !t.initialized:
		o = o.without("image_quality", "data_chunk_size", "data_original_chunk_type", "data_compressed_chunk_type")
	}
	return o
}

func (s *Server) validationMode(t *task) any {
	for _, id := range t.jobIDs {
		if j := s.jobs[id]; j != nil && j.typ == "ground_truth" {
			return "gt"
		}
	}
	return nil
}

// renderJob is JobReadSerializer (API.md §7.1). In the worker, task-derived
// fields carry their pre-initialization values (API.md §8.4). Callers hold
// s.mu.
func (s *Server) renderJob(j *job, rc renderCtx) obj {
	t := j.task
	var projectID, projectName, taskName any
	if t.project != nil {
		projectID = t.project.id
		projectName = t.project.name
	}
	taskName = t.name
	var issues any = obj{{"url", rc.base + "/api/issues?job_id=" + itoa(j.id)}, {"count", 0}}
	dim, mode, media := "2d", "annotation", "image"
	var chunkSize any = t.chunkSize
	chunkType := "imageset"
	if rc.worker {
		projectName, taskName, issues = nil, nil, nil
		dim, mode, media, chunkSize, chunkType = "", "", "", nil, ""
	}
	return obj{
		{"url", rc.base + "/api/jobs/" + itoa(j.id)},
		{"id", j.id},
		{"task_id", t.id},
		{"task_name", taskName},
		{"project_id", projectID},
		{"project_name", projectName},
		{"assignee", nil},
		{"guide_id", nil},
		{"dimension", dim},
		{"mode", mode},
		{"media_type", media},
		{"bug_tracker", ""},
		{"status", "annotation"},
		{"stage", "annotation"},
		{"state", "new"},
		{"frame_count", j.frameCount},
		{"start_frame", j.start},
		{"stop_frame", j.stop},
		{"data_chunk_size", chunkSize},
		{"data_compressed_chunk_type", chunkType},
		{"data_original_chunk_type", chunkType},
		{"created_date", fmtTime(j.created)},
		{"updated_date", fmtTime(j.created)},
		{"issues", issues},
		{"labels", obj{{"url", rc.base + "/api/labels?job_id=" + itoa(j.id)}}},
		{"type", j.typ},
		{"organization", orgIDOf(j.task.org)},
		{"target_storage", nil},
		{"source_storage", nil},
		{"assignee_updated_date", nil},
		{"parent_job_id", intOrNil(j.parent)},
		{"consensus_replicas", j.replicas},
		{"replicas_count", j.replicas},
	}
}

// renderProject is ProjectRead. Callers hold s.mu.
func (s *Server) renderProject(p *project, base string) obj {
	n := 0
	for _, t := range s.tasks {
		if t.project == p {
			n++
		}
	}
	return obj{
		{"url", base + "/api/projects/" + itoa(p.id)},
		{"id", p.id},
		{"name", p.name},
		{"owner", basicUser(p.owner, base)},
		{"assignee", nil},
		{"guide_id", nil},
		{"bug_tracker", ""},
		{"task_subsets", []string{}},
		{"created_date", fmtTime(p.created)},
		{"updated_date", fmtTime(p.updated)},
		{"status", "annotation"},
		{"dimension", nil},
		{"organization", orgIDOf(p.org)},
		{"organization_id", orgIDOf(p.org)},
		{"target_storage", nil},
		{"source_storage", nil},
		{"tasks", obj{{"count", n}, {"url", base + "/api/tasks?project_id=" + itoa(p.id)}}},
		{"labels", obj{{"url", base + "/api/labels?project_id=" + itoa(p.id)}}},
		{"assignee_updated_date", nil},
	}
}

// renderRequest is RequestSerializer (API.md §6.1, §11.3). Callers hold s.mu.
func (s *Server) renderRequest(rq *request) obj {
	var projectID any
	if rq.ref.project != nil {
		projectID = rq.ref.project.id
	}
	var expiry any
	if rq.status == stFinished {
		expiry = fmtTime(rq.finished.Add(s.ttl))
	}
	return obj{
		{"status", rq.status},
		{"message", rq.message},
		{"id", rq.id},
		{"operation", obj{{"type", "create:task"}, {"target", "task"}, {"project_id", projectID},
			{"task_id", rq.ref.id}, {"job_id", nil}, {"org_id", orgIDOf(rq.ref.org)}, {"format", nil}, {"lightweight", nil}}},
		{"progress", rq.progress},
		{"created_date", fmtTime(rq.created)},
		{"started_date", timeOrNil(rq.started)},
		{"finished_date", timeOrNil(rq.finished)},
		{"expiry_date", expiry},
		{"owner", obj{{"id", rq.owner.id}, {"username", rq.owner.username}}},
		{"result_url", nil},
		{"result_id", nil},
	}
}
