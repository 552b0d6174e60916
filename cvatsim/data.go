package cvatsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tusMaxSize is the largest TUS upload (API.md §5.3).
const tusMaxSize = 26843545600

// rqIDFor is the deterministic request id of a task creation (API.md §5.5).
func rqIDFor(taskID int) string { return "action=create&target=task&target_id=" + itoa(taskID) }

func timeMul(n int) time.Duration { return time.Duration(n) }

// handleData is POST (and OPTIONS) /api/tasks/{id}/data[/]: the row lock, the
// initialized check, the Data row, then the dispatch on headers (API.md §5.1).
func (s *Server) handleData(c *call) {
	t, ok := s.lockTask(c)
	if !ok {
		return
	}
	if c.r.Method == http.MethodOptions {
		s.mu.Unlock()
		setTUSHeaders(c.w.Header())
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	if t.initialized {
		s.mu.Unlock()
		c.badRequest([]string{"Adding more data is not supported"})
		return
	}
	if t.dataID == 0 {
		t.dataID = s.nextID("data")
		s.taskUpdatedLocked(t, c, obj{{"data_id", nil}}, obj{{"data_id", obj{{"from", nil}, {"to", t.dataID}}}})
	}
	s.mu.Unlock()

	h := c.r.Header
	has := func(name string) bool { _, ok := h[http.CanonicalHeaderKey(name)]; return ok }
	switch {
	case has("Upload-Finish"):
		s.uploadFinish(c, t)
	case has("Upload-Start"):
		c.empty(http.StatusAccepted)
	case has("Upload-Length"):
		s.tusCreate(c, t)
	case has("Upload-Multiple"):
		body, ok := c.parseDataBody()
		if !ok {
			return
		}
		s.mu.Lock()
		stored := s.addFilesLocked(t, body.files)
		s.mu.Unlock()
		if !stored {
			c.serverError()
			return
		}
		c.post += s.prof.UploadPerFile * timeMul(len(body.files))
		c.empty(http.StatusOK)
	default:
		s.uploadFinish(c, t)
	}
}

// taskUpdatedLocked bumps updated_date and fires update:task from the API
// process. Callers hold s.mu.
func (s *Server) taskUpdatedLocked(t *task, c *call, before, changes obj) {
	t.updated = s.now()
	s.emitUpdateLocked("update:task", t.project, t.org, "task", s.renderTask(t, renderCtx{base: c.base()}), before, changes, apiSender(c))
}

// addFilesLocked records uploaded files. A name the task already has, or one repeated in files, stores
// nothing and reports false: CVAT 2.73 records client files with one bulk insert under a unique (data, file)
// constraint, so the repeat fails with an IntegrityError (a 500 page) before any byte is written (measured
// on a real 2.73.0; API.md §5.2 reads append_files' mode ab+ as appending, which the constraint prevents).
// That is what makes resending an upload batch safe. TUS files come here after their own 409 name check.
func (s *Server) addFilesLocked(t *task, files []clientFile) bool {
	names := make(map[string]bool, len(t.files)+len(files))
	for _, f := range t.files {
		names[f.name] = true
	}
	for _, f := range files {
		if names[f.name] {
			return false
		}
		names[f.name] = true
	}
	t.files = append(t.files, files...)
	return true
}

// dataBody is a parsed data request: form or JSON fields, plus files.
type dataBody struct {
	json  map[string]json.RawMessage
	form  map[string][]string
	files []clientFile
}

var indexedName = regexp.MustCompile(`^([A-Za-z_]+)\[([0-9]+)\]$`)

// parseDataBody parses a JSON or multipart body. Only indexed
// client_files[i] parts are files; plain repeated names are ignored, as DRF
// does (API.md §5.2). ok false means the error answer was sent.
func (c *call) parseDataBody() (dataBody, bool) {
	var b dataBody
	ct := c.r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	switch {
	case ct == "" || strings.Contains(mt, "json"):
		if len(bytes.TrimSpace(c.body)) > 0 {
			if err := json.Unmarshal(c.body, &b.json); err != nil {
				c.detail(http.StatusBadRequest, "JSON parse error - "+err.Error())
				return b, false
			}
		}
		return b, true
	case mt == "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(c.body), params["boundary"])
		b.form = map[string][]string{}
		type indexed struct {
			i int
			f clientFile
		}
		var files []indexed
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				c.detail(http.StatusBadRequest, "Multipart form parse error - Invalid boundary in multipart: "+err.Error())
				return b, false
			}
			data, err := io.ReadAll(p)
			if err != nil {
				c.detail(http.StatusBadRequest, "Multipart form parse error - "+err.Error())
				return b, false
			}
			name := p.FormName()
			if p.FileName() != "" {
				m := indexedName.FindStringSubmatch(name)
				if m == nil || m[1] != "client_files" {
					continue
				}
				i, _ := strconv.Atoi(m[2])
				files = append(files, indexed{i, clientFile{name: baseName(p.FileName()), data: data}})
				continue
			}
			b.form[name] = append(b.form[name], string(data))
		}
		sort.SliceStable(files, func(i, j int) bool { return files[i].i < files[j].i })
		for _, f := range files {
			b.files = append(b.files, f.f)
		}
		return b, true
	default:
		c.detail(http.StatusUnsupportedMediaType, "Unsupported media type \""+ct+"\" in request.")
		return b, false
	}
}

// baseName keeps the base name of a multipart filename; the SDK sends full
// paths, possibly Windows ones.
func baseName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	return path.Base(name)
}

// formList collects a DRF list field from a form: name[0], name[1], ...
func formList(form map[string][]string, name string) ([]string, bool) {
	type iv struct {
		i int
		v string
	}
	var items []iv
	for k, vs := range form {
		m := indexedName.FindStringSubmatch(k)
		if m == nil || m[1] != name {
			continue
		}
		i, _ := strconv.Atoi(m[2])
		items = append(items, iv{i, vs[0]})
	}
	if len(items) == 0 {
		return nil, false
	}
	sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, true
}

// parseParams validates the DataRequest fields (API.md §5.4). It returns DRF
// errors as a field map.
func parseParams(b dataBody) (dataParams, obj) {
	p := dataParams{sortingMethod: "lexicographical", frameStep: 1}
	var errs obj
	fail := func(field, msg string) { errs = append(errs, kv{field, []string{msg}}) }
	// scalar returns the field as text plus whether it is JSON null.
	scalar := func(name string) (string, bool, bool) {
		if b.json != nil {
			raw, ok := b.json[name]
			if !ok {
				return "", false, false
			}
			if string(raw) == "null" {
				return "", true, true
			}
			var str string
			if json.Unmarshal(raw, &str) == nil {
				return str, false, true
			}
			return string(raw), false, true
		}
		vs, ok := b.form[name]
		if !ok || len(vs) == 0 {
			return "", false, false
		}
		return vs[0], false, true
	}
	intField := func(name string, lo, hi int, nullable bool) *int {
		v, isNull, ok := scalar(name)
		if !ok || (isNull && nullable) {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case isNull:
			fail(name, "This field may not be null.")
		case err != nil:
			fail(name, "A valid integer is required.")
		case n < lo:
			fail(name, "Ensure this value is greater than or equal to "+itoa(lo)+".")
		case n > hi:
			fail(name, "Ensure this value is less than or equal to "+itoa(hi)+".")
		default:
			return &n
		}
		return nil
	}
	boolField := func(name string) bool {
		v, _, ok := scalar(name)
		if !ok {
			return false
		}
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on":
			return true
		case "false", "0", "no", "off", "":
			return false
		}
		fail(name, "Must be a valid boolean.")
		return false
	}
	listField := func(name string) []string {
		if b.json != nil {
			raw, ok := b.json[name]
			if !ok {
				return nil
			}
			var l []string
			if err := json.Unmarshal(raw, &l); err != nil {
				fail(name, "Expected a list of items but got type \""+jsonType(raw)+"\".")
			}
			return l
		}
		l, _ := formList(b.form, name)
		return l
	}
	const maxInt = 2147483647
	p.imageQuality = intField("image_quality", 1, 100, false)
	p.chunkSize = intField("chunk_size", 0, maxInt, true)
	p.startFrame = intField("start_frame", 0, maxInt, false)
	p.stopFrame = intField("stop_frame", 0, maxInt, false)
	if v, _, ok := scalar("frame_filter"); ok && v != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "step="))
		if !strings.HasPrefix(v, "step=") || err != nil || n < 1 {
			fail("frame_filter", "Invalid frame filter expression")
		} else {
			p.frameStep = n
		}
	}
	p.useCache = boolField("use_cache")
	boolField("copy_data")
	boolField("use_zip_chunks")
	if v, _, ok := scalar("sorting_method"); ok {
		switch v {
		case "lexicographical", "natural", "predefined", "random":
			p.sortingMethod = v
		default:
			fail("sorting_method", "\""+v+"\" is not a valid choice.")
		}
	}
	if v, _, ok := scalar("storage_method"); ok && v != "cache" && v != "file_system" {
		fail("storage_method", "\""+v+"\" is not a valid choice.")
	}
	p.serverFiles = listField("server_files")
	p.remoteFiles = listField("remote_files")
	for _, u := range p.remoteFiles {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			fail("remote_files", "Enter a valid URL.")
			break
		}
	}
	p.uploadFileOrder = listField("upload_file_order")
	if raw, ok := b.json["job_file_mapping"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p.jobFileMapping); err != nil {
			fail("job_file_mapping", "Expected a list of lists of file names.")
		} else {
			seen := map[string]bool{}
			for _, l := range p.jobFileMapping {
				for _, n := range l {
					if seen[n] {
						fail("job_file_mapping", "Same file cannot be used twice: '"+n+"'")
					}
					seen[n] = true
				}
			}
		}
	}
	if raw, ok := b.json["validation_params"]; ok && string(raw) != "null" {
		var v struct {
			Mode       string   `json:"mode"`
			FrameCount *int     `json:"frame_count"`
			FrameShare *float64 `json:"frame_share"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || (v.Mode != "gt" && v.Mode != "gt_pool") {
			fail("validation_params", "Invalid validation parameters")
		} else {
			vp := &validationParams{mode: v.Mode}
			if v.FrameCount != nil {
				vp.frameCount = *v.FrameCount
			}
			if v.FrameShare != nil {
				vp.frameShare = *v.FrameShare
			}
			p.validation = vp
		}
	}
	if len(errs) == 0 && p.startFrame != nil && p.stopFrame != nil && *p.startFrame > *p.stopFrame {
		fail("non_field_errors", "Stop frame must be more or equal start frame")
	}
	return p, errs
}

func jsonType(raw json.RawMessage) string {
	t := strings.TrimSpace(string(raw))
	switch {
	case strings.HasPrefix(t, "{"):
		return "dict"
	case strings.HasPrefix(t, "\""):
		return "str"
	case t == "true" || t == "false":
		return "bool"
	}
	return "int"
}

// uploadFinish is Upload-Finish and the single-request form: store the
// parameters, attach the files, then enqueue or answer 409 (API.md §5.5).
func (s *Server) uploadFinish(c *call, t *task) {
	body, ok := c.parseDataBody()
	if !ok {
		return
	}
	params, errs := parseParams(body)
	if len(errs) > 0 {
		c.badRequest(errs)
		return
	}
	rqID := rqIDFor(t.id)
	now := s.now()
	s.mu.Lock()
	if t.deleted {
		s.mu.Unlock()
		c.notFound("Task")
		return
	}
	if t.initialized {
		s.mu.Unlock()
		c.badRequest([]string{"Adding more data is not supported"})
		return
	}
	if !s.addFilesLocked(t, body.files) {
		s.mu.Unlock()
		c.serverError()
		return
	}
	s.taskUpdatedLocked(t, c, obj{}, obj{})
	if old := s.liveRequestLocked(rqID); old != nil && (old.status == stQueued || old.status == stStarted) {
		s.mu.Unlock()
		c.json(http.StatusConflict, obj{{"rq_id", rqID}})
		return
	}
	// A finished or failed request is deleted and re-queued under the same id.
	s.reqSeq++
	rq := &request{id: rqID, task: t, ref: refOf(t), owner: c.user, status: stQueued, created: now, params: params, seq: s.reqSeq}
	s.requests[rqID] = rq
	if s.reqSeq%requestSweepEvery == 0 {
		s.sweepRequestsLocked()
	}
	tl := s.tls[t.id]
	if tl == nil || tl.closed {
		tl = &timeline{done: make(chan struct{})}
		s.tls[t.id] = tl
	}
	tl.enqueued = now
	if s.opts.WhatIf.PreallocJobs {
		if ids := s.preallocJobsLocked(t, params, now); ids != nil {
			tl.visible, tl.jobIDs = now, ids // the what-if's point: the IDs are listed from here on
		}
	}
	s.queue = append(s.queue, rq)
	s.queueCond.Broadcast()
	s.unlockAndNotify(rqID, stQueued)
	c.post += s.prof.UploadPerFile * timeMul(len(body.files))
	c.json(http.StatusAccepted, obj{{"rq_id", rqID}})
}

// setTUSHeaders adds the TUS protocol and CORS headers of CVAT's TUS answers.
func setTUSHeaders(h http.Header) {
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Tus-Version", "1.0.0")
	h["Tus-Extension"] = []string{""}
	h.Set("Tus-Max-Size", strconv.FormatInt(tusMaxSize, 10))
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "PATCH,HEAD,GET,POST,OPTIONS")
	h.Set("Access-Control-Expose-Headers", "Tus-Resumable,upload-length,upload-metadata,Location,Upload-Offset")
	h.Set("Access-Control-Allow-Headers", "Tus-Resumable,upload-length,upload-metadata,Location,Upload-Offset,content-type")
}

// tusCreate starts a TUS upload (API.md §5.3).
func (s *Server) tusCreate(c *call, t *task) {
	setTUSHeaders(c.w.Header())
	length, err := strconv.ParseInt(strings.TrimSpace(c.r.Header.Get("Upload-Length")), 10, 64)
	if err != nil || length < 0 {
		c.json(http.StatusBadRequest, "Invalid Upload-Length header")
		return
	}
	if length > tusMaxSize {
		c.json(http.StatusRequestEntityTooLarge, "File size exceeds max limit of "+strconv.FormatInt(tusMaxSize, 10)+" bytes")
		return
	}
	meta := map[string]string{}
	for _, pair := range strings.Split(c.r.Header.Get("Upload-Metadata"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), " ")
		if k == "" {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		meta[k] = string(dec)
	}
	name, ok := meta["filename"]
	if !ok || name == "" {
		c.json(http.StatusBadRequest, "Metadata is expected to contain 'filename' key")
		return
	}
	name = baseName(name)
	s.mu.Lock()
	for _, f := range t.files {
		if f.name == name {
			s.mu.Unlock()
			c.json(http.StatusConflict, "File with same name already exists")
			return
		}
	}
	for _, u := range t.tus {
		if u.name == name {
			s.mu.Unlock()
			c.json(http.StatusConflict, "File with same name already exists")
			return
		}
	}
	up := &tusUpload{id: itoa(c.user.id) + "_" + uuid4(), name: name, length: length, owner: c.user.id}
	if length == 0 {
		s.addFilesLocked(t, []clientFile{{name: name}})
	} else {
		t.tus[up.id] = up
	}
	s.mu.Unlock()
	c.w.Header().Set("Location", c.base()+"/api/tasks/"+itoa(t.id)+"/data/"+up.id)
	c.w.Header().Set("Upload-Filename", name)
	c.empty(http.StatusCreated)
}

// tusLookup finds the task and the upload of a TUS URL; ok false means the
// answer was sent.
func (s *Server) tusLookup(c *call) (*task, *tusUpload, bool) {
	setTUSHeaders(c.w.Header())
	id, ok := c.pathID(0, "Task")
	if !ok {
		return nil, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.lookupTaskLocked(c, id)
	if !ok {
		c.notFound("Task")
		return nil, nil, false
	}
	up := t.tus[c.args[1]]
	if up == nil {
		c.empty(http.StatusNotFound)
		return nil, nil, false
	}
	if up.owner != c.user.id {
		c.empty(http.StatusForbidden)
		return nil, nil, false
	}
	return t, up, true
}

// handleTUSPatch appends a chunk to a TUS upload (API.md §5.3).
func (s *Server) handleTUSPatch(c *call) {
	t, up, ok := s.tusLookup(c)
	if !ok {
		return
	}
	if ct := c.r.Header.Get("Content-Type"); ct != "" && ct != "application/offset+octet-stream" {
		c.empty(http.StatusUnsupportedMediaType)
		return
	}
	off, err := strconv.ParseInt(strings.TrimSpace(c.r.Header.Get("Upload-Offset")), 10, 64)
	s.mu.Lock()
	cur := int64(len(up.data))
	switch {
	case err != nil || off != cur:
		s.mu.Unlock()
		c.empty(http.StatusConflict)
		return
	case off+int64(len(c.body)) > up.length:
		s.mu.Unlock()
		c.empty(http.StatusRequestEntityTooLarge)
		return
	}
	up.data = append(up.data, c.body...)
	newOff := int64(len(up.data))
	if newOff == up.length {
		delete(t.tus, up.id)
		s.addFilesLocked(t, []clientFile{{name: up.name, data: up.data}})
	}
	s.mu.Unlock()
	c.w.Header().Set("Upload-Offset", strconv.FormatInt(newOff, 10))
	c.empty(http.StatusNoContent)
}

// handleTUSHead reports the offset of a TUS upload.
func (s *Server) handleTUSHead(c *call) {
	_, up, ok := s.tusLookup(c)
	if !ok {
		return
	}
	s.mu.Lock()
	off := len(up.data)
	s.mu.Unlock()
	c.w.Header().Set("Upload-Offset", itoa(off))
	c.w.Header().Set("Upload-Length", strconv.FormatInt(up.length, 10))
	c.empty(http.StatusOK)
}
