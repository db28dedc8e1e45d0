package templates

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// Pair is one key-value pair as `ls`, `kvs` and `gets` return it.
type Pair struct {
	Key   string // the full key
	Rel   string // the key relative to the prefix asked for (for `ls`: the child's name)
	Value string
}

// String is Rel, so that a pair printed as it is shows the child's name:
// confd's `{{ range ls "/p" }}{{ . }}{{ end }}` lists names, while
// consul-template's .Key and .Value keep working on the same pairs.
func (p Pair) String() string { return p.Rel }

var (
	baseOnce sync.Once
	baseMap  template.FuncMap
)

// baseFuncs is sprig's function map plus the store-independent functions
// consul-template and confd users rely on where sprig lacks them. It is
// built once; callers must not modify it.
func baseFuncs() template.FuncMap {
	baseOnce.Do(func() {
		m := sprig.TxtFuncMap()
		// Keep renders pure and repeatable: no DNS lookups.
		delete(m, "getHostByName")
		for name, f := range map[string]any{
			"toYaml":       toYaml,
			"toYAML":       toYaml,
			"fromYaml":     fromYaml,
			"parseYAML":    fromYaml,
			"toJSON":       m["toJson"],
			"toJSONPretty": m["toPrettyJson"],
			"parseJSON":    fromJSONValue,
			"json":         fromJSONObject,
			"jsonArray":    fromJSONArray,
			"parseBool":    strconv.ParseBool,
			"parseInt":     func(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) },
			"parseFloat":   func(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) },
			"toUpper":      strings.ToUpper,
			"toLower":      strings.ToLower,
			"base64Encode": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
			"base64Decode": base64Decode,
			"getenv":       getenv,
			"datetime":     time.Now,
			// sprig's keys and values follow Go's random map order; a
			// render must not change when nothing changed.
			"keys":   sortedKeys,
			"values": sortedValues,
		} {
			m[name] = f
		}
		baseMap = m
	})
	return baseMap
}

// sortedKeys is sprig's keys, sorted (for several dicts: sorted within
// each, in order of the dicts, as sprig appends them).
func sortedKeys(dicts ...map[string]any) []string {
	out := []string{}
	for _, d := range dicts {
		start := len(out)
		for k := range d {
			out = append(out, k)
		}
		sort.Strings(out[start:])
	}
	return out
}

// sortedValues is sprig's values, in key order.
func sortedValues(d map[string]any) []any {
	keys := sortedKeys(d)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = d[k]
	}
	return out
}

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("decode base64: %w", err)
	}
	return string(b), nil
}

// getenv is confd's getenv: the variable's value, or the first default when
// it is unset or empty.
func getenv(name string, def ...string) string {
	if v := os.Getenv(name); v != "" || len(def) == 0 {
		return v
	}
	return def[0]
}

func fromJSONValue(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	return v, nil
}

func fromJSONObject(s string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	return v, nil
}

func fromJSONArray(s string) ([]any, error) {
	var v []any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode JSON array: %w", err)
	}
	return v, nil
}

// funcs returns the store functions bound to r. Parse binds them to an empty
// render only so that the names are known; Render binds a fresh one.
func (r *render) funcs() template.FuncMap {
	return template.FuncMap{
		"key":          r.key,
		"keyOrDefault": r.keyOrDefault,
		"exists":       r.exists,
		"keyExists":    r.exists,
		"ls":           r.ls,
		"lsdir":        r.lsdir,
		"kvs":          r.kvs,
		"tree":         r.tree,
		"services":     r.services,
		"getv":         r.getv,
		"getvs":        r.getvs,
		"gets":         r.gets,
		"hostname":     r.hostname,
	}
}

// get reads key and records it as a dependency.
func (r *render) get(fn, key string) (string, bool, error) {
	r.keys[key] = true
	v, ok, err := r.view.Get(key)
	if err != nil {
		return "", false, fnErr(fn, err)
	}
	return string(v), ok, nil
}

// list reads every pair under prefix and records the prefix.
func (r *render) list(fn, prefix string) ([]KV, error) {
	r.prefixes[prefix] = true
	kvs, err := r.view.List(prefix)
	if err != nil {
		return nil, fnErr(fn, err)
	}
	return kvs, nil
}

// missing handles a missing key under ErrorOnMissingKey: while collecting
// it notes the key and lets the render go on (returning nil), else it fails.
func (r *render) missing(fn, key string) error {
	if r.collect {
		if !slices.Contains(r.missingKeys, key) {
			r.missingKeys = append(r.missingKeys, key)
		}
		return nil
	}
	return fnErr(fn, &MissingKeyError{Template: r.tmplName, Keys: []string{key}})
}

// key is consul-template's key: the value, or (when missing) "" or a
// MissingKeyError under ErrorOnMissingKey.
func (r *render) key(k string) (string, error) {
	v, ok, err := r.get("key", k)
	if err != nil {
		return "", err
	}
	if !ok && r.opts.ErrorOnMissingKey {
		return "", r.missing("key", k)
	}
	return v, nil
}

func (r *render) keyOrDefault(k, def string) (string, error) {
	v, ok, err := r.get("keyOrDefault", k)
	if err != nil || !ok {
		return def, err
	}
	return v, nil
}

func (r *render) exists(k string) (bool, error) {
	_, ok, err := r.get("exists", k)
	return ok, err
}

// getv is confd's getv: the value, else the default if one is given, else
// like key.
func (r *render) getv(k string, def ...string) (string, error) {
	if len(def) > 1 {
		return "", fnErr("getv", fmt.Errorf("getv %s: takes at most one default, got %d", k, len(def)))
	}
	v, ok, err := r.get("getv", k)
	if err != nil {
		return "", err
	}
	if !ok {
		if len(def) == 1 {
			return def[0], nil
		}
		if r.opts.ErrorOnMissingKey {
			return "", r.missing("getv", k)
		}
	}
	return v, nil
}

// dirPrefix turns "/a/b" into "/a/b/", so that "/a/bc" is not under it.
func dirPrefix(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// ls lists the direct children of prefix that have values.
func (r *render) ls(prefix string) ([]Pair, error) {
	dir := dirPrefix(prefix)
	kvs, err := r.list("ls", dir)
	if err != nil {
		return nil, err
	}
	out := []Pair{}
	for _, kv := range kvs {
		rel := kv.Key[len(dir):]
		if rel == "" || strings.Contains(rel, "/") {
			continue
		}
		out = append(out, Pair{Key: kv.Key, Rel: rel, Value: string(kv.Value)})
	}
	return out, nil
}

// lsdir lists the names of the children of prefix that have children.
func (r *render) lsdir(prefix string) ([]string, error) {
	dir := dirPrefix(prefix)
	kvs, err := r.list("lsdir", dir)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, kv := range kvs {
		rel := kv.Key[len(dir):]
		i := strings.IndexByte(rel, '/')
		if i <= 0 {
			continue
		}
		if name := rel[:i]; len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
	}
	// Keys are sorted, so names arrive in order, but "a/x" < "a-b/x" < "a/y"
	// can interleave them: sort and deduplicate again.
	sort.Strings(out)
	return compactStrings(out), nil
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || s[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// kvs lists every pair under prefix, at any depth.
func (r *render) kvs(prefix string) ([]Pair, error) {
	dir := dirPrefix(prefix)
	kvs, err := r.list("kvs", dir)
	if err != nil {
		return nil, err
	}
	out := make([]Pair, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, Pair{Key: kv.Key, Rel: kv.Key[len(dir):], Value: string(kv.Value)})
	}
	return out, nil
}

// globList lists the pairs whose keys match the path.Match pattern.
func (r *render) globList(fn, pattern string) ([]KV, string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, "", fnErr(fn, fmt.Errorf("pattern %q: %w (see path.Match)", pattern, err))
	}
	fixed := pattern
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		fixed = pattern[:i]
	}
	dir := fixed[:strings.LastIndexByte(fixed, '/')+1]
	kvs, err := r.list(fn, dir)
	if err != nil {
		return nil, "", err
	}
	out := kvs[:0:0]
	for _, kv := range kvs {
		if ok, _ := path.Match(pattern, kv.Key); ok {
			out = append(out, kv)
		}
	}
	return out, dir, nil
}

// getvs is confd's getvs: the values of the keys matching pattern, in key
// order.
func (r *render) getvs(pattern string) ([]string, error) {
	kvs, _, err := r.globList("getvs", pattern)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Value)
	}
	return out, nil
}

// gets is confd's gets: the pairs whose keys match pattern, in key order.
func (r *render) gets(pattern string) ([]Pair, error) {
	kvs, dir, err := r.globList("gets", pattern)
	if err != nil {
		return nil, err
	}
	out := make([]Pair, len(kvs))
	for i, kv := range kvs {
		out[i] = Pair{Key: kv.Key, Rel: kv.Key[len(dir):], Value: string(kv.Value)}
	}
	return out, nil
}

func (r *render) tree(prefix string) (map[string]any, error) {
	dir := dirPrefix(prefix)
	kvs, err := r.list("tree", dir)
	if err != nil {
		return nil, err
	}
	m, err := buildTree(dir, kvs)
	if err != nil {
		return nil, fnErr("tree", err)
	}
	return m, nil
}

func (r *render) services(prefix string) ([]Service, error) {
	dir := dirPrefix(prefix)
	kvs, err := r.list("services", dir)
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(kvs))
	for _, kv := range kvs {
		s, err := parseService(kv)
		if err != nil {
			return nil, fnErr("services", err)
		}
		out = append(out, s)
	}
	return out, nil
}
