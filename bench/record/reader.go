package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	gojson "github.com/goccy/go-json"
)

// readGCPercent is the GOGC of ReadTrials while it runs (unless the process runs with a higher one).
const readGCPercent = 400

// readBlock is how much of trials.jsonl one decoding worker takes at a time (whole lines).
const readBlock = 1 << 20

// ReadTrials decodes trials.jsonl: one JSON Trial per line, blank lines skipped. An unterminated last line
// that does not parse is what a crash mid-write leaves: it is dropped and truncated is true. Any other line
// that does not parse fails the read, naming its line number.
//
// Lines are decoded on every core, in blocks, and the trials come back in file order. Each line goes first
// through goccy/go-json, about 14 times faster than encoding/json on these records (1.4 against 20 µs on
// 2 cores), which is what makes a million-trial run load in seconds; a line goccy refuses (or panics on) is
// decided by encoding/json, so which lines fail, and with what message, is encoding/json's.
func ReadTrials(r io.Reader) (trials []Trial, truncated bool, err error) { return ReadTrialsN(r, 0) }

// ReadTrialsN is ReadTrials for a file expected to hold about n trials (meta.json's count): they are
// decoded in place into one slice of that size instead of being gathered from per-block slices.
func ReadTrialsN(r io.Reader, n int) (trials []Trial, truncated bool, err error) {
	// Every trial decoded stays live until the end, so a collection while they arrive only rescans them:
	// at GOGC=100 a million-trial load spent 40 % of its time marking. Collect less often meanwhile.
	if prev := debug.SetGCPercent(readGCPercent); prev < 0 || prev > readGCPercent {
		debug.SetGCPercent(prev)
	} else {
		defer debug.SetGCPercent(prev)
	}
	dest := make([]Trial, max(n, 0))
	type block struct {
		idx, firstLine int
		data           []byte
		unterminated   bool    // the input ends inside this block's last line
		dst            []Trial // where its trials go, one per non-blank line; nil: a slice of its own
	}
	blocks := make(chan block)
	var (
		mu      sync.Mutex
		results []decoded
	)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for b := range blocks {
				res := decodeBlock(b.data, b.firstLine, b.unterminated, b.dst)
				mu.Lock()
				for len(results) <= b.idx {
					results = append(results, decoded{})
				}
				results[b.idx] = res
				mu.Unlock()
			}
		})
	}
	placed := 0 // trials that go into dest
	readErr := func() error {
		defer close(blocks)
		br := bufio.NewReaderSize(r, readBlock)
		line, idx := 1, 0
		var carry []byte
		for {
			buf := make([]byte, readBlock)
			got, rerr := io.ReadFull(br, buf)
			data := append(carry, buf[:got]...)
			eof := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
			if rerr != nil && !eof {
				return rerr
			}
			cut := len(data)
			if !eof {
				cut = bytes.LastIndexByte(data, '\n') + 1 // 0: a line longer than the block; read on
			}
			if cut > 0 {
				chunk := data[:cut]
				b := block{idx: idx, firstLine: line, data: chunk, unterminated: eof && !bytes.HasSuffix(chunk, []byte("\n"))}
				if k := nonBlankLines(chunk); placed >= 0 && placed+k <= len(dest) {
					b.dst, placed = dest[placed:placed+k:placed+k], placed+k
				} else {
					placed = -1 // from here on every block has its own slice
				}
				blocks <- b
				idx++
				line += bytes.Count(chunk, []byte("\n"))
			}
			carry = append([]byte(nil), data[cut:]...)
			if eof {
				return nil
			}
		}
	}()
	wg.Wait()
	if readErr != nil {
		return nil, false, readErr
	}
	total := 0
	for _, res := range results {
		if res.err != nil {
			return nil, false, fmt.Errorf("line %d: %w", res.errLine, res.err)
		}
		total += len(res.trials)
		truncated = truncated || res.truncated
	}
	// The blocks decoded in place come first and fill dest without gaps (only the last line of all can be
	// cut off); the others follow.
	inPlace := 0
	for _, res := range results {
		if res.inPlace {
			inPlace += len(res.trials)
		}
	}
	trials = dest[:inPlace]
	if inPlace < total {
		trials = slices.Grow(trials, total-inPlace)
		for _, res := range results {
			if !res.inPlace {
				trials = append(trials, res.trials...)
			}
		}
	}
	return trials, truncated, nil
}

// nonBlankLines counts the lines of data that hold anything but white space.
func nonBlankLines(data []byte) int {
	n := 0
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			end = len(data)
		}
		if len(bytes.TrimSpace(data[:end])) > 0 {
			n++
		}
		data = data[min(end+1, len(data)):]
	}
	return n
}

type decoded struct {
	inPlace   bool // trials is a part of ReadTrialsN's slice
	trials    []Trial
	errLine   int // 0: no error
	err       error
	truncated bool
}

// decodeBlock decodes the whole lines of data, the first of which is line first of the file, into dst (one
// slot per non-blank line) or, with dst nil, a slice of its own.
func decodeBlock(data []byte, first int, unterminated bool, dst []Trial) decoded {
	out := decoded{trials: dst[:0], inPlace: dst != nil}
	if dst == nil {
		out.trials = make([]Trial, 0, bytes.Count(data, []byte("\n"))+1)
	}
	line := first
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		last := end < 0
		if last {
			end = len(data)
		}
		text := data[:end]
		data = data[min(end+1, len(data)):]
		if len(bytes.TrimSpace(text)) > 0 {
			out.trials = append(out.trials, Trial{})
			if err := decodeTrial(text, &out.trials[len(out.trials)-1]); err != nil {
				out.trials = out.trials[:len(out.trials)-1]
				if last && unterminated {
					out.truncated = true
					return out
				}
				out.errLine, out.err = line, err
				return out
			}
		}
		line++
	}
	return out
}

// decodeTrial decodes one line: goccy/go-json first, encoding/json for anything goccy does not accept.
func decodeTrial(line []byte, t *Trial) error {
	if fastDecode(line, t) {
		return nil
	}
	*t = Trial{}
	return json.Unmarshal(line, t)
}

func fastDecode(line []byte, t *Trial) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return gojson.Unmarshal(line, t) == nil
}
