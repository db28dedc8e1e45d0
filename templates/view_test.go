package templates

import (
	"sort"
	"strings"
)

// mapView is a View over a Go map, for tests.
type mapView map[string]string

func (m mapView) Get(key string) ([]byte, bool, error) {
	v, ok := m[key]
	if !ok {
		return nil, false, nil
	}
	return []byte(v), true, nil
}

func (m mapView) List(prefix string) ([]KV, error) {
	var out []KV
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KV{Key: k, Value: []byte(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// sortedView is a View over a sorted slice, so that List costs what a store
// read costs (a seek and a scan), not a sort: for benchmarks.
type sortedView []KV

func newSortedView(m mapView) sortedView {
	v, _ := m.List("")
	return v
}

func (v sortedView) Get(key string) ([]byte, bool, error) {
	i := sort.Search(len(v), func(i int) bool { return v[i].Key >= key })
	if i < len(v) && v[i].Key == key {
		return v[i].Value, true, nil
	}
	return nil, false, nil
}

func (v sortedView) List(prefix string) ([]KV, error) {
	i := sort.Search(len(v), func(i int) bool { return v[i].Key >= prefix })
	j := i
	for j < len(v) && strings.HasPrefix(v[j].Key, prefix) {
		j++
	}
	return v[i:j:j], nil
}
