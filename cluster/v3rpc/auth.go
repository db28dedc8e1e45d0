package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/auth"
	"github.com/tendkv/tend/store"
)

// authServer serves etcd's Auth service. Every call but Authenticate goes
// through Raft with the caller in its header, and the store decides (the
// root role for changes and lists; oneself or one's own roles for gets), so
// all members agree. Passwords are hashed here, before proposing: the Raft
// log never holds one in the clear.
type authServer struct {
	pb.UnimplementedAuthServer
	b         Backend
	hdr       header
	auth      *authn
	passwords *auth.Passwords
}

// proposeAuth proposes one Auth request and fills its response's header.
func proposeAuth[T interface {
	proto.Message
	GetHeader() *pb.ResponseHeader
}](ctx context.Context, s *authServer, r *pb.InternalRaftRequest) (T, error) {
	resp, err := propose[T](ctx, s.b, r)
	if err != nil {
		var zero T
		return zero, err
	}
	s.hdr.fill(resp.GetHeader())
	return resp, nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return proposeAuth[*pb.AuthEnableResponse](ctx, s, &pb.InternalRaftRequest{AuthEnable: r})
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return proposeAuth[*pb.AuthDisableResponse](ctx, s, &pb.InternalRaftRequest{AuthDisable: r})
}

func (s *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return proposeAuth[*pb.AuthStatusResponse](ctx, s, &pb.InternalRaftRequest{AuthStatus: r})
}

// Authenticate checks the password here (bcrypt is slow: not in the apply
// loop), then proposes the authentication without it, so that every member
// learns a simple token. If users changed between the check and the apply,
// it checks again, as etcd does.
func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.b.LinearizableRead(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	for {
		v := s.b.Store().Auth()
		if !v.Enabled() {
			return nil, toGRPCError(store.ErrAuthNotEnabled)
		}
		u, _ := v.User(r.Name)
		if !s.passwords.Check(u, r.Password) {
			if u != nil && u.GetOptions().GetNoPassword() {
				return nil, toGRPCError(store.ErrNoPasswordUser)
			}
			s.auth.lg.Info("authentication failed", "user-name", r.Name)
			return nil, toGRPCError(store.ErrAuthFailed)
		}
		prefix, err := s.auth.tokens.Prefix()
		if err != nil {
			return nil, toGRPCError(err)
		}
		resp, err := proposeAuth[*pb.AuthenticateResponse](ctx, s, &pb.InternalRaftRequest{
			Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: prefix},
		})
		if err != nil {
			return nil, err
		}
		if v.Revision() == s.b.Store().Auth().Revision() {
			return resp, nil
		}
	}
}

func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	if !r.GetOptions().GetNoPassword() {
		h, err := s.passwords.Hash(r.Password)
		if err != nil {
			return nil, toGRPCError(err)
		}
		r.HashedPassword, r.Password = h, ""
	}
	return proposeAuth[*pb.AuthUserAddResponse](ctx, s, &pb.InternalRaftRequest{AuthUserAdd: r})
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return proposeAuth[*pb.AuthUserDeleteResponse](ctx, s, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	if r.Password != "" {
		h, err := s.passwords.Hash(r.Password)
		if err != nil {
			return nil, toGRPCError(err)
		}
		r.HashedPassword, r.Password = h, ""
	}
	return proposeAuth[*pb.AuthUserChangePasswordResponse](ctx, s, &pb.InternalRaftRequest{AuthUserChangePassword: r})
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return proposeAuth[*pb.AuthUserGrantRoleResponse](ctx, s, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return proposeAuth[*pb.AuthUserRevokeRoleResponse](ctx, s, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return proposeAuth[*pb.AuthUserGetResponse](ctx, s, &pb.InternalRaftRequest{AuthUserGet: r})
}

func (s *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return proposeAuth[*pb.AuthUserListResponse](ctx, s, &pb.InternalRaftRequest{AuthUserList: r})
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return proposeAuth[*pb.AuthRoleAddResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return proposeAuth[*pb.AuthRoleDeleteResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return proposeAuth[*pb.AuthRoleGetResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleGet: r})
}

func (s *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return proposeAuth[*pb.AuthRoleListResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleList: r})
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return proposeAuth[*pb.AuthRoleGrantPermissionResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return proposeAuth[*pb.AuthRoleRevokePermissionResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}
