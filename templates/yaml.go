package templates

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// toYaml renders v as block YAML the way a person writes application.yml:
//
//  1. Mappings in sorted key order (struct fields in declaration order,
//     lower-cased like yaml.v3 names them), lists in order, 2-space
//     indentation, a list under a key indented below it.
//  2. Ints, floats and bools plain; float64s that hold a whole number (as
//     JSON numbers arrive) written as ints.
//  3. Strings plain unless a YAML 1.1 reader (SnakeYAML in Spring Boot,
//     PyYAML) or a YAML 1.2 reader (yaml.v3) would read the plain form as
//     something else or not at all: "yes", "on", "0123", "1e3", "1.10",
//     "2024-01-01", "" and "null" are double quoted, strings with ": ", " #"
//     or a leading indicator ("- x", "*x", "&x") single quoted, strings with
//     control characters double quoted with escapes, multi-line strings as
//     literal blocks ("|", "|-", "|+"), invalid UTF-8 as !!binary.
//  4. No document markers, and (like Helm's toYaml) no final newline: end
//     the line in the template.
//
// The text is written by this file rather than by yaml.v3's encoder, which
// is several times slower; the tests read every output back with yaml.v3
// and yaml.v2 and compare.
func toYaml(v any) (string, error) {
	y, err := yamlValue(v, 0)
	if err != nil {
		return "", err
	}
	var e yamlEmitter
	e.top(y)
	return strings.TrimSuffix(e.b.String(), "\n"), nil
}

// fromYaml decodes one YAML document into maps, lists and scalars.
func fromYaml(s string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	return v, nil
}

// yamlMap is a mapping in output order.
type yamlMap []yamlEntry

type yamlEntry struct {
	key string
	val any
}

// yamlFloat and yamlInt are numbers already formatted.
type (
	yamlFloat string
	yamlInt   string
)

// yamlValue turns v into what the emitter writes: nil, bool, yamlInt,
// yamlFloat, string, yamlMap or []any. The types tree and the JSON and YAML
// decoders make take a fast path; the rest go through reflection.
func yamlValue(v any, depth int) (any, error) {
	if depth > maxTreeDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxTreeDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string, bool:
		return x, nil
	case int:
		return yamlInt(strconv.Itoa(x)), nil
	case int64:
		return yamlInt(strconv.FormatInt(x, 10)), nil
	case float64:
		return formatFloat(x), nil
	case map[string]any:
		m := make(yamlMap, 0, len(x))
		for k, e := range x {
			val, err := yamlValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			m = append(m, yamlEntry{key: k, val: val})
		}
		sort.Slice(m, func(i, j int) bool { return m[i].key < m[j].key })
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			val, err := yamlValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = val
		}
		return l, nil
	}
	return reflectYamlValue(reflect.ValueOf(v), depth)
}

func reflectYamlValue(v reflect.Value, depth int) (any, error) {
	if depth > maxTreeDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxTreeDepth)
	}
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil, nil
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return yamlInt(strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return yamlInt(strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return formatFloat(v.Float()), nil
	case reflect.Map:
		m := make(yamlMap, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			val, err := reflectYamlValue(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			m = append(m, yamlEntry{key: fmt.Sprint(it.Key().Interface()), val: val})
		}
		sort.Slice(m, func(i, j int) bool { return m[i].key < m[j].key })
		return m, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return string(v.Bytes()), nil
		}
		l := make([]any, v.Len())
		for i := range l {
			val, err := reflectYamlValue(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = val
		}
		return l, nil
	case reflect.Struct:
		t := v.Type()
		m := yamlMap{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.ToLower(f.Name)
			if tag := f.Tag.Get("yaml"); tag != "" {
				if tag == "-" {
					continue
				}
				if n, _, _ := strings.Cut(tag, ","); n != "" {
					name = n
				}
			}
			val, err := reflectYamlValue(v.Field(i), depth+1)
			if err != nil {
				return nil, err
			}
			m = append(m, yamlEntry{key: name, val: val})
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot write a %s as YAML", v.Type())
}

func formatFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return yamlFloat(".nan")
	case math.IsInf(f, 1):
		return yamlFloat(".inf")
	case math.IsInf(f, -1):
		return yamlFloat("-.inf")
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		// JSON numbers arrive as float64; 8080 stays 8080.
		return yamlInt(strconv.FormatInt(int64(f), 10))
	}
	if a := math.Abs(f); a >= 1e-4 && a < 1e15 {
		return yamlFloat(strconv.FormatFloat(f, 'f', -1, 64))
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	if !strings.Contains(s, ".") {
		// YAML 1.1 wants a dot in an exponent form: 1e+21 -> 1.0e+21.
		mant, exp, _ := strings.Cut(s, "e")
		s = mant + ".0e" + exp
	}
	return yamlFloat(s)
}

type yamlEmitter struct {
	b strings.Builder
}

func (e *yamlEmitter) indent(n int) {
	for range n {
		e.b.WriteByte(' ')
	}
}

// top writes a whole document.
func (e *yamlEmitter) top(v any) {
	switch x := v.(type) {
	case yamlMap:
		if len(x) > 0 {
			e.mapping(x, 0, false)
			return
		}
	case []any:
		if len(x) > 0 {
			e.sequence(x, 0, false)
			return
		}
	}
	e.inline(v, 0)
}

// inline writes a scalar, empty collection or literal block that starts
// where the cursor is; a literal block's lines go at indent+2.
func (e *yamlEmitter) inline(v any, indent int) {
	switch x := v.(type) {
	case nil:
		e.b.WriteString("null\n")
	case bool:
		e.b.WriteString(strconv.FormatBool(x))
		e.b.WriteByte('\n')
	case yamlInt:
		e.b.WriteString(string(x))
		e.b.WriteByte('\n')
	case yamlFloat:
		e.b.WriteString(string(x))
		e.b.WriteByte('\n')
	case yamlMap:
		e.b.WriteString("{}\n")
	case []any:
		e.b.WriteString("[]\n")
	case string:
		if strings.Contains(x, "\n") && utf8.ValidString(x) && literalFriendly(x) {
			e.literal(x, indent+2)
			return
		}
		e.b.WriteString(scalarText(x, false))
		e.b.WriteByte('\n')
	}
}

func isCollection(v any) bool {
	switch x := v.(type) {
	case yamlMap:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return false
}

// mapping writes entries with their keys at column indent; the first one
// starts at the cursor when inline (after "- ").
func (e *yamlEmitter) mapping(m yamlMap, indent int, inline bool) {
	for i, ent := range m {
		if i > 0 || !inline {
			e.indent(indent)
		}
		key := scalarText(ent.key, true)
		if len(key) > 1000 {
			// An implicit key is at most 1024 characters: use "? ".
			e.b.WriteString("? ")
			e.b.WriteString(key)
			e.b.WriteByte('\n')
			e.indent(indent)
		} else {
			e.b.WriteString(key)
		}
		e.b.WriteByte(':')
		switch x := ent.val.(type) {
		case yamlMap:
			if len(x) > 0 {
				e.b.WriteByte('\n')
				e.mapping(x, indent+2, false)
				continue
			}
		case []any:
			if len(x) > 0 {
				e.b.WriteByte('\n')
				e.sequence(x, indent+2, false)
				continue
			}
		}
		e.b.WriteByte(' ')
		e.inline(ent.val, indent)
	}
}

// sequence writes items with their dashes at column indent; the first one
// starts at the cursor when inline.
func (e *yamlEmitter) sequence(l []any, indent int, inline bool) {
	for i, item := range l {
		if i > 0 || !inline {
			e.indent(indent)
		}
		e.b.WriteString("- ")
		switch x := item.(type) {
		case yamlMap:
			if isCollection(x) {
				e.mapping(x, indent+2, true)
				continue
			}
		case []any:
			if isCollection(x) {
				e.sequence(x, indent+2, true)
				continue
			}
		}
		e.inline(item, indent)
	}
}

// literal writes s as a literal block scalar with its lines at indent.
func (e *yamlEmitter) literal(s string, indent int) {
	e.b.WriteByte('|')
	body := s
	switch {
	case strings.HasSuffix(s, "\n\n"):
		e.b.WriteByte('+')
		body = s[:len(s)-1]
	case strings.HasSuffix(s, "\n"):
		body = s[:len(s)-1]
	default:
		e.b.WriteByte('-')
	}
	e.b.WriteByte('\n')
	for _, line := range strings.Split(body, "\n") {
		if line != "" {
			e.indent(indent)
			e.b.WriteString(line)
		}
		e.b.WriteByte('\n')
	}
}

// literalFriendly reports whether multi-line s reads back exactly from a
// literal block: it starts with a visible character, and holds no
// characters but printable ones, tabs and newlines, and no line of only
// spaces at its end.
func literalFriendly(s string) bool {
	if s == "" || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' {
		return false
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if !unicode.IsPrint(r) || r == '\ufeff' {
			return false
		}
	}
	// Trailing lines of only blanks are folded into the chomping.
	trimmed := strings.TrimRight(s, "\n")
	last := trimmed[strings.LastIndexByte(trimmed, '\n')+1:]
	return strings.TrimLeft(last, " \t") != ""
}

// scalarText is s as a one-line YAML scalar: plain when every reader reads
// it back as this string, else single or double quoted, or !!binary.
func scalarText(s string, key bool) string {
	if !utf8.ValidString(s) {
		return "!!binary " + base64.StdEncoding.EncodeToString([]byte(s))
	}
	if !printable(s) {
		return doubleQuoted(s)
	}
	if yaml11Special(s) || yaml12Special(s) {
		return doubleQuoted(s)
	}
	if !plainSafe(s) {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return s
}

// printable reports whether s has only characters that may appear raw in a
// one-line scalar.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			for _, r := range s[i:] {
				if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) || r == '\ufeff' {
					return false
				}
			}
			return true
		}
	}
	return true
}

// plainSafe reports whether printable one-line s can be written without
// quotes: no indicator at its start, no ": " or " #" inside, no blanks at
// its ends.
func plainSafe(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || s[len(s)-1] == ':' {
		return false
	}
	switch s[0] {
	case '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		return false
	case '-', '?', ':':
		if len(s) == 1 || s[1] == ' ' {
			return false
		}
	}
	if strings.HasPrefix(s, "---") || strings.HasPrefix(s, "...") {
		return false
	}
	return !strings.Contains(s, ": ") && !strings.Contains(s, " #")
}

func doubleQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			switch {
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02X`, r)
			case r == '\ufeff' || (r >= 0x80 && !unicode.IsPrint(r)):
				if r <= 0xffff {
					fmt.Fprintf(&b, `\u%04X`, r)
				} else {
					fmt.Fprintf(&b, `\U%08X`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// yaml11Words are the plain scalars SnakeYAML (YAML 1.1) resolves to a
// bool, null, merge key or value key, plus PyYAML's y/n booleans.
var yaml11Words = map[string]bool{}

func init() {
	for _, w := range strings.Fields("y Y yes Yes YES n N no No NO true True TRUE false False FALSE " +
		"on On ON off Off OFF ~ null Null NULL << =") {
		yaml11Words[w] = true
	}
}

// yaml11Number matches SnakeYAML's int, float and timestamp forms.
var yaml11Number = regexp.MustCompile(`^(?:` +
	`[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` +
	`|[-+]?(?:\.[0-9]+|[0-9_]+(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?` +
	`)$`)

// yaml11Special reports whether a YAML 1.1 reader resolves the plain s to
// something other than a string.
func yaml11Special(s string) bool {
	if s == "" || yaml11Words[s] {
		return true
	}
	switch c := s[0]; {
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
	default:
		return false
	}
	// Skip the regexp for what cannot match: IP addresses and versions
	// (no form has two dots), long text, letters outside the forms.
	if len(s) > 64 || strings.Count(s, ".") > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' ||
			strings.IndexByte("_:.+-xXbBiInNtTzZ \t", c) >= 0) {
			return false
		}
	}
	return yaml11Number.MatchString(s)
}

var yaml12Float = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// yaml12Special reports (erring towards yes) whether yaml.v3 resolves the
// plain s to something other than a string: ints in any base with
// underscores, floats, timestamps.
func yaml12Special(s string) bool {
	c := s[0]
	switch {
	case c == '.':
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	case c != '-' && c != '+' && (c < '0' || c > '9'):
		return false
	}
	if len(s) >= 5 && allDigits(s[:4]) && s[4] == '-' {
		return true // maybe a timestamp
	}
	if strings.Count(s, ".") > 1 {
		return false // no number has two dots: IP addresses, versions
	}
	plain := strings.ReplaceAll(s, "_", "")
	if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return true
	}
	if yaml12Float.MatchString(plain) {
		return true
	}
	digits := strings.TrimLeft(plain, "+-")
	return strings.HasPrefix(digits, "0b") || strings.HasPrefix(digits, "0o") || strings.HasPrefix(digits, "0x")
}
