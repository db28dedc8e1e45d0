package store

// NOTE(skeleton): this file fixes the exported API that cluster/ builds on.
// Bodies are filled in by the store work; signatures change only together
// with their callers.

import (
	"errors"
	"io"
	"log/slog"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

var errNotImplemented = errors.New("store: not implemented")

// Request-level errors: deterministic results of applying a request, returned
// to the client. cluster/v3rpc maps each to its etcd rpctypes value.
var (
	ErrCompacted        = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev        = errors.New("mvcc: required revision is a future revision")
	ErrLeaseNotFound    = errors.New("lease not found")
	ErrLeaseExists      = errors.New("lease already exists")
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
	ErrWatcherNotExist  = errors.New("mvcc: watcher does not exist")
)

// Options configure a Store.
type Options struct {
	// BatchInterval and BatchLimit bound how long and how many applied
	// requests may share one bbolt commit (0: defaults). Batching is safe
	// because the Raft log above the store replays every entry after
	// AppliedIndex on restart.
	BatchInterval time.Duration
	BatchLimit    int
	// MinLeaseTTL raises smaller granted TTLs, as etcd does (seconds).
	MinLeaseTTL int64
	// Now is the clock for lease expiry bookkeeping only (never for applied,
	// persisted state). nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Store is the MVCC keyspace.
type Store struct{}

// Open opens (or creates) the store in the bbolt file at path.
func Open(path string, opts Options) (*Store, error) { return nil, errNotImplemented }

// Close flushes pending commits and closes the file.
func (s *Store) Close() error { return errNotImplemented }

// Result is the outcome of one applied request. Resp is the response message
// (*pb.PutResponse, *pb.RangeResponse, *pb.DeleteRangeResponse,
// *pb.TxnResponse, *pb.CompactionResponse, *pb.LeaseGrantResponse,
// *pb.LeaseRevokeResponse, *pb.AlarmResponse) with Header.Revision set; Err is
// a request-level error (ErrCompacted, ErrLeaseNotFound, ...).
type Result struct {
	Resp proto.Message
	Err  error
}

// Apply applies one committed request at log index. Requests must arrive in
// index order; an index at or below AppliedIndex is skipped (replay). The
// returned error is fatal (the backend failed): the member must stop.
func (s *Store) Apply(index uint64, r *pb.InternalRaftRequest) (Result, error) {
	return Result{}, errNotImplemented
}

// AppliedIndex is the log index of the last applied request.
func (s *Store) AppliedIndex() uint64 { return 0 }

// Rev is the current revision; CompactRev the last compacted one.
func (s *Store) Rev() int64        { return 0 }
func (s *Store) CompactRev() int64 { return 0 }

// Range serves a read from the applied state.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) { return nil, errNotImplemented }

// Lease is a granted lease as the store records it.
type Lease struct {
	ID   int64
	TTL  int64 // granted TTL in seconds
	Keys [][]byte
}

// Lease returns one lease; Leases all of them, by ID.
func (s *Store) Lease(id int64) (Lease, bool) { return Lease{}, false }
func (s *Store) Leases() []Lease              { return nil }

// Lease expiry bookkeeping (in memory, on the leader): Promote starts every
// lease's TTL afresh (a new leader), Demote stops expiry (a follower), Renew
// handles a keep-alive, Remaining answers TimeToLive, Expired lists leases
// whose time is up (the cluster proposes their revocation).
func (s *Store) Promote(extend time.Duration)              {}
func (s *Store) Demote()                                   {}
func (s *Store) Renew(id int64) (ttl int64, err error)     { return 0, errNotImplemented }
func (s *Store) Remaining(id int64) (ttl int64, err error) { return 0, errNotImplemented }
func (s *Store) Expired() []int64                          { return nil }

// Alarms lists the raised alarms.
func (s *Store) Alarms() []*pb.AlarmMember { return nil }

// HashKV hashes the keyspace up to rev (0: current), as etcd's HashKV does.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	return 0, 0, 0, errNotImplemented
}

// Size is the backend file size; SizeInUse the part holding data.
func (s *Store) Size() int64      { return 0 }
func (s *Store) SizeInUse() int64 { return 0 }

// Snapshot writes a consistent copy of the backend (a bbolt file).
func (s *Store) Snapshot(w io.Writer) (int64, error) { return 0, errNotImplemented }

// Restore replaces the whole state with a snapshot written by Snapshot.
func (s *Store) Restore(r io.Reader) error { return errNotImplemented }

// Defragment rewrites the backend file compactly.
func (s *Store) Defragment() error { return errNotImplemented }

// WatchRequest is one watch on a stream.
type WatchRequest struct {
	Key, End []byte // End nil: Key alone; "\x00": from Key on
	StartRev int64  // 0: from the next revision
	PrevKV   bool
	NoPut    bool
	NoDelete bool
	// ProgressNotify asks for periodic empty responses carrying the revision.
	ProgressNotify bool
}

// WatchResponse is a batch of events for one watch, in revision order.
// CompactRevision != 0 means the watch was cancelled because StartRev was
// compacted. Canceled marks the last response of a watch.
type WatchResponse struct {
	WatchID         int64
	Events          []*mvccpb.Event
	Revision        int64
	CompactRevision int64
	Canceled        bool
}

// WatchStream multiplexes watches for one client stream.
type WatchStream struct{}

// NewWatchStream opens a stream of watches.
func (s *Store) NewWatchStream() *WatchStream { return &WatchStream{} }

// Watch starts a watch with the given ID, or with the next free one when id
// is AutoWatchID (IDs then count up from 0, as etcd's do). It fails with
// ErrCompacted-style cancellation delivered on Chan, not as an error, when
// StartRev is compacted.
func (w *WatchStream) Watch(id int64, r WatchRequest) (int64, error) { return 0, errNotImplemented }

// AutoWatchID asks Watch to choose the ID.
const AutoWatchID int64 = -1

// Chan delivers responses for all the stream's watches.
func (w *WatchStream) Chan() <-chan WatchResponse { return nil }

// Cancel stops a watch.
func (w *WatchStream) Cancel(id int64) error { return errNotImplemented }

// RequestProgress sends a progress response (no events, current revision) to
// every watch that is in sync.
func (w *WatchStream) RequestProgress() {}

// Close stops all the stream's watches.
func (w *WatchStream) Close() {}
