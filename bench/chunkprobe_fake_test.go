package bench_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/cvatbench/cvatbench/bench"
	"github.com/cvatbench/cvatbench/cvat"
)

var _ bench.ChunkAPI = (*fakeAPI)(nil)

// JobChunk answers like CVAT for image tasks (API.md §7.2): a zip of the chunk's frames, each re-encoded as
// JPEG at the task's image quality, members 000000.jpeg, 000001.jpeg, ...
func (f *fakeAPI) JobChunk(ctx context.Context, jobID, index int, quality string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.chunkReads++
	var up fakeUpload
	var first, n int
	for task, ids := range f.jobs {
		for k, id := range ids {
			if id == jobID {
				up = f.uploads[task]
				first = k*fakeChunkSize + index*fakeChunkSize
				n = min(fakeChunkSize, len(up.files)-first)
			}
		}
	}
	fault := f.chunkFault
	f.mu.Unlock()
	if n <= 0 || index != 0 {
		return nil, &cvat.APIError{Method: "GET", Endpoint: "/api/jobs/{id}/data", Status: 400, Detail: "Invalid chunk number"}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range n {
		img, _, err := image.Decode(bytes.NewReader(up.files[first+i].Data))
		if err != nil {
			return nil, err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%06d.jpeg", i), Method: zip.Store})
		if err != nil {
			return nil, err
		}
		if err := jpeg.Encode(w, img, &jpeg.Options{Quality: up.quality}); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if fault != nil {
		return fault(jobID, index, buf.Bytes())
	}
	return buf.Bytes(), nil
}
