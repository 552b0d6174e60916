package cvatsim

import (
	"bytes"
	"crypto/sha256"
	"image"
	"image/jpeg"
	"sync"
)

// jpegMemoBudget bounds the re-encoded frames the emulator keeps. A benchmark uploads the same images to every
// task, so after the first task every chunk is assembled from memory: the emulator's own JPEG encoding (Go's,
// several times slower than the Pillow and libjpeg-turbo of a real CVAT) then no longer adds to the build time
// the profile models.
const jpegMemoBudget = 256 << 20

// jpegMemo maps (source bytes, quality) to the re-encoded JPEG. Safe for concurrent use.
type jpegMemo struct {
	mu    sync.Mutex
	items map[jpegKey][]byte
	used  int
}

type jpegKey struct {
	source  [sha256.Size]byte
	quality int
}

// encode decodes src and re-encodes it as JPEG at quality, or returns the earlier result for the same bytes
// and quality.
func (m *jpegMemo) encode(src []byte, quality int) ([]byte, error) {
	k := jpegKey{source: sha256.Sum256(src), quality: quality}
	m.mu.Lock()
	out, ok := m.items[k]
	m.mu.Unlock()
	if ok {
		return out, nil
	}
	img, _, err := image.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	out = b.Bytes()
	m.mu.Lock()
	if m.items == nil {
		m.items = map[jpegKey][]byte{}
	}
	if _, dup := m.items[k]; !dup && m.used+len(out) <= jpegMemoBudget {
		m.items[k] = out
		m.used += len(out)
	}
	m.mu.Unlock()
	return out, nil
}

// warm encodes every frame at quality that is not memoised yet; errors are left for the read to report.
func (m *jpegMemo) warm(frames []frame, quality int) {
	for _, f := range frames {
		_, _ = m.encode(f.data, quality)
	}
}
