package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/agent/config"
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
		tc := &tls.Config{ServerName: s.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if s.TLS.CAFile != "" {
			pem, err := os.ReadFile(s.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read store tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("read store tls ca_file %s: no PEM certificate in it (point it at the CA's .pem)", s.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if s.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("load store tls cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cc.TLS = tc
	}
	c, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect to store %v: %w", s.Endpoints, err)
	}
	return c, nil
}
