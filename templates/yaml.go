package templates

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// toYaml renders v as a block YAML document with 2-space indentation, keys
// in sorted order and strings quoted only when a YAML 1.1 or 1.2 reader
// (SnakeYAML in Spring Boot, yaml.v3, PyYAML) would otherwise read them as
// something else. Like Helm's toYaml it drops the final newline.
func toYaml(v any) (string, error) {
	n, err := yamlNode(reflect.ValueOf(v))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode YAML: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// fromYaml decodes one YAML document into maps, lists and scalars.
func fromYaml(s string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	return v, nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// yamlNode builds the node for v: maps with sorted keys, slices in order,
// scalars with explicit tags.
func yamlNode(v reflect.Value) (*yaml.Node, error) {
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return scalar("!!null", "null"), nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return scalar("!!null", "null"), nil
	}
	switch v.Kind() {
	case reflect.String:
		return stringNode(v.String()), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return floatNode(v.Float()), nil
	case reflect.Map:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}, nil
		}
		type entry struct {
			key string
			val reflect.Value
		}
		entries := make([]entry, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			entries = append(entries, entry{key: fmt.Sprint(it.Key().Interface()), val: it.Value()})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if len(entries) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, e := range entries {
			c, err := yamlNode(e.val)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, stringNode(e.key), c)
		}
		return n, nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return stringNode(string(v.Bytes())), nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			c, err := yamlNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case reflect.Struct:
		// Exported fields in declaration order, named like yaml.v3 names
		// them (lower-cased) unless a yaml tag says otherwise.
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		t := v.Type()
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
			c, err := yamlNode(v.Field(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, stringNode(name), c)
		}
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	}
	return nil, fmt.Errorf("toYaml: cannot encode a %s", v.Type())
}

func floatNode(f float64) *yaml.Node {
	switch {
	case math.IsNaN(f):
		return scalar("!!float", ".nan")
	case math.IsInf(f, 1):
		return scalar("!!float", ".inf")
	case math.IsInf(f, -1):
		return scalar("!!float", "-.inf")
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		// JSON numbers arrive as float64; 8080 stays 8080.
		return scalar("!!int", strconv.FormatInt(int64(f), 10))
	}
	a := math.Abs(f)
	if a >= 1e-4 && a < 1e15 {
		return scalar("!!float", strconv.FormatFloat(f, 'f', -1, 64))
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	if !strings.Contains(s, ".") {
		// SnakeYAML wants a dot in an exponent form: 1e+21 -> 1.0e+21.
		mant, exp, _ := strings.Cut(s, "e")
		s = mant + ".0e" + exp
	}
	return scalar("!!float", s)
}

// stringNode is a string scalar, quoted when a YAML 1.1 reader would take its
// plain form for a bool, number, null, timestamp or merge key. yaml.v3 quotes
// the YAML 1.2 cases itself and uses a literal block for multi-line text.
func stringNode(s string) *yaml.Node {
	if !utf8.ValidString(s) {
		// yaml.v3 writes it as !!binary (base64), which reads back as s.
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	}
	n := scalar("!!str", s)
	if !strings.Contains(s, "\n") && yaml11Special(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// The plain scalars SnakeYAML (YAML 1.1) resolves to something other than a
// string, plus PyYAML's y/n booleans.
var yaml11 = regexp.MustCompile(`^(?:` +
	`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` +
	`|~|null|Null|NULL|<<|=` +
	`|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` +
	`|[-+]?(?:\.[0-9]+|[0-9_]+(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?` +
	`)$`)

func yaml11Special(s string) bool {
	return s == "" || yaml11.MatchString(s)
}
