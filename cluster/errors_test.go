package cluster

import (
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestErrors checks that each bad request gets exactly etcd's error, as
// clientv3 sees it (it matches errors by their text).
func TestErrors(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxTxnOps = 4
	cfg.MaxRequestBytes = 64 * 1024
	m := start(t, cfg)
	cli := client(t, m)
	c := ctx(t)
	kv := pb.NewKVClient(cli.ActiveConnection())
	for _, v := range []string{"1", "2", "3"} {
		if _, err := cli.Put(c, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(c, 3); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"empty key put", func() error { _, err := cli.Put(c, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"empty key get", func() error { _, err := cli.Get(c, ""); return err }, rpctypes.ErrEmptyKey},
		{"empty key delete", func() error { _, err := cli.Delete(c, ""); return err }, rpctypes.ErrEmptyKey},
		{"empty key in compare", func() error {
			_, err := cli.Txn(c).If(clientv3.Compare(clientv3.Value(""), "=", "x")).Commit()
			return err
		}, rpctypes.ErrEmptyKey},
		{"too many ops", func() error {
			var ops []clientv3.Op
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				ops = append(ops, clientv3.OpPut(k, "v"))
			}
			_, err := cli.Txn(c).Then(ops...).Commit()
			return err
		}, rpctypes.ErrTooManyOps},
		{"duplicate key", func() error {
			_, err := cli.Txn(c).Then(clientv3.OpPut("a", "1"), clientv3.OpPut("a", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"put inside a deleted range", func() error {
			_, err := cli.Txn(c).Then(clientv3.OpDelete("a", clientv3.WithPrefix()), clientv3.OpPut("ab", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"duplicate key in nested txn", func() error {
			_, err := cli.Txn(c).Then(clientv3.OpPut("a", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("a", "2")}, nil)).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"request too large", func() error {
			_, err := cli.Put(c, "big", strings.Repeat("x", 65*1024))
			return err
		}, rpctypes.ErrRequestTooLarge},
		{"value provided with ignore value", func() error {
			_, err := kv.Put(c, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), IgnoreValue: true})
			return err
		}, rpctypes.ErrGRPCValueProvided},
		{"lease provided with ignore lease", func() error {
			_, err := kv.Put(c, &pb.PutRequest{Key: []byte("k"), Lease: 5, IgnoreLease: true})
			return err
		}, rpctypes.ErrGRPCLeaseProvided},
		{"ignore value on a missing key", func() error {
			_, err := cli.Put(c, "missing", "", clientv3.WithIgnoreValue())
			return err
		}, rpctypes.ErrKeyNotFound},
		{"compacted revision", func() error { _, err := cli.Get(c, "k", clientv3.WithRev(2)); return err }, rpctypes.ErrCompacted},
		{"compact again", func() error { _, err := cli.Compact(c, 2); return err }, rpctypes.ErrCompacted},
		{"future revision", func() error { _, err := cli.Get(c, "k", clientv3.WithRev(100)); return err }, rpctypes.ErrFutureRev},
		{"compact the future", func() error { _, err := cli.Compact(c, 100); return err }, rpctypes.ErrFutureRev},
		{"lease not found on put", func() error { _, err := cli.Put(c, "k", "v", clientv3.WithLease(12345)); return err }, rpctypes.ErrLeaseNotFound},
		{"lease not found on revoke", func() error { _, err := cli.Revoke(c, 12345); return err }, rpctypes.ErrLeaseNotFound},
		{"lease TTL too large", func() error { _, err := cli.Grant(c, 9000000001); return err }, rpctypes.ErrLeaseTTLTooLarge},
		{"authenticate without auth", func() error {
			_, err := pb.NewAuthClient(cli.ActiveConnection()).Authenticate(c, &pb.AuthenticateRequest{Name: "u", Password: "p"})
			return err
		}, rpctypes.ErrGRPCAuthNotEnabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) && !errors.Is(rpctypes.Error(err), rpctypes.Error(tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("lease exists", func(t *testing.T) {
		g, err := cli.Grant(c, 60)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(c, &pb.LeaseGrantRequest{ID: int64(g.ID), TTL: 60})
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
			t.Fatalf("err = %v, want %v", err, rpctypes.ErrLeaseExist)
		}
	})
	t.Run("membership", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"remove unknown", func() error { _, err := cli.MemberRemove(c, 12345); return err }, rpctypes.ErrMemberNotFound},
			{"update unknown", func() error {
				_, err := cli.MemberUpdate(c, 12345, []string{"http://127.0.0.1:2390"})
				return err
			}, rpctypes.ErrMemberNotFound},
			{"add bad URL", func() error {
				_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberAdd(c, &pb.MemberAddRequest{PeerURLs: []string{"127.0.0.1:2390"}})
				return err
			}, rpctypes.ErrMemberBadURLs},
			{"add taken URL", func() error { _, err := cli.MemberAdd(c, []string{"http://127.0.0.1:12380"}); return err }, rpctypes.ErrPeerURLExist},
			{"promote a voter", func() error {
				ml, err := cli.MemberList(c)
				if err != nil {
					return err
				}
				_, err = cli.MemberPromote(c, ml.Members[0].ID)
				return err
			}, rpctypes.ErrMemberNotLearner},
		} {
			if err := tc.call(); !errors.Is(rpctypes.Error(err), tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
	})
	t.Run("no users or roles", func(t *testing.T) {
		users, err := cli.UserList(c)
		if err != nil || len(users.Users) != 0 {
			t.Fatalf("user list = %v, %v; want empty", users, err)
		}
		if _, err := cli.UserGet(c, "root"); !errors.Is(err, rpctypes.ErrUserNotFound) {
			t.Fatalf("user get: %v, want %v", err, rpctypes.ErrUserNotFound)
		}
		if _, err := cli.RoleGet(c, "root"); !errors.Is(err, rpctypes.ErrRoleNotFound) {
			t.Fatalf("role get: %v, want %v", err, rpctypes.ErrRoleNotFound)
		}
	})
	t.Run("auth status says disabled", func(t *testing.T) {
		st, err := cli.AuthStatus(c)
		if err != nil || st.Enabled {
			t.Fatalf("auth status = %v, %v; want disabled", st, err)
		}
	})
}
