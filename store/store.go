package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Request-level errors: deterministic results of applying a request, returned
// to the client. cluster/v3rpc maps each to its etcd rpctypes value.
var (
	ErrCompacted        = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev        = errors.New("mvcc: required revision is a future revision")
	ErrLeaseNotFound    = errors.New("lease not found")
	ErrLeaseExists      = errors.New("lease already exists")
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
	ErrWatcherNotExist  = errors.New("mvcc: watcher does not exist")
	// ErrKeyNotFound answers a put with ignore_value or ignore_lease on a
	// missing key (rpctypes.ErrGRPCKeyNotFound).
	ErrKeyNotFound = errors.New("etcdserver: key not found")
	// ErrUnknownRequest answers a request of a kind the store does not apply.
	ErrUnknownRequest = errors.New("store: unknown request kind")
	// ErrNotPrimary answers Renew on a store that is not promoted
	// (a follower): the keep-alive belongs on the leader.
	ErrNotPrimary = errors.New("not a primary lessor")
	// ErrWatcherDuplicateID answers Watch with an ID already in use.
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// ErrEmptyWatcherRange answers Watch with End at or before Key.
	ErrEmptyWatcherRange = errors.New("mvcc: watcher range is empty")
	// ErrClosed answers calls on a closed store or watch stream.
	ErrClosed = errors.New("store: closed")
)

// requestErr reports whether err is a request-level result rather than a
// backend failure.
func requestErr(err error) bool {
	for _, e := range []error{ErrCompacted, ErrFutureRev, ErrLeaseNotFound, ErrLeaseExists, ErrLeaseTTLTooLarge, ErrKeyNotFound, ErrUnknownRequest} {
		if errors.Is(err, e) {
			return true
		}
	}
	for _, e := range authErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	var te tokenError
	return errors.As(err, &te)
}

// Options configure a Store.
type Options struct {
	// BatchInterval and BatchLimit bound how long and how many applied
	// requests may share one bbolt commit (0: 100ms and 10000). Batching is
	// safe because the Raft log above the store replays every entry after
	// AppliedIndex on restart.
	BatchInterval time.Duration
	BatchLimit    int
	// MinLeaseTTL raises smaller granted TTLs, as etcd does (seconds).
	MinLeaseTTL int64
	// Now is the clock for lease expiry bookkeeping only (never for applied,
	// persisted state). nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// ProgressInterval is how often watches that asked for progress notify
	// get an empty response carrying the revision (0: 10 minutes, as etcd).
	ProgressInterval time.Duration

	// ObserveCommit, when set, is told how long each commit of a batch to
	// bbolt took, fsync included (etcd_disk_backend_commit_duration_seconds).
	// It must not block.
	ObserveCommit func(time.Duration)

	// noSync skips fsync (tests that reopen stores by the thousand).
	noSync bool
}

// Store is the MVCC keyspace.
type Store struct {
	opts Options
	lg   *slog.Logger
	path string

	// mu guards the state below: Apply and maintenance hold it exclusively,
	// readers share it.
	mu  sync.RWMutex
	be  *backend
	idx *index
	rev int64
	// compactRev is -1 before the first compaction, as in etcd.
	compactRev int64
	leases     map[int64]*leaseState
	keyLease   map[string]int64
	alarms     map[alarmKey]*pb.AlarmMember
	// tokens issues tokens for applied Authenticate requests.
	tokens TokenIssuer
	// fatal is the backend failure after which the store refuses work.
	fatal  error
	closed bool

	// auth is the auth state (users, roles, permissions), replaced whole
	// on each change under mu and read without locks.
	auth atomic.Pointer[authState]

	// Mirrors of rev, compactRev and the applied index for lock-free reads.
	revA     atomic.Int64
	compactA atomic.Int64
	applied  atomic.Uint64
	// durable is the applied index as of the last commit.
	durable atomic.Uint64

	// lmu guards lease expiry bookkeeping (leaseState.expiry, primary).
	lmu     sync.Mutex
	primary bool

	hub *watchHub

	// The compactor's work (compactor.go). Guarded by mu: compactJob, the
	// unfinished physical half of the newest compaction, and compactDone,
	// closed when none is left. compactKick wakes the compactor.
	compactJob  *compactJob
	compactDone chan struct{}
	compactKick chan struct{}
	// counts are the operations counted for Stats.
	counts counters

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open opens (or creates) the store in the bbolt file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.BatchInterval <= 0 {
		opts.BatchInterval = defaultBatchInterval
	}
	if opts.BatchLimit <= 0 {
		opts.BatchLimit = defaultBatchLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 10 * time.Minute
	}
	be, err := openBackend(path, opts.noSync)
	if err != nil {
		return nil, err
	}
	s := &Store{opts: opts, lg: opts.Logger, path: path, be: be, hub: newWatchHub(), stop: make(chan struct{}), compactKick: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		be.close(-1)
		return nil, fmt.Errorf("load store %s: %w", path, err)
	}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.runCompactor() }()
	go func() { defer s.wg.Done(); s.runCommitter() }()
	go func() { defer s.wg.Done(); s.runWatchSync() }()
	return s, nil
}

// load rebuilds the in-memory state (index, revisions, leases, alarms) from
// the backend's batch transaction.
func (s *Store) load() error {
	tx := s.be.tx
	meta := tx.Bucket(metaBucket)
	var applied uint64
	if v := meta.Get(metaAppliedIndex); len(v) == 8 {
		applied = binary.BigEndian.Uint64(v)
	}
	s.compactRev = -1
	if v := meta.Get(metaFinishedCompact); len(v) >= revBytesLen {
		r, _ := parseRevKey(v)
		s.compactRev = r.main
	}
	// A compaction scheduled and not finished: its revision counts, and
	// the compactor finishes it.
	scheduled := int64(-1)
	if v := meta.Get(metaScheduledCompact); len(v) >= revBytesLen {
		r, _ := parseRevKey(v)
		scheduled = r.main
	}
	s.idx = &index{}
	s.keyLease = make(map[string]int64)
	keyToLease := make(map[string]int64)
	rev := int64(1)
	err := tx.Bucket(keyBucket).ForEach(func(k, v []byte) error {
		r, tomb := parseRevKey(k)
		kv, err := decodeKV(v)
		if err != nil {
			return fmt.Errorf("revision %d_%d: %w", r.main, r.sub, err)
		}
		ki := s.idx.getOrCreate(kv.Key)
		if tomb {
			ki.tombstone(r)
			delete(keyToLease, string(kv.Key))
		} else {
			ki.restorePut(r, kv.CreateRevision, kv.Version)
			if kv.Lease != 0 {
				keyToLease[string(kv.Key)] = kv.Lease
			} else {
				delete(keyToLease, string(kv.Key))
			}
		}
		rev = max(rev, r.main)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild index: %w", err)
	}
	s.idx.live = s.idx.countLive()
	if s.compactJob != nil {
		close(s.compactDone) // the restored file replaces that work
	}
	s.compactJob, s.compactDone = nil, nil
	if scheduled > s.compactRev {
		s.compactRev = scheduled
		s.schedulePhysical(scheduled, s.idx.compact(scheduled))
	}
	s.setRev(max(rev, s.compactRev))
	s.compactA.Store(s.compactRev)
	s.applied.Store(applied)
	s.durable.Store(applied)
	s.be.committedRev = s.rev
	if err := s.loadLeases(); err != nil {
		return err
	}
	for key, id := range keyToLease {
		if _, ok := s.leases[id]; ok {
			ki := s.idx.get([]byte(key))
			s.attach(id, ki.key)
		}
	}
	if err := s.loadAlarms(); err != nil {
		return err
	}
	// The schema version, as etcd records it in every backend since 3.6
	// (etcdutl snapshot status prints it; etcd reads it on start).
	if !bytes.Equal(meta.Get(metaStorageVersion), []byte(StorageVersion)) {
		if err := s.be.putMeta(metaStorageVersion, []byte(StorageVersion)); err != nil {
			return err
		}
		s.be.pending++
	}
	return s.loadAuth()
}

// StorageVersion is the backend schema the store keeps: etcd's bucket
// layout as etcd 3.7 writes it.
const StorageVersion = "3.7.0"

func (s *Store) setRev(rev int64) {
	s.rev = rev
	s.revA.Store(rev)
}

// runCommitter commits a pending batch every BatchInterval; it stops when
// s.stop closes.
func (s *Store) runCommitter() {
	t := time.NewTicker(s.opts.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.fatal == nil && !s.closed && s.be.pending > 0 && time.Since(s.be.opened) >= s.opts.BatchInterval/2 {
			s.commitLocked()
		}
		s.mu.Unlock()
	}
}

func (s *Store) commitLocked() error {
	defer s.observeCommit(time.Now())
	if err := s.be.commit(s.rev); err != nil {
		s.fatal = err
		s.lg.Error("store backend failed", "err", err)
		return err
	}
	s.durable.Store(s.applied.Load())
	return nil
}

// Commit makes every applied request durable now. The Raft member must call
// it (or Snapshot, which commits too) before it discards log entries up to
// AppliedIndex: until the batch is committed, those entries are the only
// durable copy of the latest requests.
func (s *Store) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.fatal != nil {
		return s.fatal
	}
	if s.be.pending == 0 {
		return nil
	}
	return s.commitLocked()
}

// Close flushes pending commits and closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		rev := s.rev
		if s.fatal != nil {
			rev = -1
		}
		err = s.be.close(rev)
		s.hub.closeAll()
	})
	return err
}

// Result is the outcome of one applied request. Resp is the response message
// (*pb.PutResponse, *pb.RangeResponse, *pb.DeleteRangeResponse,
// *pb.TxnResponse, *pb.CompactionResponse, *pb.LeaseGrantResponse,
// *pb.LeaseRevokeResponse, *pb.AlarmResponse, the Auth service's responses)
// with Header.Revision set; Err is a request-level error (ErrCompacted,
// ErrLeaseNotFound, ErrPermissionDenied, ...). A skipped
// (replayed) request gives an empty Result.
type Result struct {
	Resp proto.Message
	Err  error
}

// Apply applies one committed request at log index. Requests must arrive in
// index order; an index at or below AppliedIndex is skipped (replay). The
// returned error is fatal (the backend failed): the member must stop.
func (s *Store) Apply(index uint64, r *pb.InternalRaftRequest) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	if s.fatal != nil {
		return Result{}, s.fatal
	}
	if index <= s.applied.Load() {
		return Result{}, nil
	}
	res, err := s.applyRequest(index, r)
	if err == nil {
		err = s.be.putMeta(metaAppliedIndex, binary.BigEndian.AppendUint64(nil, index))
	}
	if err != nil {
		// The batch holds a half-applied request: never commit it.
		s.fatal = fmt.Errorf("apply entry %d: %w", index, err)
		return Result{}, s.fatal
	}
	s.applied.Store(index)
	s.be.pending++
	if s.be.pending >= s.opts.BatchLimit {
		if err := s.commitLocked(); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (s *Store) applyRequest(index uint64, r *pb.InternalRaftRequest) (Result, error) {
	var (
		resp proto.Message
		err  error
	)
	if r != nil {
		err = s.authorize(AuthInfoOf(r.Header), r)
	}
	switch {
	case err != nil:
	case r == nil:
		err = ErrUnknownRequest
	case isAuthRequest(r):
		resp, err = s.applyAuth(index, AuthInfoOf(r.Header), r)
	case r.Range != nil:
		resp, err = s.executeRange(r.Range, s.rev, txReader{s.be})
	case r.Put != nil:
		if err = s.checkPut(r.Put); err == nil {
			t := s.beginWrite()
			resp, err = t.applyPut(r.Put)
			if endErr := t.end(); err == nil {
				err = endErr
			}
		}
	case r.DeleteRange != nil:
		t := s.beginWrite()
		resp, err = t.applyDeleteRange(r.DeleteRange)
		if endErr := t.end(); err == nil {
			err = endErr
		}
	case r.Txn != nil:
		resp, err = s.applyTxn(r.Txn)
	case r.Compaction != nil:
		resp, err = s.applyCompaction(r.Compaction)
	case r.LeaseGrant != nil:
		resp, err = s.applyLeaseGrant(index, r.LeaseGrant)
	case r.LeaseRevoke != nil:
		resp, err = s.applyLeaseRevoke(r.LeaseRevoke)
	case r.Alarm != nil:
		resp, err = s.applyAlarm(r.Alarm)
	default:
		err = ErrUnknownRequest
	}
	if err != nil {
		if requestErr(err) {
			return Result{Err: err}, nil
		}
		return Result{}, err
	}
	return Result{Resp: resp}, nil
}

// AppliedIndex is the log index of the last applied request.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// DurableIndex is the log index of the last applied request that is committed
// to the file: a crash keeps everything up to it. The Raft log may drop
// entries up to DurableIndex, never beyond (see Commit).
func (s *Store) DurableIndex() uint64 { return s.durable.Load() }

// Rev is the current revision (1 for an empty store, as in etcd).
func (s *Store) Rev() int64 { return s.revA.Load() }

// CompactRev is the last compacted revision (0: never compacted).
func (s *Store) CompactRev() int64 { return max(0, s.compactA.Load()) }

// Range serves a read from the applied state.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	rd := &viewReader{b: s.be}
	defer rd.close()
	return s.executeRange(r, s.rev, rd)
}
