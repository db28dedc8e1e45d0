package store

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// The bbolt layout follows etcd's schema (bucket names, revision keys, meta
// keys), so a snapshot of a tend store reads like one of etcd's.
var (
	keyBucket   = []byte("key")
	metaBucket  = []byte("meta")
	leaseBucket = []byte("lease")
	alarmBucket = []byte("alarm")

	metaAppliedIndex     = []byte("consistent_index")
	metaScheduledCompact = []byte("scheduledCompactRev")
	metaFinishedCompact  = []byte("finishedCompactRev")
)

const (
	defaultBatchInterval = 100 * time.Millisecond
	defaultBatchLimit    = 10000
	// initialMmapSize is large so that a commit rarely has to remap the file,
	// which would wait for long readers such as a Snapshot being streamed.
	initialMmapSize = 1 << 30
)

// revision is a point in the store's history: main counts write txns, sub
// counts the writes inside one txn.
type revision struct{ main, sub int64 }

func (a revision) greater(b revision) bool {
	if a.main != b.main {
		return a.main > b.main
	}
	return a.sub > b.sub
}

const (
	revBytesLen  = 8 + 1 + 8
	markTombLen  = revBytesLen + 1
	markTombByte = 't'
)

// revKey encodes a revision as a key of the key bucket: big-endian main, '_',
// big-endian sub, and a trailing 't' for a tombstone.
func revKey(r revision, tomb bool) []byte {
	n := revBytesLen
	if tomb {
		n = markTombLen
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, uint64(r.main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(r.sub))
	if tomb {
		b[revBytesLen] = markTombByte
	}
	return b
}

func parseRevKey(b []byte) (revision, bool) {
	r := revision{main: int64(binary.BigEndian.Uint64(b)), sub: int64(binary.BigEndian.Uint64(b[9:]))}
	return r, len(b) == markTombLen && b[revBytesLen] == markTombByte
}

// backend is the bbolt file with one long write transaction that collects
// a batch of applied requests. Batching is safe because the Raft log above the
// store replays every entry after the persisted applied index: a crash loses
// only whole batches, whose entries are all above that index.
type backend struct {
	db   *bolt.DB
	tx   *bolt.Tx
	keyB *bolt.Bucket
	// pending counts applied requests in tx; opened is when tx began.
	pending int
	opened  time.Time
	// committedRev is the store revision of the last commit: revisions above
	// it exist only in tx and in buf.
	committedRev int64
	// buf holds the key bucket entries written in tx, in revision order, so
	// that readers outside Apply (who use their own read transactions on the
	// committed file) see applied-but-uncommitted writes.
	buf    []bufEntry
	bufIdx map[revision]int
}

type bufEntry struct {
	rev  revision
	tomb bool
	val  []byte
}

func openBackend(path string, noSync bool) (*backend, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         5 * time.Second,
		InitialMmapSize: initialMmapSize,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open backend %s: %w", path, err)
	}
	db.NoSync = noSync
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{keyBucket, metaBucket, leaseBucket, alarmBucket, authBucket, authUsersBucket, authRolesBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create buckets in %s: %w", path, err)
	}
	b := &backend{db: db, bufIdx: make(map[revision]int)}
	if err := b.begin(); err != nil {
		db.Close()
		return nil, err
	}
	return b, nil
}

func (b *backend) begin() error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin backend batch: %w", err)
	}
	b.tx = tx
	b.keyB = tx.Bucket(keyBucket)
	// The key bucket is written in revision order: fill pages fully.
	b.keyB.FillPercent = 0.9
	b.opened = time.Now()
	return nil
}

// commit makes the batch durable and starts the next one; rev is the store
// revision the batch reaches.
func (b *backend) commit(rev int64) error {
	if err := b.tx.Commit(); err != nil {
		b.tx = nil
		return fmt.Errorf("commit backend batch: %w", err)
	}
	b.pending = 0
	b.committedRev = rev
	b.buf = b.buf[:0]
	clear(b.bufIdx)
	return b.begin()
}

// close commits the batch (when rev >= 0) and closes the file.
func (b *backend) close(rev int64) error {
	var err error
	if b.tx != nil {
		if rev >= 0 {
			err = b.tx.Commit()
			if err != nil {
				err = fmt.Errorf("commit backend batch: %w", err)
			}
		} else {
			err = b.tx.Rollback()
		}
		b.tx = nil
	}
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close backend: %w", cerr)
	}
	return err
}

func (b *backend) putKV(r revision, tomb bool, val []byte) error {
	if err := b.keyB.Put(revKey(r, tomb), val); err != nil {
		return fmt.Errorf("put revision %d_%d: %w", r.main, r.sub, err)
	}
	b.bufIdx[r] = len(b.buf)
	b.buf = append(b.buf, bufEntry{rev: r, tomb: tomb, val: val})
	return nil
}

func (b *backend) putMeta(k, v []byte) error {
	if err := b.tx.Bucket(metaBucket).Put(k, v); err != nil {
		return fmt.Errorf("put meta %s: %w", k, err)
	}
	return nil
}

// kvReader finds the stored KeyValue of a revision.
type kvReader interface {
	get(r revision) (*mvccpb.KeyValue, error)
}

// txReader reads through the batch write transaction (inside Apply).
type txReader struct{ b *backend }

func (t txReader) get(r revision) (*mvccpb.KeyValue, error) {
	v := t.b.keyB.Get(revKey(r, false))
	if v == nil {
		return nil, fmt.Errorf("read revision %d_%d: missing in backend", r.main, r.sub)
	}
	return decodeKV(v)
}

// viewReader serves readers outside Apply: the uncommitted part from buf, the
// rest from a read transaction opened on first need. Callers hold the store's
// read lock, so no commit happens while it is in use.
type viewReader struct {
	b   *backend
	rtx *bolt.Tx
}

func (v *viewReader) get(r revision) (*mvccpb.KeyValue, error) {
	if r.main > v.b.committedRev {
		i, ok := v.b.bufIdx[r]
		if !ok {
			return nil, fmt.Errorf("read revision %d_%d: missing in batch buffer", r.main, r.sub)
		}
		return decodeKV(v.b.buf[i].val)
	}
	if err := v.open(); err != nil {
		return nil, err
	}
	val := v.rtx.Bucket(keyBucket).Get(revKey(r, false))
	if val == nil {
		return nil, fmt.Errorf("read revision %d_%d: missing in backend", r.main, r.sub)
	}
	return decodeKV(val)
}

func (v *viewReader) open() error {
	if v.rtx != nil {
		return nil
	}
	rtx, err := v.b.db.Begin(false)
	if err != nil {
		return fmt.Errorf("begin backend read: %w", err)
	}
	v.rtx = rtx
	return nil
}

func (v *viewReader) close() {
	if v.rtx != nil {
		v.rtx.Rollback()
		v.rtx = nil
	}
}

// scan calls fn for every key bucket entry with from <= main <= to, in
// revision order, until fn returns false.
func (v *viewReader) scan(from, to int64, fn func(r revision, tomb bool, val []byte) bool) error {
	if from <= v.b.committedRev {
		if err := v.open(); err != nil {
			return err
		}
		c := v.rtx.Bucket(keyBucket).Cursor()
		for k, val := c.Seek(revKey(revision{main: from}, false)); k != nil; k, val = c.Next() {
			r, tomb := parseRevKey(k)
			if r.main > to || r.main > v.b.committedRev {
				break
			}
			if !fn(r, tomb, val) {
				return nil
			}
		}
	}
	buf := v.b.buf
	i := sort.Search(len(buf), func(i int) bool { return buf[i].rev.main >= from })
	for ; i < len(buf) && buf[i].rev.main <= to; i++ {
		if buf[i].rev.main <= v.b.committedRev {
			continue
		}
		if !fn(buf[i].rev, buf[i].tomb, buf[i].val) {
			return nil
		}
	}
	return nil
}

func decodeKV(v []byte) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return nil, fmt.Errorf("decode key-value: %w", err)
	}
	return kv, nil
}
