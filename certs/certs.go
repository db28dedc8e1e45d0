package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// Files names the PEM files of one side (client or peer) of a member.
type Files struct {
	CertFile string // the certificate chain, leaf first
	KeyFile  string // its private key
	CAFile   string // trusted CAs; "" trusts none of its own
}

// stamp identifies one version of a file on disk.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	s := stamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s, nil
}

// material is one consistent reading of the files.
type material struct {
	pair   *tls.Certificate // nil without CertFile
	pool   *x509.CertPool   // nil without CAFile
	server *tls.Config      // built from the above by ServerConfig's template
}

// Source serves the current reading of a set of files. The key pair and
// the CA bundle are read again each on its own, so a malformed certificate
// does not hold back a new CA bundle, or the other way round.
type Source struct {
	files Files
	log   *slog.Logger

	mu     sync.Mutex
	stamps [3]stamp  // guarded by mu: cert, key, CA as last read
	failed [3]stamp  // guarded by mu: the stamps of the last readings that failed
	cur    *material // guarded by mu
	// serverTemplate, when set, builds the per-handshake server config.
	serverTemplate func(*material) *tls.Config // guarded by mu
}

// Load reads f's files. A file left empty in f is not used; CertFile and
// KeyFile go together.
func Load(f Files, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a certificate file and a key file go together: give both or neither")
	}
	s := &Source{files: f, log: log, cur: &material{}}
	for i, p := range s.paths() {
		if p == "" {
			continue
		}
		st, err := statFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind(i), p, err)
		}
		s.stamps[i] = st
	}
	if f.CertFile != "" {
		pair, err := LoadKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		s.cur.pair = pair
		if leaf := pair.Leaf; time.Now().After(leaf.NotAfter) {
			log.Warn("certificate has expired", "cert-file", f.CertFile, "not-after", leaf.NotAfter)
		}
	}
	if f.CAFile != "" {
		pool, err := LoadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		s.cur.pool = pool
	}
	return s, nil
}

// Files are the files the Source reads.
func (s *Source) Files() Files { return s.files }

func (s *Source) paths() [3]string {
	return [3]string{s.files.CertFile, s.files.KeyFile, s.files.CAFile}
}

func kind(i int) string {
	return [...]string{"certificate file", "key file", "trusted CA file"}[i]
}

// current returns the material in use, reading the files again first if
// one changed since.
func (s *Source) current() *material {
	s.mu.Lock()
	defer s.mu.Unlock()
	var now [3]stamp
	for i, p := range s.paths() {
		if p == "" {
			continue
		}
		st, err := statFile(p)
		if err != nil {
			// Replaced by a rename in progress, or removed: keep what
			// works, try again on the next handshake.
			return s.cur
		}
		now[i] = st
	}
	pairChanged := (now[0] != s.stamps[0] || now[1] != s.stamps[1]) && (now[0] != s.failed[0] || now[1] != s.failed[1])
	poolChanged := now[2] != s.stamps[2] && now[2] != s.failed[2]
	if !pairChanged && !poolChanged {
		return s.cur
	}
	m := *s.cur
	if pairChanged {
		if pair, err := LoadKeyPair(s.files.CertFile, s.files.KeyFile); err != nil {
			s.failed[0], s.failed[1] = now[0], now[1]
			s.log.Error("reload TLS certificate: keeping the one in use", "err", err)
		} else {
			m.pair = pair
			s.stamps[0], s.stamps[1] = now[0], now[1]
			s.log.Info("reloaded TLS certificate", "cert-file", s.files.CertFile, "subject", pair.Leaf.Subject.String(), "not-after", pair.Leaf.NotAfter)
		}
	}
	if poolChanged {
		if pool, err := LoadPool(s.files.CAFile); err != nil {
			s.failed[2] = now[2]
			s.log.Error("reload trusted CA file: keeping the CAs in use", "err", err)
		} else {
			m.pool = pool
			s.stamps[2] = now[2]
			s.log.Info("reloaded trusted CA file", "trusted-ca-file", s.files.CAFile)
		}
	}
	if m.pair == s.cur.pair && m.pool == s.cur.pool {
		return s.cur
	}
	if s.serverTemplate != nil {
		m.server = s.serverTemplate(&m)
	}
	s.cur = &m
	return s.cur
}

// Certificate is the current key pair; nil without a certificate file.
func (s *Source) Certificate() *tls.Certificate { return s.current().pair }

// Pool is the current trusted CA bundle; nil without a CA file.
func (s *Source) Pool() *x509.CertPool { return s.current().pool }

// ServerConfig is a server configuration presenting the current key pair.
// With clientAuth, clients must present a certificate the current CA bundle
// verifies (the system's roots without a CA file). nextProtos are the ALPN
// protocols, in order of preference.
func (s *Source) ServerConfig(clientAuth bool, nextProtos []string) *tls.Config {
	template := func(m *material) *tls.Config {
		c := &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: nextProtos,
			ClientCAs:  m.pool,
		}
		if m.pair != nil {
			c.Certificates = []tls.Certificate{*m.pair}
		}
		if clientAuth {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c
	}
	s.mu.Lock()
	s.serverTemplate = template
	s.cur.server = template(s.cur)
	s.mu.Unlock()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current().server, nil
		},
	}
}

// ClientConfig is a client configuration presenting the current key pair
// (when there is one). With verify, the server's certificate must be
// valid for the name dialled and verified by the current CA bundle (the
// system's roots without a CA file); without, any certificate is taken, as
// for a self-signed one.
func (s *Source) ClientConfig(verify bool) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if p := s.current().pair; p != nil {
				return p, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
	switch {
	case !verify:
		c.InsecureSkipVerify = true
	case s.files.CAFile != "":
		// Verified here rather than by RootCAs, so that a rotated CA
		// file counts from the next connection on.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			return VerifyServer(cs, s.current().pool)
		}
	}
	return c
}

// VerifyServer verifies the server certificate of a connection against
// roots, for the name dialled (cs.ServerName).
func VerifyServer(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		DNSName:       cs.ServerName,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// LoadKeyPair reads a certificate chain and its private key; errors name
// the file at fault.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", certFile, err)
	}
	if !hasKeyBlock(keyPEM) {
		return nil, fmt.Errorf("key file %s: no PEM private key in it (want a \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\" block)", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key file %s with certificate file %s: %w", keyFile, certFile, err)
	}
	pair.Leaf = certs[0]
	return &pair, nil
}

// LoadPool reads a bundle of trusted CA certificates.
func LoadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("trusted CA file %s: %w", caFile, err)
	}
	certs, err := parseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("trusted CA file %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCerts parses every CERTIFICATE block of a PEM file; there must be
// at least one, and nothing but PEM.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, errors.New("the file is empty (want PEM \"CERTIFICATE\" blocks)")
		}
		return nil, errors.New("no PEM \"CERTIFICATE\" block in it")
	}
	return out, nil
}

func hasKeyBlock(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "PRIVATE KEY" || bytes.HasSuffix([]byte(block.Type), []byte(" PRIVATE KEY")) {
			return true
		}
	}
}
