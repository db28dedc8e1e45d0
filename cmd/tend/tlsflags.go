package main

import (
	"github.com/spf13/pflag"

	"github.com/tendkv/tend/cluster"
)

// addTLSServerFlags registers etcd's TLS flags of `tend server`, for the
// client side and (prefixed "peer-") the peer side.
func addTLSServerFlags(f *pflag.FlagSet, cfg *cluster.Config) {
	for _, s := range []struct {
		prefix, who string
		files       *cluster.TLSFiles
	}{
		{"", "client", &cfg.ClientTLS},
		{"peer-", "peer", &cfg.PeerTLS},
	} {
		p, who := s.prefix, s.who
		f.StringVar(&s.files.CertFile, p+"cert-file", "", "path to the "+who+" server TLS certificate file (PEM); re-read when it changes")
		f.StringVar(&s.files.KeyFile, p+"key-file", "", "path to the "+who+" server TLS key file (PEM); re-read when it changes")
		f.StringVar(&s.files.TrustedCAFile, p+"trusted-ca-file", "", "path to the "+who+" TLS trusted CA bundle (PEM); giving it also requires "+who+" certificates signed by it")
		f.BoolVar(&s.files.ClientCertAuth, p+"client-cert-auth", false, "require "+who+" certificates signed by --"+p+"trusted-ca-file")
		f.BoolVar(&s.files.AutoTLS, p+"auto-tls", false, s.who+" TLS with a generated self-signed certificate (kept in <data-dir>/fixtures/"+who+")")
	}
}
