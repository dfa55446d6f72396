package manpage

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Example is a commented example configuration file in TOML, read the way
// an administrator reads it: the comment block that opens the file, then
// each table with the comment above its header, and each key with the
// comment above it. Keys that follow one another without a comment of
// their own share the comment of the first (host_name and host_id).
// Commented-out keys and tables ("# advertise = ...", "# [fence.kvm2]") are
// documented keys that the example leaves unset.
type Example struct {
	Head   string // the comment that opens the file, up to its first blank line
	Tables []Table
}

// Table is a table of an Example; the first has no name (the top level).
type Table struct {
	Name string // "", "serf", "fence.kvm2.params"
	Doc  string
	Keys []Key
}

// Key is one key, or a few keys documented together.
type Key struct {
	Names []string // "host_name", "host_id"
	Lines []string // as the example sets them: `host_id = 0`
	Doc   string   // blank comment lines separate paragraphs
}

var (
	tableLine = regexp.MustCompile(`^\[([A-Za-z0-9_.-]+)\]$`)
	// keyLine is a key and a whole value (string, boolean, number, array,
	// inline table), so that prose such as "allow_exec = false to forbid
	// ..." in a comment is not taken for a key.
	keyLine = regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*=\s*("[^"]*"|'[^']*'|true|false|[-+]?[0-9][0-9_.eE:+-]*|\[.*\]|\{.*\})\s*(#.*)?$`)
)

// ParseExample reads a commented example configuration. It is an error for
// a line to be none of: blank, a comment, a table header, a key = value.
func ParseExample(src []byte) (*Example, error) {
	ex := &Example{Tables: []Table{{}}}
	var comment []string // the comment block above the next key or table
	joinable := false    // the previous line was a key: a bare key joins it
	inHead := true
	table := func() *Table { return &ex.Tables[len(ex.Tables)-1] }
	for i, raw := range strings.Split(string(src), "\n") {
		line := strings.TrimSpace(raw)
		commented := strings.HasPrefix(line, "#")
		text := line
		if commented {
			// One space after the # is the comment's margin; more is indentation.
			text = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		}
		switch {
		case line == "":
			if inHead && len(comment) > 0 {
				ex.Head = joinComment(ex.Head, comment)
				comment = nil
			} else if len(comment) > 0 {
				// A comment block that stands alone belongs to its table.
				table().Doc = joinComment(table().Doc, comment)
				comment = nil
			}
			joinable = false
		case tableLine.MatchString(text):
			inHead = false
			ex.Tables = append(ex.Tables, Table{Name: tableLine.FindStringSubmatch(text)[1], Doc: joinComment("", comment)})
			comment, joinable = nil, false
		case keyLine.MatchString(text) && !strings.HasPrefix(text, " "):
			inHead = false
			name := keyLine.FindStringSubmatch(text)[1]
			setting, trailing := splitTrailingComment(text)
			t := table()
			if len(comment) > 0 || !joinable || len(t.Keys) == 0 {
				t.Keys = append(t.Keys, Key{Doc: joinComment("", comment)})
				comment = nil
			}
			k := &t.Keys[len(t.Keys)-1]
			k.Names = append(k.Names, name)
			k.Lines = append(k.Lines, setting)
			if trailing != "" {
				k.Doc = strings.TrimSpace(k.Doc + "\n\n" + name + ": " + trailing)
			}
			joinable = true
		case commented:
			comment = append(comment, text)
			joinable = false
		default:
			return nil, fmt.Errorf("line %d: %q is not a comment, a [table] or a key = value", i+1, line)
		}
	}
	if len(comment) > 0 {
		table().Doc = joinComment(table().Doc, comment)
	}
	return ex, nil
}

// joinComment appends a comment block to doc, a paragraph of its own; an
// empty comment line ("#") is a paragraph break.
func joinComment(doc string, block []string) string {
	if len(block) == 0 {
		return doc
	}
	text := strings.TrimSpace(strings.Join(block, "\n"))
	if doc == "" {
		return text
	}
	return doc + "\n\n" + text
}

// splitTrailingComment splits `insecure = false   # only on a test network`
// at the first # outside a quoted string.
func splitTrailingComment(s string) (setting, comment string) {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == '#':
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		}
	}
	return strings.TrimSpace(s), ""
}

// Keys writes a subsection per table with its comment, and a tagged
// paragraph per key: the settings as the example writes them, then their
// comment.
func (ex *Example) Keys(w io.Writer) {
	for _, t := range ex.Tables {
		if t.Name == "" && t.Doc == "" && len(t.Keys) == 0 {
			continue
		}
		if t.Name == "" {
			fmt.Fprintln(w, ".SS \"Top level\"")
		} else {
			fmt.Fprintf(w, ".SS \"[%s]\"\n", Escape(t.Name))
		}
		if t.Doc != "" {
			Text(w, t.Doc)
		}
		for _, k := range t.Keys {
			for i, l := range k.Lines {
				if i == 0 {
					fmt.Fprintln(w, ".TP")
				} else {
					fmt.Fprintln(w, ".TQ")
				}
				fmt.Fprintf(w, "\\fB%s\\fR\n", Escape(l))
			}
			if k.Doc == "" {
				continue
			}
			for j, para := range strings.Split(k.Doc, "\n\n") {
				if j > 0 {
					fmt.Fprintln(w, ".IP")
				}
				keyParagraph(w, para)
			}
		}
	}
}

// keyParagraph writes one paragraph of a key's comment inside its tagged
// paragraph: filled, or as written when it has indented lines.
func keyParagraph(w io.Writer, para string) {
	lines := strings.Split(para, "\n")
	verbatim := false
	for _, l := range lines {
		verbatim = verbatim || strings.HasPrefix(l, " ")
	}
	if verbatim {
		fmt.Fprintln(w, ".nf")
	}
	for _, l := range lines {
		if !verbatim {
			l = strings.TrimSpace(l)
		}
		fmt.Fprintln(w, Escape(l))
	}
	if verbatim {
		fmt.Fprintln(w, ".fi")
	}
}
