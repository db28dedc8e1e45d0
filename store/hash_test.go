package store

import "testing"

// TestHashFollowsContentNotIndex: two stores given the same requests at
// different log indexes hash alike; a write changes the hash until the
// other store has it too.
func TestHashFollowsContentNotIndex(t *testing.T) {
	a := &applier{t: t, s: testStore(t, Options{})}
	b := &applier{t: t, s: testStore(t, Options{}), index: 100}
	hash := func(ap *applier) uint32 {
		t.Helper()
		h, rev, err := ap.s.Hash()
		if err != nil {
			t.Fatal(err)
		}
		if rev != ap.s.Rev() {
			t.Fatalf("hash at revision %d, store at %d", rev, ap.s.Rev())
		}
		return h
	}
	for _, ap := range []*applier{a, b} {
		ap.put("/a", "1")
		ap.put("/b", "2")
		ap.del("/a", "")
	}
	if ha, hb := hash(a), hash(b); ha != hb {
		t.Fatalf("same requests at other indexes: hashes %08x and %08x differ", ha, hb)
	}
	before := hash(a)
	a.put("/b", "3")
	if h := hash(a); h == before {
		t.Fatalf("hash %08x unchanged by a put", h)
	}
	if ha, hb := hash(a), hash(b); ha == hb {
		t.Fatalf("stores hold different values but hash alike (%08x)", ha)
	}
	b.put("/b", "3")
	if ha, hb := hash(a), hash(b); ha != hb {
		t.Fatalf("same requests again: hashes %08x and %08x differ", ha, hb)
	}
}
