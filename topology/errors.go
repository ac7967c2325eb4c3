package topology

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a topology, pointing at the file, line and field
// that caused it and saying what would have been accepted.
type FieldError struct {
	Pos     Position
	Field   string // dotted path as written in YAML: spec.dnsNames[1]
	Msg     string // what is wrong
	Allowed string // what is allowed, empty when there is nothing useful to add
}

func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Pos.File != "" && e.Pos.Line == 0:
		// A problem with a whole file (its size) or directory has no line.
		fmt.Fprintf(&b, "%s: ", e.Pos.File)
	case e.Pos.File != "":
		fmt.Fprintf(&b, "%s:%d:%d: ", e.Pos.File, e.Pos.Line, e.Pos.Col)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Allowed != "" {
		fmt.Fprintf(&b, " (%s)", e.Allowed)
	}
	return b.String()
}

// ErrorList collects every problem found, so a user fixes them in one pass.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	l.Sort()
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Sort orders errors by file, line, column, then text, so output is stable.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Error() < b.Error()
	})
}

// Err returns nil for an empty list, so callers can `return errs.Err()`.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// errAt builds a FieldError at the position the origin recorded for field.
func errAt(o Origin, field, msg, allowed string) *FieldError {
	return &FieldError{Pos: o.At(field), Field: field, Msg: msg, Allowed: allowed}
}
