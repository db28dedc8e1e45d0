package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/pkg/v3/adt"
)

// etcdCovers decides a permission check the way etcd's range permission
// cache does, with etcd's own interval tree: the oracle for keyRanges.
func etcdCovers(perms []*authpb.Permission, key, end []byte) bool {
	tree := adt.NewIntervalTree()
	for _, p := range perms {
		var ivl adt.Interval
		var rangeEnd []byte
		if !isOpenEnd(p.RangeEnd) {
			rangeEnd = p.RangeEnd
		}
		if len(p.RangeEnd) != 0 {
			ivl = adt.NewBytesAffineInterval(p.Key, rangeEnd)
		} else {
			ivl = adt.NewBytesAffinePoint(p.Key)
		}
		tree.Insert(ivl, struct{}{})
	}
	if len(end) == 0 {
		return tree.Intersects(adt.NewBytesAffinePoint(key))
	}
	if isOpenEnd(end) {
		end = nil
	}
	return tree.Contains(adt.NewBytesAffineInterval(key, end))
}

// TestPermRangesMatchEtcd compares random permission sets and requests with
// etcd's interval tree.
func TestPermRangesMatchEtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	keys := []string{"a", "a\x00", "ab", "abc", "b", "ba", "c", "d", "/app1/", "/app10", "/app2/", "z"}
	key := func() []byte { return []byte(keys[rng.IntN(len(keys))]) }
	end := func(k []byte) []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{0}
		}
		return key()
	}
	for i := range 20000 {
		var perms []*authpb.Permission
		for range rng.IntN(4) {
			k := key()
			e := end(k)
			if !validPermRange(k, e) {
				continue
			}
			perms = append(perms, &authpb.Permission{Key: k, RangeEnd: e})
		}
		st := &authState{
			users: map[string]*authpb.User{"u": {Name: []byte("u"), Roles: []string{"r"}}},
			roles: map[string]*authpb.Role{"r": {Name: []byte("r"), KeyPermission: perms}},
		}
		up := mergePerms(st)["u"]
		k := key()
		e := end(k)
		if e != nil && !isOpenEnd(e) && bytes.Compare(e, k) <= 0 {
			// An end at or below the key selects nothing. etcd's tree
			// answers such ranges by the shape of the tree (its search
			// prunes subtrees); the store checks the key alone.
			continue
		}
		if got, want := up.read.cover(k, e), etcdCovers(perms, k, e); got != want {
			t.Fatalf("case %d: perms %v, request [%q, %q): got %v, etcd %v", i, perms, k, e, got, want)
		}
	}
}

// TestAuthSurvivesSnapshot: users, roles and the enabled flag travel in a
// snapshot to another store, as etcd's auth buckets do.
func TestAuthSurvivesSnapshot(t *testing.T) {
	a := &applier{t: t, s: testStore(t, Options{})}
	for _, r := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: "eA=="}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "app"}},
		{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "app", Perm: &authpb.Permission{Key: []byte("/app/"), RangeEnd: []byte("/app0")}}},
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: "eA=="}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "u", Role: "app"}},
		{AuthEnable: &pb.AuthEnableRequest{}},
	} {
		a.apply(r)
	}
	want := authText(a.s.Auth())
	var snap bytes.Buffer
	if _, err := a.s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	other := testStore(t, Options{})
	if got := authText(other.Auth()); got != "enabled=false revision=1" {
		t.Fatalf("fresh store: %s", got)
	}
	if err := other.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	if got := authText(other.Auth()); got != want {
		t.Fatalf("restored auth state:\n%s\nwant:\n%s", got, want)
	}
	ai := AuthInfo{Username: "u", Revision: other.Auth().Revision()}
	if err := other.Auth().CheckRange(ai, []byte("/app/x"), nil); err != nil {
		t.Errorf("read /app/x after restore: %v", err)
	}
	if err := other.Auth().CheckRange(ai, []byte("/other"), nil); err != ErrPermissionDenied {
		t.Errorf("read /other after restore: %v, want %v", err, ErrPermissionDenied)
	}
	u, ok := other.Auth().User("u")
	if !ok || string(u.Password) != "x" {
		t.Errorf("user u after restore: %v %v", u, ok)
	}
}

// issued records what a TokenIssuer was asked, as simple tokens are made.
type issued struct{ calls []string }

func (i *issued) Assign(user string, rev, index uint64, prefix string) (string, error) {
	tok := fmt.Sprintf("%s.%d", prefix, index)
	i.calls = append(i.calls, fmt.Sprintf("assign %s rev=%d -> %s", user, rev, tok))
	return tok, nil
}
func (i *issued) Forget(user string) { i.calls = append(i.calls, "forget "+user) }
func (i *issued) ForgetAll()         { i.calls = append(i.calls, "forget all") }

// TestAuthenticateAssignsTokens: an applied Authenticate gets its token from
// the issuer, with the log index; deleting a user, changing its password and
// disabling auth make the issuer forget tokens.
func TestAuthenticateAssignsTokens(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tokens := &issued{}
	s.SetTokenIssuer(tokens)
	a := &applier{t: t, s: s}
	authn := func(name string) Result {
		a.index++
		res, err := s.Apply(a.index, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: name, SimpleToken: "P"}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := authn("root"); res.Err != ErrAuthNotEnabled {
		t.Fatalf("authenticate with auth off: %v", res.Err)
	}
	root := &pb.RequestHeader{Username: "root"}
	a.apply(&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: "eA=="}})
	a.apply(&pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}})
	a.apply(&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: "eA=="}})
	a.apply(&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "cn", Options: &authpb.UserAddOptions{NoPassword: true}}})
	a.apply(&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}})
	res := authn("u")
	if res.Err != nil || res.Resp.(*pb.AuthenticateResponse).Token != fmt.Sprintf("P.%d", a.index) {
		t.Fatalf("authenticate u: %v %v", res.Resp, res.Err)
	}
	for _, name := range []string{"nobody", "cn"} {
		if res := authn(name); res.Err != ErrAuthFailed {
			t.Errorf("authenticate %s: %v, want %v", name, res.Err, ErrAuthFailed)
		}
	}
	a.apply(&pb.InternalRaftRequest{Header: root, AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "u", HashedPassword: "eQ=="}})
	a.apply(&pb.InternalRaftRequest{Header: root, AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "u"}})
	a.apply(&pb.InternalRaftRequest{Header: root, AuthDisable: &pb.AuthDisableRequest{}})
	want := []string{"assign u rev=5 -> P.7", "forget u", "forget u", "forget all"}
	if fmt.Sprint(tokens.calls) != fmt.Sprint(want) {
		t.Errorf("issuer calls:\n%q\nwant\n%q", tokens.calls, want)
	}
}
