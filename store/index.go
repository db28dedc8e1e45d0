package store

import (
	"bytes"
	"sort"
)

// generation is one life of a key: from its creation to its deletion
// (whose tombstone is the last revision of the generation).
type generation struct {
	ver     int64
	created revision
	revs    []revision
}

func (g *generation) empty() bool { return len(g.revs) == 0 }

// keyIndex is the history of one key, as etcd's keyIndex keeps it. The last
// generation is empty when the key is deleted.
type keyIndex struct {
	key  []byte
	gens []generation
}

func (ki *keyIndex) empty() bool {
	return len(ki.gens) == 1 && ki.gens[0].empty()
}

func (ki *keyIndex) live() bool {
	return len(ki.gens) > 0 && !ki.gens[len(ki.gens)-1].empty()
}

func (ki *keyIndex) put(r revision) {
	if len(ki.gens) == 0 {
		ki.gens = append(ki.gens, generation{})
	}
	g := &ki.gens[len(ki.gens)-1]
	if g.empty() {
		g.created = r
	}
	g.revs = append(g.revs, r)
	g.ver++
}

// restorePut records a stored put while rebuilding the index; the first
// retained put of a generation carries its creation and version.
func (ki *keyIndex) restorePut(r revision, created, ver int64) {
	if !ki.live() {
		if len(ki.gens) == 0 || !ki.gens[len(ki.gens)-1].empty() {
			ki.gens = append(ki.gens, generation{})
		}
		ki.gens[len(ki.gens)-1] = generation{created: revision{main: created}, ver: ver, revs: []revision{r}}
		return
	}
	g := &ki.gens[len(ki.gens)-1]
	g.revs = append(g.revs, r)
	g.ver = ver
}

// tombstone ends the current generation at r.
func (ki *keyIndex) tombstone(r revision) {
	if !ki.live() {
		// Rebuilding: the generation's puts were compacted away.
		if len(ki.gens) > 0 {
			ki.gens = ki.gens[:len(ki.gens)-1]
		}
		ki.gens = append(ki.gens, generation{ver: 1, revs: []revision{r}})
	} else {
		ki.put(r)
	}
	ki.gens = append(ki.gens, generation{})
}

// findGeneration returns the generation that holds the key at rev, or nil
// when the key did not exist then.
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.gens) - 1
	for i := last; i >= 0; i-- {
		g := &ki.gens[i]
		if g.empty() {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].main <= rev {
			return nil // deleted at or before rev
		}
		if g.revs[0].main <= rev {
			return g
		}
	}
	return nil
}

// get returns the key's state at rev: the revision of its value, its
// creation and its version.
func (ki *keyIndex) get(rev int64) (mod, created revision, ver int64, ok bool) {
	g := ki.findGeneration(rev)
	if g == nil {
		return revision{}, revision{}, 0, false
	}
	for n := len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= rev {
			return g.revs[n], g.created, g.ver - int64(len(g.revs)-n-1), true
		}
	}
	return revision{}, revision{}, 0, false
}

// doCompact finds the generation and revision that survive a compaction at
// atRev, recording into available the newest revision at or below atRev.
func (ki *keyIndex) doCompact(atRev int64, available map[revision]struct{}) (genIdx, revIdx int) {
	for genIdx < len(ki.gens)-1 {
		g := &ki.gens[genIdx]
		if g.revs[len(g.revs)-1].main >= atRev {
			break
		}
		genIdx++
	}
	// A txn that deletes the key and puts it again ends one generation and
	// starts the next at the same main revision: when that is atRev, the
	// key's state at atRev is in the later one.
	for genIdx+1 < len(ki.gens) && !ki.gens[genIdx+1].empty() && ki.gens[genIdx+1].revs[0].main <= atRev {
		genIdx++
	}
	g := &ki.gens[genIdx]
	revIdx = -1
	for n := len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= atRev {
			available[g.revs[n]] = struct{}{}
			revIdx = n
			break
		}
	}
	return genIdx, revIdx
}

// compact drops the history before atRev, keeping the newest revision at or
// below it (a tombstone only when it is exactly at atRev).
func (ki *keyIndex) compact(atRev int64, available map[revision]struct{}) {
	genIdx, revIdx := ki.doCompact(atRev, available)
	g := &ki.gens[genIdx]
	if !g.empty() && revIdx != -1 {
		g.revs = g.revs[revIdx:]
	}
	ki.gens = ki.gens[genIdx:]
}

// keep records what a compaction at atRev would keep, leaving out a
// tombstone (as etcd's hash does).
func (ki *keyIndex) keep(atRev int64, available map[revision]struct{}) {
	if ki.empty() {
		return
	}
	genIdx, revIdx := ki.doCompact(atRev, available)
	g := &ki.gens[genIdx]
	if !g.empty() && revIdx == len(g.revs)-1 && genIdx != len(ki.gens)-1 {
		delete(available, g.revs[revIdx])
	}
}

// index is the in-memory ordered map from key to keyIndex: a list of sorted
// blocks, cheap to insert into and to walk in key order.
type index struct {
	blocks [][]*keyIndex
	n      int
	// live counts the keys not deleted, kept by the write path (put,
	// delete) and counted once after a rebuild.
	live int
}

const maxIndexBlock = 512

// locate returns the block and position where key is or would be.
func (x *index) locate(key []byte) (bi, i int, found bool) {
	bi = sort.Search(len(x.blocks), func(b int) bool {
		blk := x.blocks[b]
		return bytes.Compare(blk[len(blk)-1].key, key) >= 0
	})
	if bi == len(x.blocks) {
		if bi == 0 {
			return 0, 0, false
		}
		bi--
		return bi, len(x.blocks[bi]), false
	}
	blk := x.blocks[bi]
	i = sort.Search(len(blk), func(j int) bool { return bytes.Compare(blk[j].key, key) >= 0 })
	return bi, i, i < len(blk) && bytes.Equal(blk[i].key, key)
}

func (x *index) get(key []byte) *keyIndex {
	bi, i, ok := x.locate(key)
	if !ok {
		return nil
	}
	return x.blocks[bi][i]
}

// getOrCreate returns the keyIndex of key, inserting an empty one.
func (x *index) getOrCreate(key []byte) *keyIndex {
	bi, i, ok := x.locate(key)
	if ok {
		return x.blocks[bi][i]
	}
	ki := &keyIndex{key: bytes.Clone(key)}
	x.n++
	if len(x.blocks) == 0 {
		x.blocks = append(x.blocks, []*keyIndex{ki})
		return ki
	}
	blk := append(x.blocks[bi], nil)
	copy(blk[i+1:], blk[i:])
	blk[i] = ki
	if len(blk) > maxIndexBlock {
		half := len(blk) / 2
		right := append([]*keyIndex(nil), blk[half:]...)
		left := blk[:half:half]
		x.blocks = append(x.blocks, nil)
		copy(x.blocks[bi+2:], x.blocks[bi+1:])
		x.blocks[bi] = left
		x.blocks[bi+1] = right
	} else {
		x.blocks[bi] = blk
	}
	return ki
}

func (x *index) remove(key []byte) {
	bi, i, ok := x.locate(key)
	if !ok {
		return
	}
	x.n--
	blk := x.blocks[bi]
	copy(blk[i:], blk[i+1:])
	blk[len(blk)-1] = nil
	blk = blk[:len(blk)-1]
	if len(blk) == 0 {
		x.blocks = append(x.blocks[:bi], x.blocks[bi+1:]...)
		return
	}
	x.blocks[bi] = blk
}

// visit calls fn for each keyIndex in [key, end) in key order (end empty:
// to the last key) until fn returns false.
func (x *index) visit(key, end []byte, fn func(*keyIndex) bool) {
	bi, i, _ := x.locate(key)
	for ; bi < len(x.blocks); bi, i = bi+1, 0 {
		blk := x.blocks[bi]
		for ; i < len(blk); i++ {
			if len(end) > 0 && bytes.Compare(blk[i].key, end) >= 0 {
				return
			}
			if !fn(blk[i]) {
				return
			}
		}
	}
}

// compact compacts every key at atRev and drops keys left without history;
// it returns the revisions the backend must keep.
func (x *index) compact(atRev int64) map[revision]struct{} {
	available := make(map[revision]struct{})
	var drop [][]byte
	x.visit(nil, nil, func(ki *keyIndex) bool {
		ki.compact(atRev, available)
		if ki.empty() {
			drop = append(drop, ki.key)
		}
		return true
	})
	for _, k := range drop {
		x.remove(k)
	}
	return available
}

// keep returns the revisions a compaction at atRev would keep (no
// tombstones).
func (x *index) keep(atRev int64) map[revision]struct{} {
	available := make(map[revision]struct{})
	x.visit(nil, nil, func(ki *keyIndex) bool {
		ki.keep(atRev, available)
		return true
	})
	return available
}

// countLive counts the keys that are not deleted, walking every key.
func (x *index) countLive() int {
	n := 0
	for _, blk := range x.blocks {
		for _, ki := range blk {
			if ki.live() {
				n++
			}
		}
	}
	return n
}
