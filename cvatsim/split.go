package cvatsim

// segment is a run of frames [start, stop], both inclusive.
type segment struct{ start, stop int }

// splitParams is the input of the job split (API.md §9.5).
type splitParams struct {
	size        int   // frames after start/stop/step
	segmentSize int   // task.segment_size, 0 = all frames
	overlap     *int  // task.overlap, nil = automatic
	video       bool  // interpolation-mode video: automatic overlap 5
	audio       bool  // audio: automatic overlap 10000
	mapping     []int // job_file_mapping: frames per job; nil = no mapping
}

// splitSegments is _generate_segment_params (cvat/apps/engine/task.py): it
// returns the segments and the effective segment_size and overlap written
// back to the task.
func splitSegments(p splitParams) (segs []segment, seg, ovl int) {
	if p.mapping != nil {
		start := 0
		for _, n := range p.mapping {
			segs = append(segs, segment{start, start + n - 1})
			start += n
		}
		return segs, 0, 0
	}
	size := p.size
	seg, ovl = effectiveSplit(p)
	if size <= 0 || seg <= 0 {
		return nil, seg, ovl
	}
	for start := 0; start < size-ovl; start += seg - ovl {
		segs = append(segs, segment{start, min(start+seg-1, size-1)})
	}
	return segs, seg, ovl
}

// effectiveSplit returns the segment size and overlap used for p.
func effectiveSplit(p splitParams) (seg, ovl int) {
	seg = p.segmentSize
	if seg == 0 || seg > p.size {
		seg = p.size
	}
	if p.overlap == nil {
		switch {
		case p.size <= seg:
			ovl = 0
		case p.video:
			ovl = 5
		case p.audio:
			ovl = 10000
		}
	} else {
		ovl = *p.overlap
	}
	return seg, min(ovl, seg/2)
}

// segmentCount is len(splitSegments(p)) without building the list, for the
// job limit check on huge tasks.
func segmentCount(p splitParams) int {
	if p.mapping != nil {
		return len(p.mapping)
	}
	seg, ovl := effectiveSplit(p)
	if p.size <= 0 || seg <= 0 {
		return 0
	}
	step := seg - ovl
	return (p.size - ovl + step - 1) / step
}

// defaultChunkSize is the automatic chunk_size for image sets, from the first
// image's size (API.md §9.6).
func defaultChunkSize(w, h int) int {
	if w <= 0 || h <= 0 {
		return 72
	}
	return max(2, min(72, 36*1920*1080/(w*h)))
}
