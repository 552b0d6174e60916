package cvatsim

import "time"

// user is an account of the emulated server.
type user struct {
	id        int
	username  string
	password  string
	email     string
	first     string
	last      string
	superuser bool
	joined    time.Time
	lastLogin time.Time
	tokenKey  string // legacy DRF token from /api/auth/login; "" until the first login
}

// pat is a personal access token (API.md §2.1 row 2).
type pat struct {
	id       int
	name     string
	value    string
	user     *user
	readOnly bool
	created  time.Time
	expiry   *time.Time
}

// session is a Django session created by /api/auth/login.
type session struct {
	user *user
	csrf string
}

// project is a CVAT project; tasks in it inherit its labels and its webhooks.
type project struct {
	id      int
	org     *org // nil: the personal sandbox
	name    string
	owner   *user
	labels  []string
	labelID []int // ids of labels, same order
	created time.Time
	updated time.Time
}

// clientFile is one uploaded file of a task (a ClientFile row).
type clientFile struct {
	name string
	data []byte
}

// tusUpload is an unfinished TUS upload (API.md §5.3).
type tusUpload struct {
	id     string
	name   string
	length int64
	data   []byte
	owner  int
}

// validationParams is the part of DataRequest.validation_params the emulator
// uses: it adds one Ground Truth job.
type validationParams struct {
	mode       string
	frameCount int
	frameShare float64
}

// dataParams are the DataRequest fields stored by Upload-Finish (API.md §5.4).
type dataParams struct {
	imageQuality    *int
	chunkSize       *int
	startFrame      *int
	stopFrame       *int
	frameStep       int
	useCache        bool
	sortingMethod   string
	jobFileMapping  [][]string
	uploadFileOrder []string
	serverFiles     []string
	remoteFiles     []string
	validation      *validationParams
}

// frame is one decoded-header image of an initialized task.
type frame struct {
	name string
	ext  string
	data []byte
	w, h int
}

// task is a CVAT task with its data.
type task struct {
	id       int
	org      *org // nil: the personal sandbox; always its project's
	name     string
	project  *project
	owner    *user
	created  time.Time
	updated  time.Time
	segSize  int
	overlap  *int
	replicas int
	labels   []string
	labelID  []int // ids of labels, same order; none for tasks in a project (they use the project's)
	dataID   int   // 0: no Data row yet (data: null)

	files []clientFile
	tus   map[string]*tusUpload

	// Set by the creation commit.
	initialized  bool
	size         int
	imageQuality int
	chunkSize    int
	frames       []frame
	jobIDs       []int
	staticChunks bool
	// prealloc are the job rows inserted when the data was accepted (WhatIf.PreallocJobs), in plan order,
	// until the commit fills them in or a failure removes them.
	prealloc []*job

	deleted bool
}

// job is a CVAT job (annotation, consensus replica or ground truth).
type job struct {
	id         int
	task       *task
	typ        string
	start      int
	stop       int
	frameCount int
	parent     *int
	replicas   int
	created    time.Time
}

// request is a background request (an RQ job) creating a task's data.
type request struct {
	id       string
	task     *task   // nil once the task is deleted and the request done
	ref      taskRef // what the request renders of its task, kept after the task goes
	owner    *user
	status   string
	message  string
	progress float64
	created  time.Time
	started  time.Time
	finished time.Time
	params   dataParams
	seq      int  // enqueue order, for FIFO and the default list order
	expired  bool // the expire fault: gone as soon as finished
	// background marks another user's creation of the profile's background load: it occupies a worker but
	// has no task, is never listed and leaves no timeline.
	background bool
}

// taskRef is what a request needs of its task once the task is gone: a done request outlives it by
// RequestTTL (a failed one by a year), and a long run must not keep every deleted task for that.
type taskRef struct {
	id      int
	project *project
	org     *org
	owner   *user
}

func refOf(t *task) taskRef { return taskRef{id: t.id, project: t.project, org: t.org, owner: t.owner} }

// Request statuses (API.md §6.1).
const (
	stQueued   = "queued"
	stStarted  = "started"
	stFinished = "finished"
	stFailed   = "failed"
)

// timeline is the ground truth of one creation attempt of a task.
type timeline struct {
	enqueued time.Time
	started  time.Time
	visible  time.Time
	finished time.Time
	jobIDs   []int
	failed   bool
	done     chan struct{} // closed at the commit or the failure
	closed   bool
}
