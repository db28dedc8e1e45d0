package agent

import (
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/tendkv/tend/templates"
)

// mirror is the agent's copy of one watched key or prefix, fed by its
// watch: loaded with a Get at the revision of the first change the watch
// delivers (a target that never changes costs no memory), then changed by
// every later event, in order. A watch delivers a revision's events in one
// response, so after each response the mirror is the keyspace under its
// target exactly as it was at rev, and stays so until the next change
// there: a template that reads only under the target renders from it at
// rev with no round trip to the store.
//
// Only the loop's goroutine touches a mirror.
type mirror struct {
	target target
	rev    int64
	kvs    []templates.KV // sorted by key
}

// apply changes the mirror by the events of one watch response, all at or
// below rev.
func (m *mirror) apply(events []*mvccpb.Event, rev int64) {
	for _, e := range events {
		key := string(e.Kv.Key)
		i := sort.Search(len(m.kvs), func(i int) bool { return m.kvs[i].Key >= key })
		found := i < len(m.kvs) && m.kvs[i].Key == key
		switch {
		case e.Type == mvccpb.DELETE && found:
			m.kvs = append(m.kvs[:i], m.kvs[i+1:]...)
		case e.Type == mvccpb.PUT && found:
			m.kvs[i].Value = e.Kv.Value
		case e.Type == mvccpb.PUT:
			m.kvs = append(m.kvs, templates.KV{})
			copy(m.kvs[i+1:], m.kvs[i:])
			m.kvs[i] = templates.KV{Key: key, Value: e.Kv.Value}
		}
	}
	m.rev = max(m.rev, rev)
}

// holds reports whether every key and prefix of d lies under the mirror's
// target, so a render that reads what d names can read only the mirror.
func (m *mirror) holds(d templates.Deps) bool {
	if len(d.Keys)+len(d.Prefixes) == 0 {
		return false
	}
	for _, k := range d.Keys {
		if !m.target.covers(k) {
			return false
		}
	}
	for _, p := range d.Prefixes {
		if !m.holdsPrefix(p) {
			return false
		}
	}
	return true
}

func (m *mirror) holdsPrefix(p string) bool {
	return m.target.prefix && strings.HasPrefix(p, m.target.key)
}

// mirrorView reads the keyspace at m.rev from the mirror, and what lies
// outside it (a render may read keys it did not read before) from the
// store at the same revision.
type mirrorView struct {
	m     *mirror
	store *view
}

func (v mirrorView) Get(key string) ([]byte, bool, error) {
	if !v.m.target.covers(key) {
		return v.store.Get(key)
	}
	i := sort.Search(len(v.m.kvs), func(i int) bool { return v.m.kvs[i].Key >= key })
	if i < len(v.m.kvs) && v.m.kvs[i].Key == key {
		return v.m.kvs[i].Value, true, nil
	}
	return nil, false, nil
}

func (v mirrorView) List(prefix string) ([]templates.KV, error) {
	if !v.m.holdsPrefix(prefix) {
		return v.store.List(prefix)
	}
	lo := sort.Search(len(v.m.kvs), func(i int) bool { return v.m.kvs[i].Key >= prefix })
	hi := lo
	for hi < len(v.m.kvs) && strings.HasPrefix(v.m.kvs[hi].Key, prefix) {
		hi++
	}
	// A copy: the mirror changes under the next event.
	return append([]templates.KV(nil), v.m.kvs[lo:hi]...), nil
}

// newMirror is a mirror of t at rev holding kvs, a Get of t at rev.
func newMirror(t target, kvs []*mvccpb.KeyValue, rev int64) *mirror {
	m := &mirror{target: t, rev: rev, kvs: make([]templates.KV, 0, len(kvs))}
	for _, kv := range kvs {
		m.kvs = append(m.kvs, templates.KV{Key: string(kv.Key), Value: kv.Value})
	}
	sort.Slice(m.kvs, func(i, j int) bool { return m.kvs[i].Key < m.kvs[j].Key })
	return m
}
