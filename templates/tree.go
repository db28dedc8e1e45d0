package templates

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// treeNode is one path segment while a tree is being built.
type treeNode struct {
	value    string
	hasValue bool
	children map[string]*treeNode
}

// buildTree turns the pairs under dir into nested maps and lists:
//
//  1. A key's path below dir, split at "/" (empty segments dropped), names
//     its place: "/app/db/port" under "/app/" is tree.db.port.
//  2. A key that is both a value and a parent ("/app/db" and "/app/db/port")
//     becomes the parent: the subtree wins and the key's own value is
//     dropped. A key ending in "/" (a folder marker) is an empty mapping
//     unless something is under it.
//  3. When every child of a node has an all-digit name, the node is a list,
//     ordered by the names' numeric values ("2" before "10"); gaps close up.
//  4. Leaves are typed as a person would write them in YAML: "true" and
//     "false" are booleans, integers in canonical form ("42", "-7", not
//     "042" or "+7") are ints, decimals that read back the same ("1.5", not
//     "1.50" or "1.0") are float64s; everything else is a string.
//  5. Two keys with the same path ("/app//a" and "/app/a"): the later key
//     in key order wins.
//  6. A key more than maxTreeDepth segments below dir is an error: its YAML
//     would grow with the square of its depth.
func buildTree(dir string, kvs []KV) (map[string]any, error) {
	root := &treeNode{}
	for _, kv := range kvs {
		rel := kv.Key[len(dir):]
		n := root
		depth := 0
		for rest := rel; rest != ""; {
			var seg string
			seg, rest, _ = strings.Cut(rest, "/")
			if seg == "" {
				continue
			}
			if depth++; depth > maxTreeDepth {
				return nil, fmt.Errorf("key %s: more than %d levels below %s; keep tree to shallower keys or read this one with key", shorten(kv.Key), maxTreeDepth, dir)
			}
			if n.children == nil {
				n.children = map[string]*treeNode{}
			}
			c := n.children[seg]
			if c == nil {
				c = &treeNode{}
				n.children[seg] = c
			}
			n = c
		}
		if n == root || strings.HasSuffix(rel, "/") {
			continue // the prefix itself, or a folder marker
		}
		n.value, n.hasValue = string(kv.Value), true
	}
	m, _ := root.mapValue().(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// maxTreeDepth bounds how deep tree nests and toYaml writes.
const maxTreeDepth = 100

// shorten cuts s for an error message.
func shorten(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:77] + "..."
}

func (n *treeNode) mapValue() any {
	if len(n.children) == 0 {
		if n.hasValue {
			return typedLeaf(n.value)
		}
		return map[string]any{}
	}
	names := make([]string, 0, len(n.children))
	numeric := true
	for name := range n.children {
		names = append(names, name)
		if numeric && !allDigits(name) {
			numeric = false
		}
	}
	if numeric {
		sort.Slice(names, func(i, j int) bool { return numLess(names[i], names[j]) })
		list := make([]any, len(names))
		for i, name := range names {
			list[i] = n.children[name].mapValue()
		}
		return list
	}
	m := make(map[string]any, len(names))
	for _, name := range names {
		m[name] = n.children[name].mapValue()
	}
	return m
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numLess orders all-digit strings by value, then by text ("1" < "01").
func numLess(a, b string) bool {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		return len(ta) < len(tb)
	}
	if ta != tb {
		return ta < tb
	}
	return a < b
}

// typedLeaf is rule 4 of buildTree.
func typedLeaf(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if len(s) == 0 || len(s) > 40 {
		return s
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	intPart, frac, isDec := strings.Cut(digits, ".")
	if !allDigits(intPart) || (len(intPart) > 1 && intPart[0] == '0') {
		return s
	}
	if !isDec {
		if s == "-0" {
			return s
		}
		if i, err := strconv.Atoi(s); err == nil {
			return i
		}
		return s
	}
	if !allDigits(frac) {
		return s
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == s {
		return f
	}
	return s
}
