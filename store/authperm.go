package store

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
)

// Permission ranges, as etcd's range permission cache decides them:
//
//   - a permission with no range end is the one key: [key, key+"\x00");
//   - a range end of "\x00" is open: every key from key on;
//   - otherwise it is [key, end).
//
// A user's ranges (from all its roles) are merged into disjoint, sorted
// ranges, touching ones joined. A request for one key is allowed when a range
// holds the key; a request for a range when one merged range covers all of
// it, which is etcd's "the permissions cover the interval without a gap".

// keyRange is [begin, end); end "" means no end.
type keyRange struct{ begin, end string }

// keyRanges are sorted by begin and disjoint.
type keyRanges []keyRange

type userPerms struct{ read, write keyRanges }

// endLess orders range ends, "" (no end) above every key.
func endLess(a, b string) bool {
	switch {
	case a == "":
		return false
	case b == "":
		return true
	}
	return a < b
}

// validPermRange is etcd's check on a granted permission: a key, and an end
// that is empty, "\x00", or above the key.
func validPermRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(end) == 0 || isOpenEnd(end) {
		return true
	}
	return bytes.Compare(key, end) < 0
}

func isOpenEnd(end []byte) bool { return len(end) == 1 && end[0] == 0 }

func permRange(p *authpb.Permission) keyRange {
	switch {
	case len(p.RangeEnd) == 0:
		return keyRange{string(p.Key), string(p.Key) + "\x00"}
	case isOpenEnd(p.RangeEnd):
		return keyRange{string(p.Key), ""}
	}
	return keyRange{string(p.Key), string(p.RangeEnd)}
}

// mergePerms builds every user's merged ranges.
func mergePerms(st *authState) map[string]*userPerms {
	out := make(map[string]*userPerms, len(st.users))
	for name, u := range st.users {
		var read, write keyRanges
		for _, rn := range u.Roles {
			role, ok := st.roles[rn]
			if !ok {
				continue
			}
			for _, p := range role.KeyPermission {
				r := permRange(p)
				if r.end != "" && r.end <= r.begin {
					continue // never granted: validPermRange refuses it
				}
				switch p.PermType {
				case authpb.Permission_READ:
					read = append(read, r)
				case authpb.Permission_WRITE:
					write = append(write, r)
				case authpb.Permission_READWRITE:
					read = append(read, r)
					write = append(write, r)
				}
			}
		}
		out[name] = &userPerms{read: read.merge(), write: write.merge()}
	}
	return out
}

func (rs keyRanges) merge() keyRanges {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b keyRange) int { return strings.Compare(a.begin, b.begin) })
	out := keyRanges{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if last.end == "" || r.begin <= last.end {
			if endLess(last.end, r.end) {
				last.end = r.end
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// holding returns the range that holds key, if any.
func (rs keyRanges) holding(key string) (keyRange, bool) {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].begin > key }) - 1
	if i < 0 || !endLess(key, rs[i].end) {
		return keyRange{}, false
	}
	return rs[i], true
}

// cover reports whether the ranges allow a request on key (end empty) or on
// [key, end) ("\x00": no end). A range whose end is at or below its key
// stands for key alone, as in etcd's interval tree.
func (rs keyRanges) cover(key, end []byte) bool {
	r, ok := rs.holding(string(key))
	if !ok {
		return false
	}
	switch {
	case len(end) == 0:
		return true
	case isOpenEnd(end):
		return r.end == ""
	case bytes.Compare(end, key) <= 0:
		return true
	}
	return !endLess(r.end, string(end))
}
