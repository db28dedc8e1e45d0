package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/internal/etcdtest"
)

// TestScenariosAgainstEtcd runs the scenarios' requests against a real,
// embedded etcd and checks that it answers each exactly as the store does
// (responses with their header revision, errors, hashes). Scenarios that
// crash the store are left out: their replays would apply twice to etcd; so
// are those that send requests as users (a header naming one), which a
// client cannot do without tokens (cluster/compat compares auth with etcd).
func TestScenariosAgainstEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd server")
	}
	files, _ := filepath.Glob("testdata/*.txt")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if strings.Contains(string(data), "\ncrash\n") || strings.Contains(string(data), "header: {username:") {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			conn := startEtcd(t)
			kv, lease, maint := pb.NewKVClient(conn), pb.NewLeaseClient(conn), pb.NewMaintenanceClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, c := range parseScenario(t, f) {
				name, arg, _ := strings.Cut(c.cmd, " ")
				var (
					resp proto.Message
					err  error
				)
				switch name {
				case "apply":
					req := &pb.InternalRaftRequest{}
					if err := prototext.Unmarshal([]byte(arg), req); err != nil {
						t.Fatal(err)
					}
					switch {
					case req.Range != nil:
						resp, err = kv.Range(ctx, req.Range)
					case req.Put != nil:
						resp, err = kv.Put(ctx, req.Put)
					case req.DeleteRange != nil:
						resp, err = kv.DeleteRange(ctx, req.DeleteRange)
					case req.Txn != nil:
						resp, err = kv.Txn(ctx, req.Txn)
					case req.Compaction != nil:
						req.Compaction.Physical = true
						resp, err = kv.Compact(ctx, req.Compaction)
					case req.LeaseGrant != nil && req.LeaseGrant.ID != 0:
						resp, err = lease.LeaseGrant(ctx, req.LeaseGrant)
					case req.LeaseRevoke != nil:
						resp, err = lease.LeaseRevoke(ctx, req.LeaseRevoke)
					default:
						continue // alarms, derived lease IDs, unknown kinds
					}
				case "range":
					req := &pb.RangeRequest{}
					if err := prototext.Unmarshal([]byte(arg), req); err != nil {
						t.Fatal(err)
					}
					resp, err = kv.Range(ctx, req)
				case "hash":
					rev, _ := strconv.ParseInt(arg, 10, 64)
					var h *pb.HashKVResponse
					h, err = maint.HashKV(ctx, &pb.HashKVRequest{Revision: rev})
					if err == nil {
						if got := fmt.Sprintf("hash=%d hash-rev=%d compact-rev=%d", h.Hash, h.HashRevision, h.CompactRevision); got != c.want {
							t.Errorf("%s: etcd says %s, store %s", c.cmd, got, c.want)
						}
						continue
					}
				default:
					continue
				}
				got := etcdText(resp, err)
				if got != c.want {
					t.Errorf("%s:\netcd:  %s\nstore: %s", c.cmd, got, c.want)
				}
			}
		})
	}
}

// etcdText prints an etcd answer the way the scenarios print the store's:
// headers keep only the revision, errors read as the store's.
func etcdText(m proto.Message, err error) string {
	if err != nil {
		msg := status.Convert(err).Message()
		for storeErr, grpcErr := range map[error]error{
			ErrCompacted:        rpctypes.ErrGRPCCompacted,
			ErrFutureRev:        rpctypes.ErrGRPCFutureRev,
			ErrLeaseNotFound:    rpctypes.ErrGRPCLeaseNotFound,
			ErrLeaseExists:      rpctypes.ErrGRPCLeaseExist,
			ErrLeaseTTLTooLarge: rpctypes.ErrGRPCLeaseTTLTooLarge,
			ErrKeyNotFound:      rpctypes.ErrGRPCKeyNotFound,
		} {
			if status.Convert(grpcErr).Message() == msg {
				return "error: " + storeErr.Error()
			}
		}
		return "error (unmapped): " + msg
	}
	clearHeaders(m.ProtoReflect().Interface())
	return text(m)
}

// clearHeaders zeroes cluster, member and term in every response header.
func clearHeaders(m proto.Message) {
	switch r := m.(type) {
	case *pb.RangeResponse:
		clearHeader(r.Header)
	case *pb.PutResponse:
		clearHeader(r.Header)
	case *pb.DeleteRangeResponse:
		clearHeader(r.Header)
	case *pb.CompactionResponse:
		clearHeader(r.Header)
	case *pb.LeaseGrantResponse:
		clearHeader(r.Header)
	case *pb.LeaseRevokeResponse:
		clearHeader(r.Header)
	case *pb.TxnResponse:
		clearHeader(r.Header)
		for _, op := range r.Responses {
			switch v := op.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				clearHeaders(v.ResponseRange)
			case *pb.ResponseOp_ResponsePut:
				clearHeaders(v.ResponsePut)
			case *pb.ResponseOp_ResponseDeleteRange:
				clearHeaders(v.ResponseDeleteRange)
			case *pb.ResponseOp_ResponseTxn:
				clearHeaders(v.ResponseTxn)
			}
		}
	}
}

func clearHeader(h *pb.ResponseHeader) {
	if h != nil {
		h.ClusterId, h.MemberId, h.RaftTerm = 0, 0, 0
	}
}

// startEtcd starts a one-member etcd on loopback and returns a gRPC
// connection to it; both end with the test.
func startEtcd(t *testing.T) *grpc.ClientConn {
	t.Helper()
	e := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Name: "default"})
	conn, err := grpc.NewClient(etcdtest.ClientAddr(e), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
