package cvat_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cvatbench/cvatbench/cvat"
)

const rqID = "action=create&target=task&target_id=7"

// dataServer fakes POST /api/tasks/7/data/ in all its forms (API.md §5.1) and TUS PATCHes, logging one line
// per request and keeping the received files.
type dataServer struct {
	t          *testing.T
	mu         sync.Mutex
	log        []string
	files      map[string][]byte // complete uploads by name
	tus        map[string]string // upload id -> file name
	tusLen     map[string]int
	badOffset  bool // answer PATCHes with a wrong Upload-Offset
	finishCode int  // status of Upload-Finish; 0: 202
}

func newDataServer(t *testing.T) *dataServer {
	return &dataServer{t: t, files: map[string][]byte{}, tus: map[string]string{}, tusLen: map[string]int{}}
}

func (s *dataServer) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *dataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, start := r.Header["Upload-Start"]
	_, multiple := r.Header["Upload-Multiple"]
	_, finish := r.Header["Upload-Finish"]
	switch {
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/tasks/7/data/"):
		s.patch(w, r)
	case r.Method != http.MethodPost || r.URL.Path != "/api/tasks/7/data/":
		s.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		writeJSON(w, 404, `{"detail":"Not found."}`)
	case finish:
		b, _ := io.ReadAll(r.Body)
		s.logf("finish %s %s", r.Header.Get("Content-Type"), b)
		if s.finishCode == http.StatusConflict {
			writeJSON(w, 409, `{"rq_id":"`+rqID+`"}`)
			return
		}
		writeJSON(w, 202, `{"rq_id":"`+rqID+`"}`)
	case start:
		b, _ := io.ReadAll(r.Body)
		s.logf("start %s body=%d", r.Header.Get("Content-Type"), len(b))
		w.WriteHeader(202)
	case r.Header.Get("Upload-Length") != "":
		meta := strings.Fields(r.Header.Get("Upload-Metadata"))
		name, _ := base64.StdEncoding.DecodeString(meta[1])
		id := fmt.Sprintf("1_%d", len(s.tus))
		s.tus[id], s.tusLen[id] = string(name), len(s.files[string(name)])
		n, _ := strconv.Atoi(r.Header.Get("Upload-Length"))
		s.tusLen[id] = n
		s.files[string(name)] = []byte{}
		s.logf("tus-create %s %d %s", name, n, r.Header.Get("Tus-Resumable"))
		w.Header().Set("Location", "http://"+r.Host+"/api/tasks/7/data/"+id)
		w.Header().Set("Upload-Filename", string(name))
		w.Header().Set("Tus-Resumable", "1.0.0")
		w.WriteHeader(201)
	case multiple:
		s.logf("multiple %s", s.form(r))
		w.WriteHeader(200)
	default:
		s.logf("single %s", s.form(r))
		writeJSON(w, 202, `{"rq_id":"`+rqID+`"}`)
	}
}

func (s *dataServer) patch(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/tasks/7/data/")
	name, ok := s.tus[id]
	off, err := strconv.Atoi(r.Header.Get("Upload-Offset"))
	if !ok || err != nil || off != len(s.files[name]) || r.Header.Get("Content-Type") != "application/offset+octet-stream" {
		s.t.Errorf("bad PATCH %s offset %q type %q", id, r.Header.Get("Upload-Offset"), r.Header.Get("Content-Type"))
		w.WriteHeader(409)
		return
	}
	b, _ := io.ReadAll(r.Body)
	s.files[name] = append(s.files[name], b...)
	s.logf("patch %s %d+%d", name, off, len(b))
	newOff := len(s.files[name])
	if s.badOffset {
		newOff--
	}
	w.Header().Set("Upload-Offset", strconv.Itoa(newOff))
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(204)
}

// form summarizes a multipart body: fields in order, then files as name:size, and keeps the files.
func (s *dataServer) form(r *http.Request) string {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		s.t.Errorf("content type: %v", err)
		return ""
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.t.Errorf("multipart: %v", err)
			return ""
		}
		b, _ := io.ReadAll(p)
		if p.FileName() != "" {
			s.files[p.FileName()] = b
			parts = append(parts, fmt.Sprintf("%s=%s:%d", p.FormName(), p.FileName(), len(b)))
		} else {
			parts = append(parts, p.FormName()+"="+string(b))
		}
	}
	return strings.Join(parts, " ")
}

func TestUploadData(t *testing.T) {
	files := []cvat.File{
		{Name: "a.jpg", Data: []byte("aaaa")},
		{Name: "b.jpg", Data: []byte("bbbbb")},
		{Name: "c.jpg", Data: []byte("cc")},
		{Name: "big.jpg", Data: bytes.Repeat([]byte("0123456789"), 2)}, // 20 bytes: over the 10-byte batch limit
	}
	chunk, cache := 36, true
	spec := cvat.DataSpec{ImageQuality: 70, ChunkSize: &chunk, UseCache: &cache, SortingMethod: "predefined"}
	finish := `finish application/json {"image_quality":70,"chunk_size":36,"use_cache":true,"sorting_method":"predefined","upload_file_order":["a.jpg","b.jpg","c.jpg","big.jpg"]}`
	tests := []struct {
		name     string
		mode     cvat.UploadMode
		wantLog  []string
		wantEnds []string // Call.Endpoint per attempt
	}{
		{"single", cvat.UploadSingle, []string{
			"single image_quality=70 chunk_size=36 use_cache=true sorting_method=predefined client_files[0]=a.jpg:4 client_files[1]=b.jpg:5 client_files[2]=c.jpg:2 client_files[3]=big.jpg:20",
		}, []string{"POST /api/tasks/{id}/data 202"}},
		{"sdk", cvat.UploadSDK, []string{
			"start application/json body=0",
			"multiple image_quality=70 client_files[0]=a.jpg:4 client_files[1]=b.jpg:5",
			"tus-create big.jpg 20 1.0.0",
			"patch big.jpg 0+8", "patch big.jpg 8+8", "patch big.jpg 16+4",
			"multiple image_quality=70 client_files[0]=c.jpg:2",
			finish,
		}, []string{"POST /api/tasks/{id}/data 202", "POST /api/tasks/{id}/data 200", "POST /api/tasks/{id}/data 201",
			"PATCH /api/tasks/{id}/data/{file_id} 204", "PATCH /api/tasks/{id}/data/{file_id} 204", "PATCH /api/tasks/{id}/data/{file_id} 204",
			"POST /api/tasks/{id}/data 200", "POST /api/tasks/{id}/data 202"}},
		{"tus", cvat.UploadTUS, []string{
			"start application/json body=0",
			"tus-create a.jpg 4 1.0.0", "patch a.jpg 0+4",
			"tus-create b.jpg 5 1.0.0", "patch b.jpg 0+5",
			"tus-create c.jpg 2 1.0.0", "patch c.jpg 0+2",
			"tus-create big.jpg 20 1.0.0", "patch big.jpg 0+8", "patch big.jpg 8+8", "patch big.jpg 16+4",
			finish,
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newDataServer(t)
			var log callLog
			c, _ := newClient(t, srv, true, func(cfg *cvat.Config) { cfg.OnCall = log.add })
			cvat.SetUploadLimits(c, 10, 8)
			got, err := c.UploadData(context.Background(), 7, spec, files, tc.mode)
			if err != nil || got != rqID {
				t.Fatalf("UploadData = %q, %v", got, err)
			}
			if d := cmp.Diff(tc.wantLog, srv.log); d != "" {
				t.Errorf("server log (-want +got):\n%s", d)
			}
			for _, f := range files {
				if !bytes.Equal(srv.files[f.Name], f.Data) {
					t.Errorf("server has %q = %q, want %q", f.Name, srv.files[f.Name], f.Data)
				}
			}
			if tc.wantEnds != nil {
				var ends []string
				for _, c := range log.all() {
					ends = append(ends, fmt.Sprintf("%s %s %d", c.Method, c.Endpoint, c.Status))
				}
				if d := cmp.Diff(tc.wantEnds, ends); d != "" {
					t.Errorf("calls (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestUploadDataErrors(t *testing.T) {
	one := []cvat.File{{Name: "a.jpg", Data: []byte("aaaaaaaaaaaa")}}
	tests := []struct {
		name     string
		files    []cvat.File
		mode     cvat.UploadMode
		prepare  func(*dataServer)
		wantErr  string
		sentinel error
		wantRqID string
		wantLog  int // requests that reached the server
	}{
		{"no files", nil, cvat.UploadSingle, nil, "no files", nil, "", 0},
		{"duplicate names", []cvat.File{{Name: "a.jpg"}, {Name: "a.jpg"}}, cvat.UploadSDK, nil, "used twice", nil, "", 0},
		{"unknown mode", one, cvat.UploadMode(9), nil, "unknown upload mode", nil, "", 0},
		{"tus offset mismatch", one, cvat.UploadTUS, func(s *dataServer) { s.badOffset = true }, "server offset", nil, "", 3},
		{"finish conflict", one, cvat.UploadSDK, func(s *dataServer) { s.finishCode = 409 }, "409", cvat.ErrConflict, rqID, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newDataServer(t)
			if tc.prepare != nil {
				tc.prepare(srv)
			}
			c, _ := newClient(t, srv, false, nil)
			cvat.SetUploadLimits(c, 100, 5)
			_, err := c.UploadData(context.Background(), 7, cvat.DataSpec{ImageQuality: 70}, tc.files, tc.mode)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("err %v is not %v", err, tc.sentinel)
			}
			if e, ok := errors.AsType[*cvat.APIError](err); tc.wantRqID != "" && (!ok || e.RqID() != tc.wantRqID) {
				t.Errorf("rq_id of %v: want %q", err, tc.wantRqID)
			}
			if len(srv.log) != tc.wantLog {
				t.Errorf("server log %q, want %d entries", srv.log, tc.wantLog)
			}
		})
	}
}

// TestUploadFinishBody checks the JSON of Upload-Finish decodes as CVAT's DataRequest fields only.
func TestUploadFinishBody(t *testing.T) {
	srv := newDataServer(t)
	c, _ := newClient(t, srv, false, nil)
	if _, err := c.UploadData(context.Background(), 7, cvat.DataSpec{ImageQuality: 95}, []cvat.File{{Name: "x.png", Data: []byte("x")}}, cvat.UploadSDK); err != nil {
		t.Fatal(err)
	}
	last := srv.log[len(srv.log)-1]
	var body map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(last, "finish application/json ")), &body); err != nil {
		t.Fatalf("%q: %v", last, err)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if d := cmp.Diff([]string{"image_quality"}, keys); d != "" || body["image_quality"] != 95.0 {
		t.Errorf("finish body %v (-want +got keys):\n%s", body, d)
	}
}
