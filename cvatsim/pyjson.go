package cvatsim

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// kv is one member of an ordered JSON object.
type kv struct {
	K string
	V any
}

// obj is a JSON object that keeps its key order: DRF serializers emit fields
// in declaration order, and webhook payloads are signed byte for byte.
type obj []kv

// get returns the value of key k, if present.
func (o obj) get(k string) (any, bool) {
	for _, m := range o {
		if m.K == k {
			return m.V, true
		}
	}
	return nil, false
}

// set replaces the value of k or appends it.
func (o obj) set(k string, v any) obj {
	for i := range o {
		if o[i].K == k {
			o[i].V = v
			return o
		}
	}
	return append(o, kv{k, v})
}

// without returns o minus the named keys (fields that a state leaves out).
func (o obj) without(keys ...string) obj {
	out := make(obj, 0, len(o))
next:
	for _, m := range o {
		for _, k := range keys {
			if m.K == k {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// rawJSON is already-encoded JSON inserted verbatim.
type rawJSON []byte

// encodeDRF encodes v the way DRF's JSONRenderer does: compact separators and
// non-ASCII characters left as UTF-8.
func encodeDRF(v any) []byte {
	var b bytes.Buffer
	e := jsonEncoder{b: &b}
	e.value(v)
	return b.Bytes()
}

// encodePy encodes v like Python's json.dumps with default arguments: ", " and
// ": " separators and ensure_ascii. Webhook bodies are produced this way and
// signed over these exact bytes.
func encodePy(v any) []byte {
	var b bytes.Buffer
	e := jsonEncoder{b: &b, py: true}
	e.value(v)
	return b.Bytes()
}

type jsonEncoder struct {
	b  *bytes.Buffer
	py bool
}

func (e jsonEncoder) sep() {
	if e.py {
		e.b.WriteString(", ")
	} else {
		e.b.WriteByte(',')
	}
}

func (e jsonEncoder) colon() {
	if e.py {
		e.b.WriteString(": ")
	} else {
		e.b.WriteByte(':')
	}
}

func (e jsonEncoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.b.WriteString("null")
	case bool:
		if x {
			e.b.WriteString("true")
		} else {
			e.b.WriteString("false")
		}
	case int:
		e.b.WriteString(strconv.Itoa(x))
	case int64:
		e.b.WriteString(strconv.FormatInt(x, 10))
	case *int:
		if x == nil {
			e.b.WriteString("null")
		} else {
			e.b.WriteString(strconv.Itoa(*x))
		}
	case float64:
		e.b.WriteString(pyFloat(x))
	case string:
		e.str(x)
	case time.Time:
		if x.IsZero() {
			e.b.WriteString("null")
		} else {
			e.str(fmtTime(x))
		}
	case rawJSON:
		e.b.Write(x)
	case obj:
		e.b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				e.sep()
			}
			e.str(m.K)
			e.colon()
			e.value(m.V)
		}
		e.b.WriteByte('}')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := make(obj, 0, len(x))
		for _, k := range keys {
			o = append(o, kv{k, x[k]})
		}
		e.value(o)
	case []any:
		e.b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				e.sep()
			}
			e.value(it)
		}
		e.b.WriteByte(']')
	case []obj:
		e.b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				e.sep()
			}
			e.value(it)
		}
		e.b.WriteByte(']')
	case []string:
		e.b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				e.sep()
			}
			e.str(it)
		}
		e.b.WriteByte(']')
	case []int:
		e.b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				e.sep()
			}
			e.b.WriteString(strconv.Itoa(it))
		}
		e.b.WriteByte(']')
	default:
		// A programming error; keep the output valid JSON.
		e.str(fmt.Sprint(x))
	}
}

const hexDigits = "0123456789abcdef"

// str writes a JSON string. Python's json.dumps (ensure_ascii) escapes every
// non-ASCII character as \uXXXX, with surrogate pairs above U+FFFF; DRF leaves
// UTF-8 alone but escapes U+2028 and U+2029.
func (e jsonEncoder) str(s string) {
	b := e.b
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 {
					b.WriteString(`\u00`)
					b.WriteByte(hexDigits[c>>4])
					b.WriteByte(hexDigits[c&0xf])
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if e.py || r == 0x2028 || r == 0x2029 || r == utf8.RuneError {
			if r > 0xffff {
				r -= 0x10000
				writeU(b, 0xd800+(r>>10))
				writeU(b, 0xdc00+(r&0x3ff))
			} else {
				writeU(b, r)
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[(r>>uint(shift))&0xf])
	}
}

// pyFloat formats f like Python's float repr: always a decimal point or an
// exponent, so 0 is "0.0" (the SDK types progress as float).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !bytes.ContainsAny([]byte(s), ".") {
		s += ".0"
	}
	return s
}

// fmtTime renders a server date as DRF does: UTC, microseconds, "Z".
func fmtTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// timeOrNil returns the formatted time, or nil (JSON null) for the zero time.
func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtTime(t)
}

// intOrNil returns *p, or nil (JSON null) for a nil pointer.
func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
