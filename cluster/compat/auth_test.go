package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// user is a client identity for the auth steps: each backend gets its own
// clientv3 client logged in as the user, made on first use.
type user struct {
	name, password string
	envs           map[*env]*env
	t              *testing.T
}

func newUser(t *testing.T, name, password string) *user {
	return &user{name: name, password: password, envs: map[*env]*env{}, t: t}
}

// as runs s as u. A client that cannot log in makes the step's outcome that
// error.
func (u *user) as(s step) step {
	return step{fmt.Sprintf("as %s: %s", u.name, s.desc), func(ctx context.Context, e *env) (proto.Message, error) {
		ue, ok := u.envs[e]
		if !ok {
			cli, err := clientv3.New(clientv3.Config{
				Endpoints:   e.cli.Endpoints(),
				Username:    u.name,
				Password:    u.password,
				DialTimeout: 5 * time.Second,
				Logger:      zap.NewNop(),
			})
			if err != nil {
				return nil, err
			}
			u.t.Cleanup(func() { cli.Close() })
			ue = newEnv(backend{name: e.name, cli: cli})
			u.envs[e] = ue
		}
		// Leases the step learns (from a lock key) count for both.
		ue.leases = e.leases
		resp, err := s.do(ctx, ue)
		e.leases = ue.leases
		return resp, err
	}}
}

func authCall(desc string, f func(ctx context.Context, a pb.AuthClient) (proto.Message, error)) step {
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		return f(ctx, pb.NewAuthClient(e.cli.ActiveConnection()))
	}}
}

func authStatus() step {
	return authCall("AuthStatus", func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.AuthStatus(ctx, &pb.AuthStatusRequest{})
	})
}

func authEnable() step {
	return authCall("AuthEnable", func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.AuthEnable(ctx, &pb.AuthEnableRequest{})
	})
}

func authDisable() step {
	return authCall("AuthDisable", func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.AuthDisable(ctx, &pb.AuthDisableRequest{})
	})
}

func authenticate(name, password string) step {
	return authCall(fmt.Sprintf("Authenticate %s/%s", name, password), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		resp, err := a.Authenticate(ctx, &pb.AuthenticateRequest{Name: name, Password: password})
		if resp != nil && resp.Token != "" {
			resp.Token = "TOKEN" // each server makes its own
		}
		return resp, err
	})
}

func userAdd(name, password string, noPassword bool) step {
	r := &pb.AuthUserAddRequest{Name: name, Password: password}
	if noPassword {
		r.Options = &authpb.UserAddOptions{NoPassword: true}
	}
	return authCall("UserAdd "+txt(r), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserAdd(ctx, proto.Clone(r).(*pb.AuthUserAddRequest))
	})
}

func userGrant(name, role string) step {
	r := &pb.AuthUserGrantRoleRequest{User: name, Role: role}
	return authCall("UserGrantRole "+txt(r), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserGrantRole(ctx, r)
	})
}

func userRevoke(name, role string) step {
	r := &pb.AuthUserRevokeRoleRequest{Name: name, Role: role}
	return authCall("UserRevokeRole "+txt(r), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserRevokeRole(ctx, r)
	})
}

func userGet(name string) step {
	return authCall("UserGet "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserGet(ctx, &pb.AuthUserGetRequest{Name: name})
	})
}

func userDelete(name string) step {
	return authCall("UserDelete "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserDelete(ctx, &pb.AuthUserDeleteRequest{Name: name})
	})
}

func userPasswd(name, password string) step {
	return authCall("UserChangePassword "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserChangePassword(ctx, &pb.AuthUserChangePasswordRequest{Name: name, Password: password})
	})
}

func userList() step {
	return authCall("UserList", func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.UserList(ctx, &pb.AuthUserListRequest{})
	})
}

func roleAdd(name string) step {
	return authCall("RoleAdd "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: name})
	})
}

func roleGet(name string) step {
	return authCall("RoleGet "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleGet(ctx, &pb.AuthRoleGetRequest{Role: name})
	})
}

func roleList() step {
	return authCall("RoleList", func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleList(ctx, &pb.AuthRoleListRequest{})
	})
}

func roleDelete(name string) step {
	return authCall("RoleDelete "+name, func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleDelete(ctx, &pb.AuthRoleDeleteRequest{Role: name})
	})
}

func roleGrant(role string, typ authpb.Permission_Type, key, end string) step {
	r := &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: &authpb.Permission{PermType: typ, Key: b(key), RangeEnd: b(end)}}
	if key == "" && end == "" {
		r.Perm = nil
	}
	return authCall("RoleGrantPermission "+txt(r), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleGrantPermission(ctx, r)
	})
}

func roleRevoke(role, key, end string) step {
	r := &pb.AuthRoleRevokePermissionRequest{Role: role, Key: b(key), RangeEnd: b(end)}
	return authCall("RoleRevokePermission "+txt(r), func(ctx context.Context, a pb.AuthClient) (proto.Message, error) {
		return a.RoleRevokePermission(ctx, r)
	})
}

func maintCall(desc string, f func(ctx context.Context, m pb.MaintenanceClient) (proto.Message, error)) step {
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) { return f(ctx, e.maint) }}
}

func keepAliveOnce(id int64) step {
	return step{fmt.Sprintf("LeaseKeepAlive once %d", id), func(ctx context.Context, e *env) (proto.Message, error) {
		s, err := e.lease.LeaseKeepAlive(ctx)
		if err != nil {
			return nil, err
		}
		defer s.CloseSend()
		if err := s.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			return nil, err
		}
		resp, err := s.Recv()
		if resp != nil && resp.TTL > 0 {
			resp.TTL = 1
		}
		return resp, err
	}}
}

func snapshotFirst() step {
	return step{"Snapshot (first chunk)", func(ctx context.Context, e *env) (proto.Message, error) {
		s, err := e.maint.Snapshot(ctx, &pb.SnapshotRequest{})
		if err != nil {
			return nil, err
		}
		if _, err := s.Recv(); err != nil {
			return nil, err
		}
		return &pb.SnapshotResponse{}, nil
	}}
}

const (
	read      = authpb.Permission_READ
	write     = authpb.Permission_WRITE
	readWrite = authpb.Permission_READWRITE
)

// TestAuthAgainstEtcd runs one sequence of Auth calls, and of KV, Watch,
// Lease and Maintenance calls by users of different roles, against tend and
// a real etcd, and requires the same responses and errors.
func TestAuthAgainstEtcd(t *testing.T) {
	t.Parallel()
	oracle, tend := newEnv(startEtcd(t)), newEnv(startTend(t))
	differ(t, oracle, tend, authSteps(t))
}

func authSteps(t *testing.T) []step {
	root := newUser(t, "root", "rootpw")
	alice := newUser(t, "alice", "alicepw") // reads /app1/, writes /app1/w
	bob := newUser(t, "bob", "bobpw")       // reads and writes /app2/
	carol := newUser(t, "carol", "carolpw") // reads everything, writes nothing

	steps := []step{
		// Setting up, with auth off: anyone may.
		authStatus(),
		authenticate("root", "rootpw"),
		authEnable(),
		userAdd("root", "rootpw", false),
		userAdd("root", "other", false),
		userAdd("", "x", false),
		authEnable(),
		userGrant("root", "root"),
		userGrant("root", "root"),
		roleAdd("app1"), roleAdd("app2"), roleAdd("app1"), roleAdd(""), roleAdd("all"),
		roleGrant("app1", read, "/app1/", "/app10"),
		roleGrant("app1", write, "/app1/w", ""),
		roleGrant("app1", readWrite, "/app1/w", ""),
		roleGrant("app1", write, "/app1/w", ""),
		roleGrant("app2", readWrite, "/app2/", "/app20"),
		roleGrant("all", read, "\x00", "\x00"),
		roleGrant("app1", read, "/z", "/a"),
		roleGrant("app1", read, "", "/a"),
		roleGrant("nope", read, "/a", ""),
		roleGrant("app1", read, "", ""),
		roleRevoke("app1", "/nothing", ""),
		roleRevoke("nope", "/nothing", ""),
		userAdd("alice", "alicepw", false),
		userAdd("bob", "bobpw", false),
		userAdd("carol", "carolpw", false),
		userAdd("cn-client", "", true),
		userGrant("alice", "app1"), userGrant("bob", "app2"), userGrant("carol", "all"),
		userGrant("alice", "nope"), userGrant("mallory", "app1"),
		userGet("alice"), userGet("root"), userGet("mallory"),
		roleGet("app1"), roleGet("all"), roleGet("root"), roleGet("nope"),
		userList(), roleList(),
		put("/app1/x", "1"), put("/app1/w", "1"), put("/app2/x", "2"), put("/other", "o"),
		grant(100, 1001), grant(100, 1002),
		putReq(&pb.PutRequest{Key: b("/app2/leased"), Value: b("b"), Lease: 1002}, 0),
		authEnable(),
		authEnable(),
		authStatus(),

		// Auth on: no credentials.
		get(&pb.RangeRequest{Key: b("/app1/x")}),
		put("/app1/x", "anon"),
		userList(),
		authStatus(),
		authenticate("root", "wrong"),
		authenticate("nobody", "x"),
		authenticate("cn-client", "x"),
		authenticate("alice", "alicepw"),
		grant(100, 0),
		maintCall("Alarm GET", func(ctx context.Context, m pb.MaintenanceClient) (proto.Message, error) {
			return m.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
		}),

		// alice may read /app1/ and write /app1/w only.
		alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
		alice.as(get(&pb.RangeRequest{Key: b("/app1/"), RangeEnd: b("/app10")})),
		alice.as(get(&pb.RangeRequest{Key: b("/app1/"), RangeEnd: b("/app10"), Serializable: true})),
		alice.as(get(&pb.RangeRequest{Key: b("/app2/x")})),
		alice.as(get(&pb.RangeRequest{Key: b("/app1/"), RangeEnd: b("/app2")})),
		alice.as(get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})),
		alice.as(put("/app1/x", "alice")),
		alice.as(put("/app1/w", "alice")),
		alice.as(putReq(&pb.PutRequest{Key: b("/app1/w"), Value: b("again"), PrevKv: true}, 0)),
		alice.as(putReq(&pb.PutRequest{Key: b("/app1/w"), Value: b("leased"), Lease: 1002}, 0)),
		alice.as(del(&pb.DeleteRangeRequest{Key: b("/app1/x")})),
		alice.as(del(&pb.DeleteRangeRequest{Key: b("/app1/w"), PrevKv: true})),
		alice.as(txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("/app1/x", pb.Compare_GREATER, 0)},
			Success: []*pb.RequestOp{reqGet("/app1/x", "")},
			Failure: []*pb.RequestOp{reqGet("/app1/w", "")},
		})),
		alice.as(txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("/app1/x", pb.Compare_GREATER, 0)},
			Success: []*pb.RequestOp{reqGet("/app1/x", "")},
			Failure: []*pb.RequestOp{reqGet("/app2/x", "")},
		})),
		alice.as(txn(&pb.TxnRequest{Compare: []*pb.Compare{cmpVersion("/app2/x", pb.Compare_GREATER, 0)}})),
		alice.as(txn(&pb.TxnRequest{Success: []*pb.RequestOp{reqTxn(&pb.TxnRequest{Success: []*pb.RequestOp{reqPut("/app1/w", "nested")}})}})),
		alice.as(txn(&pb.TxnRequest{Success: []*pb.RequestOp{reqTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{reqPut("/app1/x", "nested")}})}})),
		alice.as(watch("/app1/", "/app10", 1, false, 2)),
		alice.as(watch("/app2/", "/app20", 1, false, 1)),
		alice.as(watch("", "\x00", 1, false, 1)),
		alice.as(grant(60, 2001)),
		alice.as(putReq(&pb.PutRequest{Key: b("/app1/w"), Value: b("mine"), Lease: 2001}, 0)),
		alice.as(timeToLive(2001, true)),
		alice.as(keepAliveOnce(2001)),
		alice.as(revoke(1002)),
		alice.as(timeToLive(1002, false)),
		alice.as(timeToLive(1002, true)),
		alice.as(keepAliveOnce(1002)),
		alice.as(leases()),
		alice.as(userGet("alice")),
		alice.as(userGet("bob")),
		alice.as(roleGet("app1")),
		alice.as(roleGet("app2")),
		alice.as(userList()),
		alice.as(roleList()),
		alice.as(userAdd("eve", "x", false)),
		alice.as(authStatus()),
		alice.as(compact(2, false)),
		alice.as(hashKV(0)),
		alice.as(snapshotFirst()),
		alice.as(maintCall("Defragment", func(ctx context.Context, m pb.MaintenanceClient) (proto.Message, error) {
			return m.Defragment(ctx, &pb.DefragmentRequest{})
		})),
		alice.as(maintCall("Alarm DEACTIVATE", func(ctx context.Context, m pb.MaintenanceClient) (proto.Message, error) {
			return m.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE})
		})),
		alice.as(alarms()),
		alice.as(authDisable()),
	}
	// The Auth calls etcd leaves to root, without credentials and as
	// alice, who may not even change her own password.
	for _, as := range []func(step) step{func(s step) step { return s }, alice.as} {
		steps = append(steps,
			as(authEnable()),
			as(userAdd("eve", "x", true)),
			as(userDelete("bob")),
			as(userPasswd("alice", "mine")),
			as(userGrant("alice", "app2")),
			as(userRevoke("alice", "app1")),
			as(roleAdd("eve")),
			as(roleDelete("app2")),
			as(roleGrant("app1", readWrite, "\x00", "\x00")),
			as(roleRevoke("app1", "/app1/", "/app10")),
			as(roleGet("app2")),
			as(userGet("bob")),
		)
	}
	// Cluster and Maintenance calls without credentials, as alice, as root.
	steps = append(steps, clusterAuthSteps(alice, root)...)
	steps = append(steps, []step{

		// bob owns lease 1002's key; carol reads all.
		bob.as(get(&pb.RangeRequest{Key: b("/app2/"), RangeEnd: b("/app20")})),
		bob.as(timeToLive(1002, true)),
		bob.as(keepAliveOnce(1002)),
		carol.as(get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})),
		carol.as(leases()),
		carol.as(timeToLive(1002, true)),
		carol.as(put("/other", "carol")),
		carol.as(watch("", "\x00", 1, false, 4)),
		bob.as(revoke(1002)),

		// root may do anything but remove itself as root.
		root.as(get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})),
		root.as(leases()),
		root.as(userDelete("root")),
		root.as(userRevoke("root", "root")),
		root.as(roleDelete("root")),
		root.as(userList()),
		root.as(roleGet("root")),
		root.as(userGet("cn-client")),
		root.as(compact(3, false)),
		root.as(hashKV(0)),
		root.as(snapshotFirst()),
		root.as(revoke(1001)),

		// Changes take effect at once: alice loses her read.
		root.as(roleRevoke("app1", "/app1/", "/app10")),
		root.as(roleRevoke("app1", "/app1/", "/app10")),
		alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
		alice.as(put("/app1/w", "still")),
		root.as(roleDelete("app1")),
		alice.as(put("/app1/w", "gone")),
		alice.as(userGet("alice")),
		root.as(userRevoke("bob", "app2")),
		root.as(userRevoke("bob", "app2")),
		bob.as(get(&pb.RangeRequest{Key: b("/app2/x")})),
		// A changed password ends the user's session: its client cannot
		// log in again with the old one.
		root.as(userPasswd("carol", "new")),
		carol.as(get(&pb.RangeRequest{Key: b("/other")})),
		authenticate("carol", "carolpw"),
		authenticate("carol", "new"),
		root.as(userDelete("bob")),
		bob.as(get(&pb.RangeRequest{Key: b("/app2/x")})),
		root.as(userDelete("bob")),
		root.as(authStatus()),
		root.as(authDisable()),
		root.as(authDisable()),

		// Auth off again: anyone, and the users remain.
		authStatus(),
		get(&pb.RangeRequest{Key: b("/app2/x")}),
		userList(),
		roleList(),
		userDelete("root"),
		roleDelete("root"),
		authEnable(),
		userList(),
	}...)
	return steps
}

// TestAuthTokenRefresh: a token the server forgot (auth disabled and enabled
// again) is answered with etcd's "invalid auth token"; clientv3 then
// authenticates again by itself and the call succeeds, on both servers.
func TestAuthTokenRefresh(t *testing.T) {
	t.Parallel()
	oracle, tend := newEnv(startEtcd(t)), newEnv(startTend(t))
	alice := newUser(t, "alice", "alicepw")
	root := newUser(t, "root", "rootpw")
	tokens := map[*env]string{}
	keep := step{"Authenticate alice, keep the token", func(ctx context.Context, e *env) (proto.Message, error) {
		resp, err := pb.NewAuthClient(e.cli.ActiveConnection()).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
		if err != nil {
			return nil, err
		}
		tokens[e] = resp.Token
		return &pb.AuthenticateResponse{}, nil
	}}
	withKept := step{"Range /app1/x with the kept token", func(ctx context.Context, e *env) (proto.Message, error) {
		ctx = metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tokens[e])
		return pb.NewKVClient(e.cli.ActiveConnection()).Range(ctx, &pb.RangeRequest{Key: b("/app1/x")})
	}}
	steps := []step{
		userAdd("root", "rootpw", false), userGrant("root", "root"),
		roleAdd("app1"), roleGrant("app1", read, "/app1/", "/app10"),
		userAdd("alice", "alicepw", false), userGrant("alice", "app1"),
		put("/app1/x", "1"),
		authEnable(),
		alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
		keep,
		withKept,
		root.as(authDisable()),
		authEnable(),
		withKept,
		alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
		alice.as(watch("/app1/", "/app10", 1, false, 1)),
	}
	differ(t, oracle, tend, steps)
}
