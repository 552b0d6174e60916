package cvatsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProfileSchema names the version of the profile file format (docs/profile-file.md). A reader refuses
// any other value, so an incompatible change bumps it.
const ProfileSchema = "cvatbench.profile/v1"

// ProfileFile is a profile as a file: the terms plus where they come from. Every term is required, so a
// file read back is exactly the profile it was written from; durations are Go duration strings ("5.9ms").
type ProfileFile struct {
	Schema      string      `json:"schema"`
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Server      *ServerInfo `json:"server,omitempty"`
	Terms       Profile     `json:"-"` // encoded as "terms" by the term table
	Fit         []TermFit   `json:"fit,omitempty"`
	Notes       []string    `json:"notes,omitempty"`
}

// ServerInfo names the server a calibrated profile was measured on.
type ServerInfo struct {
	URL        string    `json:"url"`
	Version    string    `json:"version"`
	MeasuredAt time.Time `json:"measured_at"`
	Auth       string    `json:"auth,omitempty"` // "token", "bearer" or "basic": Basic costs a hash per call
}

// TermFit is how calibrate estimated one term: the estimate, a confidence interval, the number of samples
// and the fit's residual spread. Values are in the term's unit (Unit), as numbers.
type TermFit struct {
	Term     string  `json:"term"`
	Unit     string  `json:"unit"`
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"ci_low"`
	High     float64 `json:"ci_high"`
	N        int     `json:"n"`
	Residual float64 `json:"residual_rms,omitempty"`
	Method   string  `json:"method"`
	Measured bool    `json:"measured"` // false: not measurable by the experiment, kept from the base profile
}

type termsSection map[string]json.RawMessage

// distJSON is a Dist on the wire: every field required.
type distJSON struct {
	Base   *jsonDuration `json:"base"`
	Median *jsonDuration `json:"median"`
	Sigma  *float64      `json:"sigma"`
	Cap    *jsonDuration `json:"cap"`
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5.9ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q", s)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	*d = jsonDuration(v)
	return nil
}

// term is one entry of the profile's terms section: its key and how to move it between Profile and JSON.
type term struct {
	key    string
	encode func(p *Profile) any
	decode func(p *Profile, raw json.RawMessage) error
}

func durationTerm(key string, f func(p *Profile) *time.Duration) term {
	return term{key: key,
		encode: func(p *Profile) any { return jsonDuration(*f(p)) },
		decode: func(p *Profile, raw json.RawMessage) error {
			var d jsonDuration
			if err := strictUnmarshal(raw, &d); err != nil {
				return err
			}
			*f(p) = time.Duration(d)
			return nil
		}}
}

func distTerm(key string, f func(p *Profile) *Dist) term {
	return term{key: key,
		encode: func(p *Profile) any { return encodeDist(*f(p)) },
		decode: func(p *Profile, raw json.RawMessage) error {
			d, err := decodeDist(raw)
			if err != nil {
				return err
			}
			*f(p) = d
			return nil
		}}
}

func intTerm(key string, f func(p *Profile) *int) term {
	return term{key: key,
		encode: func(p *Profile) any { return *f(p) },
		decode: func(p *Profile, raw json.RawMessage) error {
			var v int
			if err := strictUnmarshal(raw, &v); err != nil {
				return fmt.Errorf("want an integer: %w", err)
			}
			if v < 0 {
				return fmt.Errorf("negative value %d", v)
			}
			*f(p) = v
			return nil
		}}
}

func floatTerm(key string, f func(p *Profile) *float64) term {
	return term{key: key,
		encode: func(p *Profile) any { return *f(p) },
		decode: func(p *Profile, raw json.RawMessage) error {
			v, err := decodeNonNegative(raw)
			if err != nil {
				return err
			}
			*f(p) = v
			return nil
		}}
}

func encodeDist(d Dist) distJSON {
	b, m, c := jsonDuration(d.Base), jsonDuration(d.Median), jsonDuration(d.Cap)
	s := d.Sigma
	return distJSON{Base: &b, Median: &m, Sigma: &s, Cap: &c}
}

func decodeDist(raw json.RawMessage) (Dist, error) {
	var dj distJSON
	if err := strictUnmarshal(raw, &dj); err != nil {
		return Dist{}, err
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{{"base", dj.Base != nil}, {"median", dj.Median != nil}, {"sigma", dj.Sigma != nil}, {"cap", dj.Cap != nil}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Dist{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if *dj.Sigma < 0 || math.IsNaN(*dj.Sigma) || math.IsInf(*dj.Sigma, 0) {
		return Dist{}, fmt.Errorf("sigma must be a finite number ≥ 0, got %v", *dj.Sigma)
	}
	return Dist{Base: time.Duration(*dj.Base), Median: time.Duration(*dj.Median), Sigma: *dj.Sigma, Cap: time.Duration(*dj.Cap)}, nil
}

func decodeNonNegative(raw json.RawMessage) (float64, error) {
	var v float64
	if err := strictUnmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("want a number: %w", err)
	}
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("must be a finite number ≥ 0, got %v", v)
	}
	return v, nil
}

// terms is the terms section in file order. It is the one list of what a profile holds: files, the
// calibrate table and the tests all go through it.
var terms = []term{
	intTerm("import_workers", func(p *Profile) *int { return &p.ImportWorkers }),
	intTerm("api_slots", func(p *Profile) *int { return &p.APISlots }),
	distTerm("api_read", func(p *Profile) *Dist { return &p.APIRead }),
	durationTerm("api_read_per_job", func(p *Profile) *time.Duration { return &p.APIReadPerJob }),
	distTerm("api_write", func(p *Profile) *Dist { return &p.APIWrite }),
	distTerm("api_upload", func(p *Profile) *Dist { return &p.APIUpload }),
	durationTerm("delete_per_job", func(p *Profile) *time.Duration { return &p.DeletePerJob }),
	floatTerm("upload_bytes_per_second", func(p *Profile) *float64 { return &p.UploadBytesPerSecond }),
	durationTerm("upload_per_file", func(p *Profile) *time.Duration { return &p.UploadPerFile }),
	durationTerm("basic_auth", func(p *Profile) *time.Duration { return &p.BasicAuth }),
	distTerm("pickup", func(p *Profile) *Dist { return &p.PickUp }),
	distTerm("processing", func(p *Profile) *Dist { return &p.Processing }),
	durationTerm("per_image", func(p *Profile) *time.Duration { return &p.PerImage }),
	durationTerm("per_job", func(p *Profile) *time.Duration { return &p.PerJob }),
	distTerm("jobs_to_commit", func(p *Profile) *Dist { return &p.JobsToCommit }),
	{key: "preview_per_frame",
		encode: func(p *Profile) any {
			out := map[string]jsonDuration{}
			for q, d := range p.PreviewPerFrame {
				out[strconv.Itoa(q)] = jsonDuration(d)
			}
			return out
		},
		decode: func(p *Profile, raw json.RawMessage) error {
			var in map[string]jsonDuration
			if err := strictUnmarshal(raw, &in); err != nil {
				return err
			}
			out := QualityCost{}
			for k, d := range in {
				q, err := strconv.Atoi(k)
				if err != nil || q < 1 || q > 100 {
					return fmt.Errorf("key %q: want an image_quality from 1 to 100", k)
				}
				out[q] = time.Duration(d)
			}
			p.PreviewPerFrame = out
			return nil
		}},
	floatTerm("concurrency_stretch", func(p *Profile) *float64 { return &p.ConcurrencyStretch }),
	durationTerm("static_chunk_per_image", func(p *Profile) *time.Duration { return &p.StaticChunkPerImage }),
	durationTerm("commit_to_finished", func(p *Profile) *time.Duration { return &p.CommitToFinished }),
	durationTerm("commit_per_object", func(p *Profile) *time.Duration { return &p.CommitPerObject }),
	durationTerm("webhook_hop", func(p *Profile) *time.Duration { return &p.WebhookHop }),
	durationTerm("chunk_first_read_per_image", func(p *Profile) *time.Duration { return &p.ChunkFirstReadPerImage }),
	durationTerm("chunk_poll_step", func(p *Profile) *time.Duration { return &p.ChunkPollStep }),
	durationTerm("chunk_read_per_mib", func(p *Profile) *time.Duration { return &p.ChunkReadPerMiB }),
	floatTerm("background_arrivals_per_second", func(p *Profile) *float64 { return &p.Background.ArrivalsPerSecond }),
	distTerm("background_service", func(p *Profile) *Dist { return &p.Background.Service }),
}

// TermKeys lists the keys of a profile file's terms section, in file order.
func TermKeys() []string {
	out := make([]string, len(terms))
	for i, t := range terms {
		out[i] = t.key
	}
	return out
}

// MarshalJSON writes the file with its terms in the order of the term table.
func (f ProfileFile) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("{")
	field := func(first bool, key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !first {
			buf.WriteString(",")
		}
		k, _ := json.Marshal(key)
		buf.Write(k)
		buf.WriteString(":")
		buf.Write(b)
		return nil
	}
	_ = field(true, "schema", f.Schema)
	_ = field(false, "name", f.Name)
	if f.Description != "" {
		_ = field(false, "description", f.Description)
	}
	if f.Server != nil {
		_ = field(false, "server", f.Server)
	}
	buf.WriteString(`,"terms":{`)
	for i, t := range terms {
		if err := field(i == 0, t.key, t.encode(&f.Terms)); err != nil {
			return nil, fmt.Errorf("term %s: %w", t.key, err)
		}
	}
	buf.WriteString("}")
	if len(f.Fit) > 0 {
		_ = field(false, "fit", f.Fit)
	}
	if len(f.Notes) > 0 {
		_ = field(false, "notes", f.Notes)
	}
	buf.WriteString("}")
	return buf.Bytes(), nil
}

// WriteProfile writes f as indented JSON with a final newline.
func WriteProfile(w io.Writer, f ProfileFile) error {
	if f.Schema == "" {
		f.Schema = ProfileSchema
	}
	if f.Name == "" {
		f.Name = f.Terms.Name
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// ProfileFileOf wraps a built-in profile as a file to start from.
func ProfileFileOf(p Profile, description string) ProfileFile {
	return ProfileFile{Schema: ProfileSchema, Name: p.Name, Description: description, Terms: p}
}

// ParseProfile reads a profile file strictly: the schema must match, every term must be present, no key may
// be unknown, no duration negative. The error names the first problems, one line each joined by "; ".
func ParseProfile(r io.Reader) (ProfileFile, error) {
	var top struct {
		Schema      *string         `json:"schema"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Server      *ServerInfo     `json:"server"`
		Terms       json.RawMessage `json:"terms"`
		Fit         []TermFit       `json:"fit"`
		Notes       []string        `json:"notes"`
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return ProfileFile{}, err
	}
	if len(data) > 1<<20 {
		return ProfileFile{}, errors.New("larger than 1 MiB: not a profile file")
	}
	if err := strictUnmarshal(data, &top); err != nil {
		return ProfileFile{}, err
	}
	switch {
	case top.Schema == nil:
		return ProfileFile{}, fmt.Errorf("missing \"schema\" (want %q)", ProfileSchema)
	case *top.Schema != ProfileSchema:
		return ProfileFile{}, fmt.Errorf("schema %q is not %q", *top.Schema, ProfileSchema)
	case top.Name == "":
		return ProfileFile{}, errors.New("missing \"name\"")
	case top.Terms == nil:
		return ProfileFile{}, errors.New("missing \"terms\"")
	}
	var raw termsSection
	if err := strictUnmarshal(top.Terms, &raw); err != nil {
		return ProfileFile{}, fmt.Errorf("terms: %w", err)
	}
	known := map[string]bool{}
	var problems []string
	p := Profile{Name: top.Name}
	for _, t := range terms {
		known[t.key] = true
		v, ok := raw[t.key]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing term %q", t.key))
			continue
		}
		if err := t.decode(&p, v); err != nil {
			problems = append(problems, fmt.Sprintf("term %q: %v", t.key, err))
		}
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		problems = append(problems, fmt.Sprintf("unknown term %q", k))
	}
	if len(problems) == 0 {
		if err := p.Validate(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return ProfileFile{}, errors.New(strings.Join(problems, "; "))
	}
	return ProfileFile{Schema: *top.Schema, Name: top.Name, Description: top.Description, Server: top.Server,
		Terms: p, Fit: top.Fit, Notes: top.Notes}, nil
}

// Validate checks what a single term cannot: a background load the workers can carry.
func (p Profile) Validate() error {
	workers := p.ImportWorkers
	if workers == 0 {
		workers = DefaultImportWorkers
	}
	if u := p.Background.Utilization(workers); u >= 0.98 {
		return fmt.Errorf("background load keeps the %d import workers %.0f%% busy: the queue would grow without bound (keep it under 98%%)", workers, 100*u)
	}
	if p.Background.ArrivalsPerSecond > 0 && p.Background.Service.Mean() <= 0 {
		return errors.New("background load needs a positive background_service")
	}
	return nil
}

// LoadProfile returns the built-in profile called nameOrPath, or reads the profile file at that path. A name
// wins over a file of the same name in the working directory; "./cvat-default" reads the file.
func LoadProfile(nameOrPath string) (Profile, error) {
	if f, ok := profiles[nameOrPath]; ok {
		return f(), nil
	}
	if !strings.ContainsAny(nameOrPath, `/\.`) {
		return Profile{}, fmt.Errorf("unknown profile %q (built-in: %s; or a profile file path)", nameOrPath, strings.Join(ProfileNames(), ", "))
	}
	fh, err := os.Open(nameOrPath)
	if err != nil {
		return Profile{}, fmt.Errorf("profile file: %w", err)
	}
	defer fh.Close()
	pf, err := ParseProfile(fh)
	if err != nil {
		return Profile{}, fmt.Errorf("profile file %s: %w", nameOrPath, err)
	}
	return pf.Terms, nil
}

// strictUnmarshal decodes one JSON value, refusing unknown fields and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cleanJSONError(err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// cleanJSONError shortens encoding/json's messages to what a user can act on.
func cleanJSONError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(msg, "unknown field "))
	}
	return errors.New(msg)
}
