package cluster

import (
	"context"
	"net/url"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestValidationMatchesEtcd sends the same requests, valid and not, to a
// real etcd and to tend, over raw gRPC, and wants the same status code and
// message from both.
func TestValidationMatchesEtcd(t *testing.T) {
	peer, clientURL := loopbackURL(t), loopbackURL(t)
	ecfg := embed.NewConfig()
	ecfg.Dir = t.TempDir()
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	ecfg.ListenPeerUrls, ecfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	ecfg.InitialCluster = ecfg.Name + "=" + peer.String()
	ecfg.MaxTxnOps = 4
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		t.Fatal("etcd not ready within 10s")
	}
	cfg := testConfig(t, t.TempDir())
	cfg.MaxTxnOps = 4
	m := start(t, cfg)

	dial := func(target string) pb.KVClient {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewKVClient(conn)
	}
	etcd, tend := dial(clientURL.Host), dial(m.ClientURLs()[0][len("http://"):])

	put := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
	}
	del := func(k, end string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
	}
	get := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
	}
	txn := func(then, els []*pb.RequestOp) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
	}
	ops := func(o ...*pb.RequestOp) []*pb.RequestOp { return o }

	for _, tc := range []struct {
		name string
		call func(context.Context, pb.KVClient) error
	}{
		{"txn of puts", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(put("a"), put("b"))})
			return err
		}},
		{"two puts of a key", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(put("a"), put("a"))})
			return err
		}},
		{"put and delete of a key", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(del("a", ""), put("a"))})
			return err
		}},
		{"put inside a deleted range", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(del("a", "c"), put("b"))})
			return err
		}},
		{"put past a deleted range", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(del("a", "c"), put("c"))})
			return err
		}},
		{"put after a from-key delete", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(del("a", "\x00"), put("b"))})
			return err
		}},
		{"same key in then and else of a nested txn", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(txn(ops(put("a")), ops(put("a"))))})
			return err
		}},
		{"nested put of an outer put", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(put("a"), txn(ops(put("a")), nil))})
			return err
		}},
		{"nested delete covering an outer put", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(put("b"), txn(ops(del("a", "c")), nil))})
			return err
		}},
		{"two nested txns putting a key", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(txn(ops(put("a")), nil), txn(nil, ops(put("a"))))})
			return err
		}},
		{"too many ops", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(get("a"), get("b"), get("c"), get("d"), get("e"))})
			return err
		}},
		{"too many ops nested", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(get("a"), txn(ops(get("a"), get("b"), get("c"), get("d")), nil))})
			return err
		}},
		{"empty key in a nested op", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(txn(ops(get("")), nil))})
			return err
		}},
		{"empty request op", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Txn(c, &pb.TxnRequest{Success: ops(&pb.RequestOp{})})
			return err
		}},
		{"bad sort order", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Range(c, &pb.RangeRequest{Key: []byte("a"), SortOrder: 9})
			return err
		}},
		{"bad sort target", func(c context.Context, kv pb.KVClient) error {
			_, err := kv.Range(c, &pb.RangeRequest{Key: []byte("a"), SortTarget: 9})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want, got := status.Convert(tc.call(c, etcd)), status.Convert(tc.call(c, tend))
			if got.Code() != want.Code() || got.Message() != want.Message() {
				t.Errorf("tend: %v %q; etcd: %v %q", got.Code(), got.Message(), want.Code(), want.Message())
			}
		})
	}
}
