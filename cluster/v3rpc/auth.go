package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// authServer answers as an etcd with authentication disabled: status says
// so, disabling is a no-op, authenticating fails with "authentication is not
// enabled", and user and role management is not supported yet (the
// embedded Unimplemented server answers those).
type authServer struct {
	pb.UnimplementedAuthServer
	hdr header
}

func (s *authServer) AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	resp := &pb.AuthStatusResponse{Header: &pb.ResponseHeader{}, Enabled: false}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *authServer) AuthDisable(context.Context, *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	resp := &pb.AuthDisableResponse{Header: &pb.ResponseHeader{}}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *authServer) Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return nil, rpctypes.ErrGRPCAuthNotEnabled
}

func (s *authServer) AuthEnable(context.Context, *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return nil, errNotSupported("auth enable")
}
