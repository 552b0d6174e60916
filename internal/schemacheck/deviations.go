package schemacheck

// This file is the one place where behaviour that real CVAT 2.73.0 shows but its schema does not describe is
// allowed. Every rule cites /work/shared/cvat/API.md and is as narrow as the documented behaviour: anything
// not listed here is checked against the schema as is.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

var (
	// taskDataNoSlash is the data action without its trailing slash: `url_path=r"data/?$"` accepts both forms,
	// the schema lists only `/api/tasks/{id}/data/` (API.md §1.1).
	taskDataNoSlash = regexp.MustCompile(`^/api/tasks/[^/]+/data$`)
	// taskDataPath is the data action with the slash, where the TUS create call and Upload-* calls go.
	taskDataPath = regexp.MustCompile(`^/api/tasks/[^/]+/data/?$`)
	// tusFilePath is a TUS upload URL from the Location header; the schema has no such path (API.md §5.3).
	tusFilePath = regexp.MustCompile(`^/api/tasks/[0-9]+/data/[^/]+$`)
	// indexedField is a DRF list field in a multipart body, e.g. client_files[0] (API.md §5.2).
	indexedField = regexp.MustCompile(`^([A-Za-z_]+)\[[0-9]+\]$`)
	// requestPath is GET /api/requests/{id}, whose 404 is not JSON (API.md §6.1).
	requestPath = regexp.MustCompile(`^/api/requests/[^/]+$`)
)

// normalizePath routes `/api/tasks/{id}/data` like `/api/tasks/{id}/data/` (API.md §1.1: the web UI and
// cvatbench use the form without a slash, the schema and the SDK the one with).
func normalizePath(u *url.URL) {
	if taskDataNoSlash.MatchString(u.Path) {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
}

// normalizeQuery drops `page_size=all`: CVAT's pagination accepts `all` for "unlimited" while the schema says
// integer (API.md §1.3, CustomPagination). Other values stay and are flagged, except when checking a server
// (lenientPageSize): CVAT answers 0, negative and non-numeric page sizes with the default page of 10, so
// accepting them is correct server behaviour although a client must not send them.
func normalizeQuery(u *url.URL, lenientPageSize bool) {
	q := u.Query()
	vals, ok := q["page_size"]
	if !ok {
		return
	}
	n, err := strconv.Atoi(vals[0])
	valid := len(vals) == 1 && err == nil && n > 0
	if (len(vals) == 1 && vals[0] == "all") || (lenientPageSize && !valid) {
		q.Del("page_size")
		u.RawQuery = q.Encode()
	}
}

// uploadHeaders are the data-action markers where only presence counts (API.md §5.1): the SDK sends them
// empty, the web UI as "true"; the schema types them boolean.
var uploadHeaders = []string{"Upload-Start", "Upload-Finish", "Upload-Multiple"}

// normalizeHeaders gives empty Upload-* markers the value "true" so the boolean check passes.
func normalizeHeaders(h http.Header) {
	for _, name := range uploadHeaders {
		if vals, ok := h[name]; ok && (len(vals) == 0 || vals[0] == "") {
			h[name] = []string{"true"}
		}
	}
}

// isTUSCreate reports whether r is a TUS create (or OPTIONS probe) on the data action (API.md §5.1 table).
func isTUSCreate(r *http.Request) bool {
	if !taskDataPath.MatchString(r.URL.Path) {
		return false
	}
	return r.Method == http.MethodOptions || (r.Method == http.MethodPost && r.Header.Get("Upload-Length") != "")
}

// isTUSFile reports whether r addresses a TUS upload URL (PATCH appends, HEAD probes; API.md §5.3).
func isTUSFile(r *http.Request) bool {
	return (r.Method == http.MethodPatch || r.Method == http.MethodHead) && tusFilePath.MatchString(r.URL.Path)
}

// checkTUSRequest validates TUS requests, which the schema does not describe (API.md §5.3). handled is false
// for every other request.
func checkTUSRequest(r *http.Request) (handled bool, err error) {
	switch {
	case isTUSCreate(r):
		if r.Method == http.MethodOptions {
			return true, nil
		}
		if n, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64); err != nil || n < 0 {
			return true, fmt.Errorf("tus create: Upload-Length %q is not a non-negative integer", r.Header.Get("Upload-Length"))
		}
		if !strings.Contains(r.Header.Get("Upload-Metadata"), "filename ") {
			return true, errors.New("tus create: Upload-Metadata has no filename")
		}
		return true, nil
	case isTUSFile(r):
		if r.Header.Get("Tus-Resumable") == "" {
			return true, errors.New("tus: missing Tus-Resumable")
		}
		if r.Method == http.MethodPatch {
			if ct := r.Header.Get("Content-Type"); ct != "application/offset+octet-stream" {
				return true, fmt.Errorf("tus append: Content-Type %q, want application/offset+octet-stream", ct)
			}
			if _, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64); err != nil {
				return true, fmt.Errorf("tus append: Upload-Offset %q is not an integer", r.Header.Get("Upload-Offset"))
			}
		}
		return true, nil
	}
	return false, nil
}

// checkTUSResponse validates answers to TUS requests (API.md §5.3): 201 with Location and Upload-Filename for
// create, 204 for OPTIONS, 204 with Upload-Offset for PATCH, 200 with Upload-Offset and Upload-Length for
// HEAD; the listed 4xx errors.
func checkTUSResponse(r *http.Request, status int, h http.Header) (handled bool, err error) {
	need := func(names ...string) error {
		for _, n := range names {
			if h.Get(n) == "" {
				return fmt.Errorf("tus: response lacks %s", n)
			}
		}
		return nil
	}
	switch {
	case isTUSCreate(r) && r.Method == http.MethodOptions:
		if status != http.StatusNoContent {
			return true, fmt.Errorf("tus options: status %d, want 204", status)
		}
		return true, nil
	case isTUSCreate(r):
		switch status {
		case http.StatusCreated:
			return true, need("Location", "Upload-Filename", "Tus-Resumable")
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
			return true, nil
		}
		return true, fmt.Errorf("tus create: status %d, want 201, 400, 409 or 413", status)
	case isTUSFile(r) && r.Method == http.MethodPatch:
		switch status {
		case http.StatusNoContent:
			return true, need("Upload-Offset")
		case http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
			return true, nil
		}
		return true, fmt.Errorf("tus append: status %d, want 204, 403, 404, 409 or 413", status)
	case isTUSFile(r):
		switch status {
		case http.StatusOK:
			return true, need("Upload-Offset", "Upload-Length")
		case http.StatusForbidden, http.StatusNotFound:
			return true, nil
		}
		return true, fmt.Errorf("tus probe: status %d, want 200, 403 or 404", status)
	}
	return false, nil
}

// isRouteError reports whether err says the request matched no operation of the schema.
func isRouteError(err error) bool {
	return errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed)
}

// allowedUnrouted handles responses to requests the schema has no operation for: Django's HTML 404 page for
// unknown URLs, trailing slashes included (API.md §1.1, §1.4), and DRF's 405 for a method a view lacks.
func allowedUnrouted(routeErr error, status int, h http.Header, body []byte) (handled bool, err error) {
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound) && status == http.StatusNotFound && isHTML(h):
		return true, nil
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed:
		return true, checkErrorBody(status, h, body, false)
	}
	return false, nil
}

// allowedResponse applies the per-operation deviations and the generic error rule. handled is false when the
// schema alone decides.
func allowedResponse(route *routers.Route, r *http.Request, status int, h http.Header, body []byte) (handled bool, err error) {
	op := route.Operation
	switch {
	case op.OperationID == "requests_retrieve" && status == http.StatusNotFound && isHTML(h):
		// HttpResponseNotFound("There is no request with specified id"), text/html (API.md §6.1).
		if len(body) == 0 {
			return true, errEmptyBody
		}
		return true, nil
	case op.OperationID == "tasks_create_data" && r.Header.Get("Upload-Finish") == "":
		// Upload-Start answers 202 with no body, Upload-Multiple 200 with no body (API.md §5.1, §12);
		// the schema only knows the 202 {"rq_id"} of Upload-Finish.
		want := 0
		switch {
		case r.Header.Get("Upload-Multiple") != "":
			want = http.StatusOK
		case r.Header.Get("Upload-Start") != "":
			want = http.StatusAccepted
		}
		if want != 0 && status == want {
			if len(body) != 0 {
				return true, fmt.Errorf("upload step: body %q, want empty", truncate(body))
			}
			return true, nil
		}
	case (op.OperationID == "jobs_retrieve_data" || op.OperationID == "tasks_retrieve_data") &&
		(status == http.StatusOK || status == http.StatusPartialContent):
		// Chunks are application/zip (image tasks) or video/mp4, frames image/*; the schema declares
		// binary under application/vnd.cvat+json (API.md §7.2).
		if !isMedia(h) {
			return true, fmt.Errorf("data: Content-Type %q, want application/zip, video/mp4 or image/*", h.Get("Content-Type"))
		}
		if len(body) == 0 {
			return true, errEmptyBody
		}
		return true, nil
	case op.OperationID == "tasks_create_data" && status == http.StatusConflict:
		// 409 {"rq_id"} while a creation request for the task is pending (API.md §5.5).
		return true, checkRqIDBody(h, body)
	}
	if status >= 400 && op.Responses.Status(status) == nil {
		return true, checkErrorBody(status, h, body, true)
	}
	return false, nil
}

// errorStatuses are the error statuses Django/DRF produce on any endpoint although the schema documents them
// for almost none (API.md §1.4, §1.2 for 406 and 415, §7.2 for 429, §6.1 for 503). 500 is deliberately
// absent: it is always a bug. So is 405 on a method the schema defines: real CVAT implements it, so a 405
// means the server lacks the endpoint (allowedUnrouted admits 405 for methods the schema lacks).
var errorStatuses = map[int]bool{400: true, 401: true, 403: true, 404: true, 406: true, 409: true, 415: true, 429: true, 503: true}

// djangoServerError is the page Django sends for an unhandled exception with DEBUG off, as a real CVAT
// 2.73.0 sent it (and the emulator copies it).
const djangoServerError = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n" +
	"  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"

// checkErrorBody checks an undocumented error answer against the shapes of API.md §1.4: JSON, with
// {"detail": "..."} for everything but 400 (a list, an object of field errors or a JSON string) and 503
// (a JSON string); 401 also carries WWW-Authenticate (API.md §2.2). routed is false for requests the schema
// has no operation for.
func checkErrorBody(status int, h http.Header, body []byte, routed bool) error {
	if status == http.StatusInternalServerError && isHTML(h) && string(body) == djangoServerError {
		return nil // an unhandled exception, e.g. the IntegrityError of a repeated upload batch
	}
	if !errorStatuses[status] && (routed || status != http.StatusMethodNotAllowed) {
		return fmt.Errorf("status %d is neither documented nor a CVAT error status", status)
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		return errors.New("401 without WWW-Authenticate (CVAT sends `WWW-Authenticate: Token`)")
	}
	if !isJSON(h) {
		return fmt.Errorf("error body has Content-Type %q, want %s", h.Get("Content-Type"), cvatJSON)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error body is not JSON: %w", err)
	}
	switch status {
	case http.StatusBadRequest:
		switch v.(type) {
		case []any, map[string]any, string:
			return nil
		}
		return fmt.Errorf("400 body %q: want a list, an object of field errors or a string", truncate(body))
	case http.StatusServiceUnavailable:
		if _, ok := v.(string); ok {
			return nil
		}
	}
	if m, ok := v.(map[string]any); ok {
		if _, ok := m["detail"].(string); ok {
			return nil
		}
	}
	return fmt.Errorf("%d body %q: want {\"detail\": \"...\"}", status, truncate(body))
}

// checkRqIDBody checks a {"rq_id": "..."} answer.
func checkRqIDBody(h http.Header, body []byte) error {
	if !isJSON(h) {
		return fmt.Errorf("Content-Type %q, want %s", h.Get("Content-Type"), cvatJSON)
	}
	var v struct {
		RqID *string `json:"rq_id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.RqID == nil || *v.RqID == "" {
		return fmt.Errorf("body %q: want {\"rq_id\": \"...\"}", truncate(body))
	}
	return nil
}

// isMultipart reports whether ct is multipart/form-data.
func isMultipart(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "multipart/form-data"
}

// checkMultipart validates a multipart request body: every field name (with DRF's `[i]` index stripped,
// API.md §5.2) must be a property of the operation's form schema, and non-file fields must parse and validate
// as that property. File parts are only counted: their bytes are media, which the schema cannot describe.
func checkMultipart(route *routers.Route, ct string, body []byte) error {
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return errors.New("multipart body on an operation without a request body")
	}
	media := rb.Value.Content.Get("multipart/form-data")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return errors.New("operation does not accept multipart/form-data")
	}
	schema := media.Schema.Value
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("multipart content type: %w", err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	parts := 0
	var errs []error
	for {
		part, err := mr.NextPart()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if parts == 0 && len(body) > 0 {
					return errors.New("multipart body has no parts for the declared boundary")
				}
				break
			}
			return fmt.Errorf("multipart body: %w", err)
		}
		parts++
		name := part.FormName()
		base := name
		if m := indexedField.FindStringSubmatch(name); m != nil {
			base = m[1]
		}
		prop, ok := schema.Properties[base]
		if !ok || prop.Value == nil {
			errs = append(errs, fmt.Errorf("multipart field %q is not in the schema", name))
			continue
		}
		if prop.Value.Type.Is("array") && base == name {
			// DRF ignores repeated plain names for list fields (API.md §5.2): the client must index them.
			errs = append(errs, fmt.Errorf("multipart list field %q must be indexed, e.g. %s[0]", name, name))
			continue
		}
		item := prop
		if prop.Value.Type.Is("array") && prop.Value.Items != nil {
			item = prop.Value.Items
		}
		if item.Value != nil && item.Value.Format == "binary" {
			if part.FileName() == "" {
				errs = append(errs, fmt.Errorf("multipart field %q must be a file part", name))
			}
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(part, 1<<20))
		if err != nil {
			return fmt.Errorf("multipart field %q: %w", name, err)
		}
		val, err := parseFormValue(string(raw), item.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("multipart field %q: %w", name, err))
			continue
		}
		if err := item.Value.VisitJSON(val, openapi3.VisitAsRequest()); err != nil {
			errs = append(errs, fmt.Errorf("multipart field %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// parseFormValue converts a form field to the JSON type its schema wants.
func parseFormValue(s string, schema *openapi3.Schema) (any, error) {
	switch {
	case schema.Type.Is("integer"):
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return float64(n), nil
	case schema.Type.Is("number"):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case schema.Type.Is("boolean"):
		// DRF's BooleanField accepts these spellings in forms.
		switch strings.ToLower(s) {
		case "true", "1", "yes", "on":
			return true, nil
		case "false", "0", "no", "off":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean", s)
	case schema.Type.Is("string") || schema.Type == nil:
		return s, nil
	default:
		// Objects and arrays in a form arrive as JSON text.
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("%q is not JSON: %w", s, err)
		}
		return v, nil
	}
}

// isJSON reports whether h declares a JSON body (CVAT's media type or plain JSON).
func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == cvatJSON || mt == "application/json")
}

// isMedia reports whether h declares a chunk or frame body (API.md §7.2).
func isMedia(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/zip" || mt == "video/mp4" || strings.HasPrefix(mt, "image/"))
}

// isHTML reports whether h declares an HTML body.
func isHTML(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/html"
}

// truncate shortens a body for error messages.
func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
