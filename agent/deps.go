package agent

import (
	"sort"
	"strings"

	"github.com/tendkv/tend/templates"
)

// target is one thing a watch covers: a single key, or every key under a
// prefix.
type target struct {
	key    string
	prefix bool
}

// covers reports whether a change to key concerns t.
func (t target) covers(key string) bool {
	if t.prefix {
		return strings.HasPrefix(key, t.key)
	}
	return key == t.key
}

// mergeTargets returns the fewest watches that cover every key and prefix
// in deps: a prefix inside another prefix needs no watch of its own, nor
// does a key under a watched prefix. The result is sorted.
func mergeTargets(deps ...templates.Deps) []target {
	var prefixes, keys []string
	for _, d := range deps {
		prefixes = append(prefixes, d.Prefixes...)
		keys = append(keys, d.Keys...)
	}
	sort.Strings(prefixes)
	var out []target
	var kept []string
	for _, p := range prefixes {
		// Sorted, so a covering prefix comes before everything it covers.
		if n := len(kept); n > 0 && strings.HasPrefix(p, kept[n-1]) {
			continue
		}
		kept = append(kept, p)
		out = append(out, target{key: p, prefix: true})
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		if coveredBy(kept, k) {
			continue
		}
		out = append(out, target{key: k})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].key != out[j].key {
			return out[i].key < out[j].key
		}
		return out[i].prefix && !out[j].prefix
	})
	return out
}

// coveredBy reports whether key lies under one of the sorted prefixes.
func coveredBy(prefixes []string, key string) bool {
	i := sort.SearchStrings(prefixes, key)
	// The covering prefix sorts at or before key; kept prefixes never nest,
	// so only the nearest one at or before key can cover it.
	if i < len(prefixes) && prefixes[i] == key {
		return true
	}
	return i > 0 && strings.HasPrefix(key, prefixes[i-1])
}

// depsCover reports whether a change to key concerns a render that read d.
func depsCover(d templates.Deps, key string) bool {
	for _, k := range d.Keys {
		if k == key {
			return true
		}
	}
	for _, p := range d.Prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// depsWithin reports whether some key or prefix of d lies within t.
func depsWithin(d templates.Deps, t target) bool {
	for _, k := range d.Keys {
		if t.covers(k) {
			return true
		}
	}
	for _, p := range d.Prefixes {
		if p == t.key || (t.prefix && strings.HasPrefix(p, t.key)) {
			return true
		}
	}
	return false
}
