// Package configfile reads wingmand's TOML configuration file within
// bounds: a size limit and a nesting limit, both checked before
// BurntSushi/toml parses it (its memory grows with the square of the
// nesting: 776 MB for 16 KB of nested inline tables, out of memory at
// 32 KB), then a strict decode that refuses unknown keys and names the
// line and the key of every error. It also holds the configuration's
// duration type.
//
// It must never know the configuration's keys or defaults: cmd/wingmand
// owns them and checks their values.
package configfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxSize bounds a configuration file: the example, every key commented,
// is 8 KB. Even within MaxDepth the TOML library allocates hundreds of
// bytes per byte of nested input (780 MB for 1 MiB at depth 14).
const MaxSize = 64 << 10

// MaxDepth bounds how deep a key is nested: the parts of a table header,
// the dotted parts of keys and the inline tables and arrays of a value,
// added up. wingman.toml needs 3 ([fence.HOST.params]).
const MaxDepth = 8

// maxUnknown is how many unknown keys an error names.
const maxUnknown = 10

// ErrTooLarge is wrapped by the error for a file over MaxSize, and
// ErrTooDeep by the one for a key nested deeper than MaxDepth.
var (
	ErrTooLarge = errors.New("configuration file too large")
	ErrTooDeep  = errors.New("configuration nested too deep")
)

// doc is where the operator finds every key.
const doc = "every key is documented in contrib/wingman.toml"

// Decode reads the TOML file at path into v. An error names the file, and
// the line and the key where it can; a missing file wraps os.ErrNotExist.
func Decode(path string, v any) error {
	b, err := read(path)
	if err != nil {
		return err
	}
	if line, err := checkNesting(b, MaxDepth); err != nil {
		return fmt.Errorf("%s line %d: %w; wingman.toml nests 3 levels at most ([fence.HOST.params]): check the file (%s)", path, line, err, doc)
	}
	md, err := toml.Decode(string(b), v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			where := fmt.Sprintf("line %d", pe.Position.Line)
			if pe.LastKey != "" {
				where += ", key " + pe.LastKey
			}
			return fmt.Errorf("%s %s: %s; fix it (%s)", path, where, pe.Message, doc)
		}
		return fmt.Errorf("%s: %w; check the value's type (%s)", path, err, doc)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und[:min(len(und), maxUnknown)] {
			keys = append(keys, k.String())
		}
		if len(und) > maxUnknown {
			keys = append(keys, fmt.Sprintf("and %d more", len(und)-maxUnknown))
		}
		return fmt.Errorf("%s: unknown key %s; check the spelling (%s)", path, strings.Join(keys, ", "), doc)
	}
	return nil
}

// read returns the file's bytes, refusing one over MaxSize without reading
// more of it (a device or a log given by mistake).
func read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read configuration %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%s: %w: more than %d KiB, where wingman.toml takes a few; is it the right file?", path, ErrTooLarge, MaxSize>>10)
	}
	return b, nil
}

// checkNesting returns the first line where a key is nested deeper than
// max, or 0. It reads TOML as the parser does only as far as nesting goes:
// outside strings and comments, a table header's parts, the dotted parts
// of the keys of one statement (all of them, an upper bound of the deepest
// key's) and the open inline tables and arrays of its value. Anything
// else, valid or not, is for the parser to judge.
func checkNesting(b []byte, max int) (int, error) {
	var (
		line   = 1
		open   []byte // the '{' and '[' open in the current value
		header int    // parts of the current table header
		dots   int    // dotted key parts of the current statement
		inKey  = true // reading a key (or a header), not a value
		inHdr  bool   // reading a table header
	)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\n':
			line++
			if len(open) == 0 { // the statement ends: a key comes next
				inKey, inHdr, dots = true, false, 0
			}
		case c == '#':
			for i+1 < len(b) && b[i+1] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			end, lines := skipString(b, i)
			i, line = end, line+lines
		case inHdr && c == '.':
			header++
		case inHdr && c == ']':
			inHdr = false
		case inKey && len(open) == 0 && c == '[': // [table] or [[array of tables]]
			inHdr, header = true, 1
			if i+1 < len(b) && b[i+1] == '[' {
				i++
			}
		case inKey && c == '.':
			dots++
		case inKey && c == '=':
			inKey = false
		case c == '{' || c == '[':
			open = append(open, c)
			inKey = c == '{'
		case c == '}' || c == ']':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
			inKey = false
		case c == ',' && len(open) > 0:
			inKey = open[len(open)-1] == '{'
		}
		if header+dots+len(open) > max {
			return line, fmt.Errorf("%w: keys, tables, inline tables and arrays nested more than %d levels", ErrTooDeep, max)
		}
	}
	return 0, nil
}

// skipString returns the index of the last byte of the string that starts
// at b[i] (basic or literal, on one line or several) and how many
// newlines it holds. An unterminated string ends at the end of its line
// (one-line strings) or of b: the parser reports it.
func skipString(b []byte, i int) (end, lines int) {
	q := b[i]
	multi := i+2 < len(b) && b[i+1] == q && b[i+2] == q
	j := i + 1
	if multi {
		j = i + 3
	}
	for ; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\' && q == '"':
			if j+1 < len(b) && b[j+1] == '\n' {
				lines++
			}
			j++
		case c == '\n':
			if !multi {
				return j - 1, lines
			}
			lines++
		case c == q && !multi:
			return j, lines
		case c == q && j+2 < len(b) && b[j+1] == q && b[j+2] == q:
			// The closing """ may follow one or two quotes of the content.
			end := j + 2
			for k := 0; k < 2 && end+1 < len(b) && b[end+1] == q; k++ {
				end++
			}
			return end, lines
		}
	}
	return len(b) - 1, lines
}

// Duration is a duration written as a string ("30s", "10m"). A negative
// one is refused: no duration of the configuration may be.
type Duration struct{ time.Duration }

// UnmarshalText reads the string form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 30s or 10m)", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative: give a positive duration (like 30s or 10m)", b)
	}
	d.Duration = v
	return nil
}

// Keys returns the dotted keys of the values the file at path sets, for a
// caller that must tell a key the file sets from one left at its default.
// Call it once Decode accepted the file.
func Keys(path string) ([]string, error) {
	b, err := read(path)
	if err != nil {
		return nil, err
	}
	if line, err := checkNesting(b, MaxDepth); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", path, line, err)
	}
	var m map[string]any
	md, err := toml.Decode(string(b), &m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []string
	for _, k := range md.Keys() {
		if md.Type(k...) != "Hash" {
			out = append(out, k.String())
		}
	}
	return out, nil
}
