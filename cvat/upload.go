package cvat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
)

// UploadData attaches files to a task (POST /api/tasks/{id}/data/) in the given form (API.md §5.2) and returns
// the rq_id of the creation request from the 202 answer, without waiting for processing.
//
//   - UploadSingle: one multipart POST with the DataSpec fields and client_files[i].
//   - UploadSDK: Upload-Start, Upload-Multiple batches of at most 100 MiB (files above that go through TUS,
//     as the SDK does), Upload-Finish with the DataSpec as JSON.
//   - UploadTUS: Upload-Start, every file through TUS in 10 MiB PATCHes, Upload-Finish.
//
// A 409 (a creation request for the task is still queued or running) is an *APIError whose RqID method
// returns the existing request id.
func (c *Client) UploadData(ctx context.Context, taskID int, spec DataSpec, files []File, mode UploadMode) (rqID string, err error) {
	if err := checkFiles(files); err != nil {
		return "", fmt.Errorf("upload data to task %d: %w", taskID, err)
	}
	switch mode {
	case UploadSingle:
		rqID, err = c.uploadSingle(ctx, taskID, spec, files)
	case UploadSDK, UploadTUS:
		rqID, err = c.uploadSteps(ctx, taskID, spec, files, mode == UploadTUS)
	default:
		err = fmt.Errorf("unknown upload mode %d", mode)
	}
	if err != nil {
		return "", fmt.Errorf("upload data to task %d: %w", taskID, err)
	}
	return rqID, nil
}

// checkFiles rejects what CVAT would silently get wrong: a repeated name is appended to the earlier file.
func checkFiles(files []File) error {
	if len(files) == 0 {
		return errors.New("no files")
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		switch {
		case f.Name == "":
			return errors.New("a file has no name")
		case seen[f.Name]:
			return fmt.Errorf("file name %q is used twice", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

const dataEndpoint = "/api/tasks/{id}/data"

// dataRequest is a POST to the data action, with the SDK's trailing slash.
func dataRequest(taskID int, marker string) request {
	r := request{method: http.MethodPost, endpoint: dataEndpoint, path: "/api/tasks/" + itoa(taskID) + "/data/"}
	if marker != "" {
		r.header = http.Header{marker: {""}} // only the presence of the header counts (API.md §5.1)
	}
	return r
}

func (c *Client) uploadSingle(ctx context.Context, taskID int, spec DataSpec, files []File) (string, error) {
	r := dataRequest(taskID, "")
	r.want = http.StatusAccepted
	if err := setMultipart(&r, specFields(spec), files); err != nil {
		return "", err
	}
	return c.finishUpload(ctx, taskID, r)
}

func (c *Client) uploadSteps(ctx context.Context, taskID int, spec DataSpec, files []File, allTUS bool) (string, error) {
	start := dataRequest(taskID, "Upload-Start")
	start.ctype, start.want = contentTypeJSON, http.StatusAccepted // the SDK's JSON type without a body
	start.resend = resendAsIs                                      // Upload-Start does nothing on the server (UploadMixin.upload_started)
	if _, err := c.do(ctx, start); err != nil {
		return "", fmt.Errorf("upload start: %w", err)
	}
	var batch []File
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		r := dataRequest(taskID, "Upload-Multiple")
		r.want, r.resend = http.StatusOK, resendAsIs
		quality := [][2]string{{"image_quality", itoa(spec.ImageQuality)}}
		if err := setMultipart(&r, quality, batch); err != nil {
			return err
		}
		if _, err := c.do(ctx, r); err != nil {
			return fmt.Errorf("upload batch of %d files: %w", len(batch), err)
		}
		batch, size = nil, 0
		return nil
	}
	for _, f := range files {
		if allTUS || len(f.Data) > c.batchLimit {
			if err := c.tus(ctx, taskID, f); err != nil {
				return "", err
			}
			continue
		}
		if size+len(f.Data) > c.batchLimit {
			if err := flush(); err != nil {
				return "", err
			}
		}
		batch, size = append(batch, f), size+len(f.Data)
	}
	if err := flush(); err != nil {
		return "", err
	}

	finish := dataRequest(taskID, "Upload-Finish")
	finish.want = http.StatusAccepted
	body := struct {
		DataSpec
		UploadFileOrder []string `json:"upload_file_order,omitempty"`
	}{DataSpec: spec}
	if spec.SortingMethod == "predefined" { // what the SDK adds so the server keeps the given order
		for _, f := range files {
			body.UploadFileOrder = append(body.UploadFileOrder, f.Name)
		}
	}
	finish, err := finish.withJSON(body)
	if err != nil {
		return "", err
	}
	return c.finishUpload(ctx, taskID, finish)
}

// Why resending upload steps is safe (CVAT 2.73, measured on a real 2.73.0 and read in its code):
//   - Upload-Start does nothing but answer 202.
//   - An Upload-Multiple batch is recorded with one insert under a unique (data, file) constraint before any
//     byte is written, so a batch repeated after a lost answer fails whole with a 500 and changes nothing;
//     the call then fails rather than storing a file twice.
//   - The finishing step creates the creation request. Before a resend the task's creation requests are
//     listed: one that exists was made by the lost attempt and is adopted. A resend that still meets the
//     first attempt's effect is answered 409 with the request id (queued), or 400 "Adding more data is not
//     supported" or a 500 (the worker already took it); the listing then finds the request to adopt.
//
// resendAsIs is the resend hook of steps that need no check.
func resendAsIs(context.Context) *response { return nil }

// finishUpload sends the step that creates the creation request (Upload-Finish, or the single-request form)
// and returns its rq_id, resending after a transient failure as described above.
func (c *Client) finishUpload(ctx context.Context, taskID int, r request) (string, error) {
	resent := false
	r.resend = func(ctx context.Context) *response {
		resent = true
		if id, ok := c.creationRequestID(ctx, taskID); ok {
			return &response{status: http.StatusAccepted, body: []byte(`{"rq_id":` + strconv.Quote(id) + `}`)}
		}
		return nil
	}
	id, err := c.rqID(ctx, r)
	if err == nil {
		return id, nil
	}
	var apiErr *APIError
	if resent && errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && apiErr.RqID() != "" {
		return apiErr.RqID(), nil
	}
	if resent && errors.As(err, &apiErr) && (apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusInternalServerError) {
		if id, ok := c.creationRequestID(ctx, taskID); ok {
			return id, nil
		}
	}
	return "", err
}

// creationRequestID finds the creation request of a task among the caller's requests (API.md §6.2). A failed
// listing counts as none: the resend that follows is safe on its own.
func (c *Client) creationRequestID(ctx context.Context, taskID int) (string, bool) {
	rs, err := c.ListRequests(ctx, RequestFilter{Action: "create", Target: "task", TaskID: taskID})
	if err != nil {
		return "", false
	}
	for _, rq := range rs {
		if rq.Operation.TaskID != nil && *rq.Operation.TaskID == taskID && rq.ID != "" {
			return rq.ID, true
		}
	}
	return "", false
}

// rqID sends r and reads {"rq_id"} from the answer.
func (c *Client) rqID(ctx context.Context, r request) (string, error) {
	var out struct {
		RqID string `json:"rq_id"`
	}
	if err := c.decode(ctx, r, &out); err != nil {
		return "", err
	}
	if out.RqID == "" {
		return "", fmt.Errorf("%s %s: no rq_id in the response", r.method, r.endpoint)
	}
	return out.RqID, nil
}

// tus uploads one file: a create call, then PATCHes to the returned Location, checking the server's offset
// after each (API.md §5.3).
func (c *Client) tus(ctx context.Context, taskID int, f File) error {
	create := dataRequest(taskID, "")
	create.want = http.StatusCreated
	create.header = http.Header{
		"Tus-Resumable":   {tusResumable},
		"Upload-Length":   {itoa(len(f.Data))},
		"Upload-Metadata": {"filename " + base64.StdEncoding.EncodeToString([]byte(f.Name))},
	}
	resp, err := c.do(ctx, create)
	if err != nil {
		return fmt.Errorf("tus create %q: %w", f.Name, err)
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return fmt.Errorf("tus create %q: no Location header", f.Name)
	}
	u, err := c.sameOrigin(loc, "")
	if err != nil {
		return fmt.Errorf("tus create %q: %w", f.Name, err)
	}
	for off := 0; off < len(f.Data); {
		end := min(off+c.tusChunk, len(f.Data))
		r := request{method: http.MethodPatch, endpoint: dataEndpoint + "/{file_id}", abs: u,
			ctype: contentTypeTUSPayload, want: http.StatusNoContent,
			header: http.Header{"Tus-Resumable": {tusResumable}, "Upload-Offset": {itoa(off)}}}
		r.body, r.size = bytesBody(f.Data[off:end])
		resp, err := c.do(ctx, r)
		if err != nil {
			return fmt.Errorf("tus patch %q at offset %d: %w", f.Name, off, err)
		}
		got, err := strconv.Atoi(resp.header.Get("Upload-Offset"))
		if err != nil || got != end {
			return fmt.Errorf("tus patch %q: server offset %q, want %d", f.Name, resp.header.Get("Upload-Offset"), end)
		}
		off = end
	}
	return nil
}

// specFields are the DataSpec fields as multipart form fields.
func specFields(s DataSpec) [][2]string {
	f := [][2]string{{"image_quality", itoa(s.ImageQuality)}}
	if s.ChunkSize != nil {
		f = append(f, [2]string{"chunk_size", itoa(*s.ChunkSize)})
	}
	if s.UseCache != nil {
		f = append(f, [2]string{"use_cache", strconv.FormatBool(*s.UseCache)})
	}
	if s.SortingMethod != "" {
		f = append(f, [2]string{"sorting_method", s.SortingMethod})
	}
	return f
}

// setMultipart makes r a multipart/form-data POST with fields and files as client_files[i] (indexed names:
// DRF ignores repeated plain names, API.md §5.2). File contents are referenced, not copied.
func setMultipart(r *request, fields [][2]string, files []File) error {
	var s segments
	mw := multipart.NewWriter(&s)
	for _, kv := range fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for i, f := range files {
		if _, err := mw.CreateFormFile("client_files["+itoa(i)+"]", f.Name); err != nil {
			return err
		}
		s.ref(f.Data) // what the part writer would do, minus the copy
	}
	if err := mw.Close(); err != nil {
		return err
	}
	r.ctype = mw.FormDataContentType()
	r.size = s.size
	r.body = func() io.Reader {
		b := append(net.Buffers(nil), s.bufs...) // Read consumes the slice: give each attempt its own
		return &b
	}
	return nil
}

// segments is an io.Writer that copies small writes (multipart headers) and references big ones (file data).
type segments struct {
	bufs  net.Buffers
	owned bool // the last buffer is ours to append to
	size  int64
}

func (s *segments) Write(p []byte) (int, error) {
	if s.owned {
		s.bufs[len(s.bufs)-1] = append(s.bufs[len(s.bufs)-1], p...)
	} else {
		s.bufs = append(s.bufs, append([]byte(nil), p...))
		s.owned = true
	}
	s.size += int64(len(p))
	return len(p), nil
}

func (s *segments) ref(p []byte) {
	s.bufs = append(s.bufs, p)
	s.owned = false
	s.size += int64(len(p))
}
