package templates

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/tendkv/tend/internal/typo"
)

// MissingKeyError lists the keys a render needed but did not find.
type MissingKeyError struct {
	Template string
	Keys     []string
}

func (e *MissingKeyError) Error() string {
	switch len(e.Keys) {
	case 0:
		return "missing key"
	case 1:
		return "missing key " + e.Keys[0]
	}
	return "missing key " + e.Keys[0] + " (also missing: " + strings.Join(e.Keys[1:], ", ") + ")"
}

// Error is a parse or render error at a place in a template. Its text is
// "NAME:LINE:COL: executing \"FUNC\": MESSAGE" when a function failed,
// "NAME:LINE:COL: MESSAGE" otherwise (COL is 0 when text/template does not
// know it, and is then left out).
type Error struct {
	Template string
	Line     int
	Col      int
	Func     string // the function that failed, if any
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Template)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Func != "" {
		fmt.Fprintf(&b, "executing %q: ", e.Func)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// funcError is what a store function returns, so that the render error can
// name the function.
type funcError struct {
	fn  string
	err error
}

func (e *funcError) Error() string { return e.err.Error() }
func (e *funcError) Unwrap() error { return e.err }

func fnErr(fn string, err error) error { return &funcError{fn: fn, err: err} }

// parseError turns text/template's "template: NAME:LINE: MSG" into an *Error,
// suggesting a function for an unknown one.
func parseError(name string, err error) error {
	msg := err.Error()
	line, rest := splitPlace(name, msg)
	if fn, ok := undefinedFunc(rest); ok {
		if s := suggestFunc(fn); s != "" {
			rest += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	if rest == "unexpected EOF" {
		rest += " (an if, range, with, block or define action lacks its end)"
	}
	return &Error{Template: name, Line: line, Err: errors.New(rest)}
}

// execError turns a text/template execution error into an *Error naming the
// place and, when a function failed, the function.
func execError(name string, err error) error {
	var ee template.ExecError
	if !errors.As(err, &ee) {
		return &Error{Template: name, Err: err}
	}
	msg := ee.Err.Error()
	line, rest := splitPlace(name, msg)
	col := 0
	if i := strings.Index(rest, ": "); i > 0 {
		if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
			col, rest = n, rest[i+2:]
		}
	}
	out := &Error{Template: name, Line: line, Col: col}
	var fe *funcError
	if errors.As(err, &fe) {
		out.Func, out.Err = fe.fn, fe.err
		return out
	}
	// rest is `executing "NAME" at <CONTEXT>: MESSAGE`.
	if i := strings.Index(rest, ": error calling "); i >= 0 {
		call := rest[i+len(": error calling "):]
		if j := strings.Index(call, ": "); j > 0 {
			out.Func, out.Err = call[:j], errors.New(call[j+2:])
			// text/template wraps the function's error with %w: keep it,
			// so that errors.Is and errors.As reach it.
			if inner := errors.Unwrap(ee.Err); inner != nil && inner.Error() == call[j+2:] {
				out.Err = inner
			}
			return out
		}
	}
	if strings.HasPrefix(rest, "executing ") {
		if i := strings.Index(rest, " at <"); i >= 0 {
			rest = rest[i+1:]
		}
	}
	out.Err = errors.New(rest)
	return out
}

// splitPlace strips "template: NAME:" and a line number from msg.
func splitPlace(name, msg string) (line int, rest string) {
	rest = strings.TrimPrefix(msg, "template: ")
	if !strings.HasPrefix(rest, name+":") {
		return 0, rest
	}
	after := rest[len(name)+1:]
	i := strings.IndexByte(after, ':')
	if i <= 0 {
		return 0, rest
	}
	n, err := strconv.Atoi(after[:i])
	if err != nil {
		return 0, rest
	}
	return n, strings.TrimPrefix(after[i+1:], " ")
}

func undefinedFunc(msg string) (string, bool) {
	const pre, post = `function "`, `" not defined`
	if !strings.HasPrefix(msg, pre) || !strings.HasSuffix(msg, post) {
		return "", false
	}
	return msg[len(pre) : len(msg)-len(post)], true
}

// suggestFunc returns the known function nearest to fn, or "" if none is
// close.
func suggestFunc(fn string) string {
	names := make([]string, 0, 256)
	for n := range baseFuncs() {
		names = append(names, n)
	}
	for n := range (&render{}).funcs() {
		names = append(names, n)
	}
	sort.Strings(names)
	// Allow one edit per three letters, at least one.
	best, bestD := "", max(1, len(fn)/3)+1
	lower := strings.ToLower(fn)
	for _, n := range names {
		if strings.ToLower(n) == lower {
			return n
		}
		if d := typo.Distance(fn, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}
