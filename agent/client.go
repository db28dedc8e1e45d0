package agent

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/certs"
)

// Dial connects a clientv3 client to the store the configuration names.
func Dial(s config.Store) (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints:   s.Endpoints,
		DialTimeout: s.DialTimeout,
		Username:    s.Username,
		Password:    s.Password,
		Logger:      zap.NewNop(),
	}
	if s.TLS != nil {
		// Certificate, key and CA are read again when their files change,
		// for the next connection: a rotated client certificate is used
		// without a restart.
		src, err := certs.Load(certs.Files{CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile, CAFile: s.TLS.CAFile}, nil)
		if err != nil {
			return nil, fmt.Errorf("store tls: %w", err)
		}
		cc.TLS = src.ClientConfig(true)
		if s.TLS.ServerName != "" {
			// gRPC verifies the name in the call's authority (the
			// endpoint's host) and ignores tls.Config.ServerName.
			cc.DialOptions = append(cc.DialOptions, grpc.WithAuthority(s.TLS.ServerName))
		}
	}
	c, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect to store %v: %w", s.Endpoints, err)
	}
	return c, nil
}
