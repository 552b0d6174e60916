package cvat

import "time"

// This file holds the wire types of the CVAT 2.73 REST API that cvatbench
// uses. Field names and JSON tags follow ../shared/cvat/schema.yml; only the
// fields cvatbench reads are kept, unknown fields are ignored when decoding.

// About is the answer of GET /api/server/about.
type About struct {
	Name        string `json:"name"`
	Subtitle    string `json:"subtitle,omitempty"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
	LogoURL     string `json:"logo_url,omitempty"`
}

// User is the answer of GET /api/users/self.
type User struct {
	ID          int    `json:"id"`
	Username    string `json:"username"`
	Email       string `json:"email,omitempty"`
	IsStaff     bool   `json:"is_staff,omitempty"`
	IsSuperuser bool   `json:"is_superuser,omitempty"`
}

// BasicUser is the short user object embedded in other objects.
type BasicUser struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
}

// Label is a task or project label as sent on creation.
type Label struct {
	Name string `json:"name"`
}

// TaskSpec is the body of POST /api/tasks (schema TaskWriteRequest).
type TaskSpec struct {
	Name              string  `json:"name"`
	Labels            []Label `json:"labels,omitempty"`
	ProjectID         *int    `json:"project_id,omitempty"`
	SegmentSize       int     `json:"segment_size,omitempty"`
	Overlap           *int    `json:"overlap,omitempty"`
	ConsensusReplicas int     `json:"consensus_replicas,omitempty"`
}

// JobsSummary is TaskRead.jobs.
type JobsSummary struct {
	Count      int    `json:"count"`
	Completed  int    `json:"completed"`
	Validation int    `json:"validation"`
	URL        string `json:"url,omitempty"`
}

// Task is schema TaskRead. Pointer fields are absent or null in some task
// states (API.md §4.2).
type Task struct {
	URL            string      `json:"url,omitempty"`
	ID             int         `json:"id"`
	Name           string      `json:"name"`
	ProjectID      *int        `json:"project_id"`
	Owner          *BasicUser  `json:"owner"`
	CreatedDate    time.Time   `json:"created_date"`
	UpdatedDate    time.Time   `json:"updated_date"`
	Overlap        *int        `json:"overlap"`
	SegmentSize    int         `json:"segment_size"`
	Status         string      `json:"status"`
	DataChunkSize  *int        `json:"data_chunk_size,omitempty"`
	Size           *int        `json:"size,omitempty"`
	ImageQuality   *int        `json:"image_quality,omitempty"`
	Data           *int        `json:"data"`
	Dimension      string      `json:"dimension"`
	Mode           string      `json:"mode"`
	MediaType      string      `json:"media_type"`
	OrganizationID *int        `json:"organization_id"`
	Jobs           JobsSummary `json:"jobs"`
}

// Initialized reports whether the server considers the task initialized
// (Task.is_initialized in CVAT: media_type is not empty).
func (t Task) Initialized() bool { return t.MediaType != "" }

// ProjectSpec is the body of POST /api/projects.
type ProjectSpec struct {
	Name   string  `json:"name"`
	Labels []Label `json:"labels,omitempty"`
}

// Project is schema ProjectRead.
type Project struct {
	URL          string     `json:"url,omitempty"`
	ID           int        `json:"id"`
	Name         string     `json:"name"`
	Owner        *BasicUser `json:"owner"`
	CreatedDate  time.Time  `json:"created_date"`
	UpdatedDate  time.Time  `json:"updated_date"`
	Organization *int       `json:"organization"`
}

// DataSpec holds the DataRequest parameters sent with the data upload
// (API.md §5.4). Files travel separately.
type DataSpec struct {
	ImageQuality  int    `json:"image_quality"`
	ChunkSize     *int   `json:"chunk_size,omitempty"`
	UseCache      *bool  `json:"use_cache,omitempty"`
	SortingMethod string `json:"sorting_method,omitempty"`
}

// File is one client file to upload.
type File struct {
	Name string // base name sent as the multipart filename
	Data []byte
}

// UploadMode selects one of the three ways to attach client files (API.md §5.2).
type UploadMode int

const (
	// UploadSingle is one multipart POST without Upload-* headers.
	UploadSingle UploadMode = iota
	// UploadSDK is the SDK's Upload-Start, Upload-Multiple batches, Upload-Finish.
	UploadSDK
	// UploadTUS sends every file through TUS between Upload-Start and Upload-Finish.
	UploadTUS
)

// RequestOperation is schema RequestDataOperation.
type RequestOperation struct {
	Type      string `json:"type"`
	Target    string `json:"target"`
	ProjectID *int   `json:"project_id"`
	TaskID    *int   `json:"task_id"`
	JobID     *int   `json:"job_id"`
	OrgID     *int   `json:"org_id"`
}

// Request statuses (API.md §6.1).
const (
	StatusQueued   = "queued"
	StatusStarted  = "started"
	StatusFinished = "finished"
	StatusFailed   = "failed"
)

// Request is schema Request: a background request such as a task creation.
type Request struct {
	ID           string           `json:"id"`
	Status       string           `json:"status"`
	Message      string           `json:"message"`
	Operation    RequestOperation `json:"operation"`
	Progress     *float64         `json:"progress"`
	CreatedDate  time.Time        `json:"created_date"`
	StartedDate  *time.Time       `json:"started_date"`
	FinishedDate *time.Time       `json:"finished_date"`
	ExpiryDate   *time.Time       `json:"expiry_date"`
	Owner        *BasicUser       `json:"owner"`
}

// RequestFilter selects requests in GET /api/requests (only the caller's own).
type RequestFilter struct {
	Action    string // e.g. "create"
	Target    string // e.g. "task"
	TaskID    int    // 0: any
	ProjectID int    // 0: any
	Status    string // "": any
}

// IssuesSummary is JobRead.issues.
type IssuesSummary struct {
	URL   string `json:"url,omitempty"`
	Count int    `json:"count"`
}

// Job is schema JobRead.
type Job struct {
	URL         string    `json:"url,omitempty"`
	ID          int       `json:"id"`
	TaskID      int       `json:"task_id"`
	ProjectID   *int      `json:"project_id"`
	Type        string    `json:"type"`
	Stage       string    `json:"stage"`
	State       string    `json:"state"`
	Status      string    `json:"status"`
	StartFrame  int       `json:"start_frame"`
	StopFrame   int       `json:"stop_frame"`
	FrameCount  int       `json:"frame_count"`
	ParentJobID *int      `json:"parent_job_id"`
	CreatedDate time.Time `json:"created_date"`
	// DataChunkSize is null in create:job webhook payloads (API.md §8.4).
	DataChunkSize *int `json:"data_chunk_size"`
}

// PageSizeAll asks for every item in one page (page_size=all).
const PageSizeAll = -1

// JobsQuery is the query of GET /api/jobs.
type JobsQuery struct {
	TaskID    int    // task_id filter; 0: none
	ProjectID int    // project_id filter; 0: none
	Page      int    // 1-based; 0: not sent
	PageSize  int    // 0: server default (10); PageSizeAll: "all"
	Sort      string // e.g. "id"; "": server default (-id)
	Type      string // e.g. "annotation"; "": any
}

// JobPage is one page of GET /api/jobs (schema PaginatedJobReadList).
type JobPage struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []Job   `json:"results"`
}

// WebhookSpec is the body of POST /api/webhooks (schema WebhookWriteRequest).
// Secret is write-only: the server never returns it.
type WebhookSpec struct {
	TargetURL   string   `json:"target_url"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type"` // "project" or "organization"
	ContentType string   `json:"content_type,omitempty"`
	Secret      string   `json:"secret,omitempty"`
	IsActive    *bool    `json:"is_active,omitempty"`
	EnableSSL   *bool    `json:"enable_ssl,omitempty"`
	ProjectID   *int     `json:"project_id,omitempty"`
	Events      []string `json:"events"`
}

// Webhook is schema WebhookRead.
type Webhook struct {
	ID               int        `json:"id"`
	URL              string     `json:"url,omitempty"`
	TargetURL        string     `json:"target_url"`
	Description      string     `json:"description"`
	Type             string     `json:"type"`
	ContentType      string     `json:"content_type"`
	IsActive         bool       `json:"is_active"`
	EnableSSL        bool       `json:"enable_ssl"`
	CreatedDate      time.Time  `json:"created_date"`
	ProjectID        *int       `json:"project_id"`
	Organization     *int       `json:"organization"`
	Events           []string   `json:"events"`
	LastStatus       *int       `json:"last_status,omitempty"`
	LastDeliveryDate *time.Time `json:"last_delivery_date,omitempty"`
}

// WebhookDelivery is schema WebhookDeliveryRead.
type WebhookDelivery struct {
	ID              int       `json:"id"`
	WebhookID       int       `json:"webhook_id"`
	Event           string    `json:"event"`
	StatusCode      *int      `json:"status_code"`
	Redelivery      bool      `json:"redelivery"`
	Attempt         int       `json:"attempt"`
	RequestDuration *int      `json:"request_duration"`
	CreatedDate     time.Time `json:"created_date"`
}
