package record

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Writer writes one results directory. Append is safe for concurrent use.
type Writer struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	bw  *bufio.Writer
	n   int // records written

	metaMu sync.Mutex // one meta.json writer at a time
	final  bool       // Abandon wrote the last meta.json
}

func Create(outDir, runID string) (*Writer, error) {
	dir := filepath.Join(outDir, runID)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, TrialsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create trials file: %w", err)
	}
	return &Writer{dir: dir, f: f, bw: bufio.NewWriter(f)}, nil
}

// Append writes rec as one line and flushes it, so a crash leaves every finished trial on disk.
func (w *Writer) Append(rec Trial) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode trial %d: %w", rec.Seq, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bw.Write(b)
	w.bw.WriteByte('\n')
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write trial %d: %w", rec.Seq, err)
	}
	w.n++
	return nil
}

// freeze stops every later Append (they block for good: the process is about to exit) and returns how many
// records the file holds.
func (w *Writer) Freeze() int {
	w.mu.Lock()
	return w.n
}

func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// WriteMeta replaces meta.json atomically (temp file and rename), so readers never see half a file.
func (w *Writer) WriteMeta(m Meta) error {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	if w.final {
		return nil
	}
	return w.writeMetaLocked(m)
}

// writeFinalMeta writes meta.json for the last time: later WriteMeta calls do nothing.
func (w *Writer) WriteFinalMeta(m Meta) error {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	w.final = true
	return w.writeMetaLocked(m)
}

func (w *Writer) writeMetaLocked(m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	tmp := filepath.Join(w.dir, MetaFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, MetaFile)); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

// HlogFile is the name of a strategy's .hlog file: the strategy (spec) with every byte outside
// [A-Za-z0-9._-] replaced by '_', so "poll:interval=25ms" is poll_interval_25ms.hlog on any file system. The
// tags inside the file keep the spec's own spelling.
func HlogFile(strategy string) string {
	b := []byte(strategy)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + HlogExt
}

// WriteHlogs writes <strategy>.hlog for each strategy: the end-to-end interval tagged with the strategy name and
// the detection-delay interval tagged <strategy>.detection, both covering [start, end]. It returns the file
// names written.
func (w *Writer) WriteHlogs(names []string, rec *Recorder, start, end time.Time) ([]string, error) {
	var files []string
	for _, name := range names {
		file := HlogFile(name)
		if err := writeHlog(filepath.Join(w.dir, file), name, rec, start, end); err != nil {
			return files, err
		}
		files = append(files, file)
	}
	return files, nil
}

func writeHlog(path, name string, rec *Recorder, start, end time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create hlog: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close hlog: %w", cerr)
		}
	}()
	lw := hdrhistogram.NewHistogramLogWriter(f) // base time 0: absolute timestamps
	if err := lw.OutputLogFormatVersion(); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	if err := lw.OutputStartTime(start.UnixMilli()); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	if err := lw.OutputLegend(); err != nil {
		return fmt.Errorf("write hlog %s: %w", name, err)
	}
	for _, iv := range []struct{ metric, tag string }{
		{MetricEndToEnd, name},
		{MetricDetection, name + DetectionTagSuffix},
	} {
		h := rec.Histogram(name, iv.metric)
		if h == nil {
			h = NewHistogram()
		} else {
			h = h.Clone() // tags and times belong to this file, not to the recorder
		}
		h.SetTag(iv.tag)
		h.SetStartTimeMs(start.UnixMilli())
		h.SetEndTimeMs(end.UnixMilli())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("write hlog %s: %w", iv.tag, err)
		}
	}
	return nil
}

// Dir is the run's results directory.
func (w *Writer) Dir() string { return w.dir }
