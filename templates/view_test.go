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
