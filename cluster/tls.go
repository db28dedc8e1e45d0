package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tendkv/tend/certs"
	"github.com/tendkv/tend/cluster/transport"
)

// TLSFiles are the TLS settings of one side of a member, clients or peers,
// with etcd's flags and meaning.
type TLSFiles struct {
	CertFile string // --cert-file: the member's certificate (PEM)
	KeyFile  string // --key-file: its key
	// TrustedCAFile (--trusted-ca-file) verifies the certificates the
	// other side presents. As in etcd, giving it requires them: a client
	// (or peer) without a certificate it verifies is refused at the
	// handshake.
	TrustedCAFile string
	// ClientCertAuth (--client-cert-auth) requires a verified certificate
	// of every client (or peer); it needs TrustedCAFile.
	ClientCertAuth bool
	// AutoTLS (--auto-tls) serves a self-signed certificate kept in
	// <data-dir>/fixtures/{client,peer} when CertFile and KeyFile are
	// empty. Members do not verify one another's auto certificates.
	AutoTLS bool
}

// autoTLSValidity is how long a self-signed certificate is valid (etcd's
// --self-signed-cert-validity default, one year).
const autoTLSValidity = 365 * 24 * time.Hour

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// validateTLS checks that every https:// URL has TLS to serve or dial it,
// naming the flags to give.
func (c *Config) validateTLS(initial map[string][]string) error {
	sides := []struct {
		prefix string
		files  TLSFiles
		urls   map[string][]string
	}{
		{"", c.ClientTLS, map[string][]string{
			"listen-client-urls":    c.ListenClientURLs,
			"advertise-client-urls": c.AdvertiseClientURLs,
			"listen-metrics-urls":   c.ListenMetricsURLs,
		}},
		{"peer-", c.PeerTLS, map[string][]string{
			"listen-peer-urls":            c.ListenPeerURLs,
			"initial-advertise-peer-urls": c.InitialAdvertisePeerURLs,
			"initial-cluster":             flatten(initial),
		}},
	}
	for _, s := range sides {
		f, p := s.files, s.prefix
		if (f.CertFile == "") != (f.KeyFile == "") {
			return fmt.Errorf("--%scert-file and --%skey-file go together: give both or neither", p, p)
		}
		if f.ClientCertAuth && f.TrustedCAFile == "" {
			return fmt.Errorf("--%sclient-cert-auth: give --%strusted-ca-file, the CA bundle that signs the certificates to accept", p, p)
		}
		if f.CertFile != "" || f.AutoTLS {
			continue
		}
		for _, flag := range []string{"listen-client-urls", "advertise-client-urls", "listen-metrics-urls", "listen-peer-urls", "initial-advertise-peer-urls", "initial-cluster"} {
			for _, u := range s.urls[flag] {
				if strings.HasPrefix(u, "https://") {
					return fmt.Errorf("--%s %s: an https:// URL needs TLS: give --%scert-file and --%skey-file (or --%sauto-tls)", flag, u, p, p, p)
				}
			}
		}
	}
	return nil
}

func flatten(m map[string][]string) []string {
	var out []string
	for _, urls := range m {
		out = append(out, urls...)
	}
	return out
}

// memberTLS is the member's TLS material for each side; a nil side has
// none (its URLs are all http://).
type memberTLS struct {
	client, peer *tlsSide
}

// tlsSide is one side's certificates and what they are used with.
type tlsSide struct {
	src *certs.Source
	// verify: the other side's certificates are checked against
	// --trusted-ca-file when this member dials it. Without a CA (a
	// self-signed or server-only setup) they are taken as they come.
	verify bool
	server *tls.Config // for this side's listeners
}

// newMemberTLS loads the certificates the configuration names, or writes
// the self-signed ones --auto-tls asks for. Errors name the flag and file.
func newMemberTLS(cfg Config) (*memberTLS, error) {
	var t memberTLS
	var err error
	if t.client, err = newTLSSide(cfg, cfg.ClientTLS, "", "client", cfg.ListenClientURLs, cfg.AdvertiseClientURLs, []string{"http/1.1", "h2"}); err != nil {
		return nil, err
	}
	if t.peer, err = newTLSSide(cfg, cfg.PeerTLS, "peer-", "peer", cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs, nil); err != nil {
		return nil, err
	}
	return &t, nil
}

// newTLSSide builds one side; nextProtos are its listeners' ALPN
// protocols in order of preference.
func newTLSSide(cfg Config, f TLSFiles, prefix, fixture string, listen, advertise []string, nextProtos []string) (*tlsSide, error) {
	files := certs.Files{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: f.TrustedCAFile}
	switch {
	case f.CertFile != "":
		if f.AutoTLS {
			cfg.Logger.Warn(fmt.Sprintf("ignoring --%sauto-tls: --%scert-file is given", prefix, prefix))
		}
	case f.AutoTLS:
		dir := filepath.Join(cfg.DataDir, "fixtures", fixture)
		self, err := certs.SelfSigned(dir, urlHosts(append(append([]string(nil), listen...), advertise...)), autoTLSValidity)
		if err != nil {
			return nil, fmt.Errorf("--%sauto-tls: %w", prefix, err)
		}
		files.CertFile, files.KeyFile = self.CertFile, self.KeyFile
	default:
		if f.TrustedCAFile == "" {
			return nil, nil
		}
		// A CA alone: this member verifies the other side when it
		// dials, and has no certificate of its own to present.
	}
	src, err := certs.Load(files, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("--%scert-file, --%skey-file, --%strusted-ca-file: %w", prefix, prefix, prefix, err)
	}
	// A self-signed certificate verifies nothing: members take one
	// another's as they come, as etcd's do.
	s := &tlsSide{src: src, verify: f.TrustedCAFile != "" && f.CertFile != ""}
	if files.CertFile != "" {
		s.server = src.ServerConfig(f.ClientCertAuth || f.TrustedCAFile != "", nextProtos)
	}
	return s, nil
}

// urlHosts are the hosts of urls, for a self-signed certificate.
func urlHosts(urls []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		if h := u.Hostname(); h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// peerDial is how this member dials peers: TLS to https:// peer URLs.
func (t *memberTLS) peerDial() transport.DialFunc {
	if t == nil || t.peer == nil {
		return transport.DialPlain
	}
	return transport.TLSDialer(t.peer.src.ClientConfig(t.peer.verify))
}

// peerListener wraps a listener on one of --listen-peer-urls: TLS for an
// https:// URL.
func (t *memberTLS) peerListener(l net.Listener, peerURL string, log *slog.Logger) net.Listener {
	if !strings.HasPrefix(peerURL, "https://") || t == nil || t.peer == nil || t.peer.server == nil {
		return l // validate made sure an https:// URL has TLS
	}
	return transport.TLSListener(l, t.peer.server, log)
}

// clientDialOption is how this member dials a client URL: its own (for
// the JSON gateway; its certificate is not verified, as etcd's gateway
// does) or the leader's (verified against --trusted-ca-file when given).
// Over https:// it presents its own certificate, which --client-cert-auth
// on the other end requires: give the member a certificate usable for
// client authentication too.
func (m *Member) clientDialOption(clientURL string, self bool) (string, grpc.DialOption, error) {
	u, err := url.Parse(clientURL)
	if err != nil {
		return "", nil, fmt.Errorf("client URL %q: %w", clientURL, err)
	}
	if u.Scheme != "https" {
		return u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	t := m.tls
	if t == nil || t.client == nil {
		return "", nil, fmt.Errorf("client URL %s is https but this member has no client TLS (give --cert-file and --key-file, or --auto-tls)", clientURL)
	}
	return u.Host, grpc.WithTransportCredentials(credentials.NewTLS(t.client.src.ClientConfig(t.client.verify && !self))), nil
}

// isTLSListener reports whether l serves an https:// client URL.
func (m *Member) isTLSListener(l net.Listener) bool {
	for i, ll := range m.listeners {
		if ll == l {
			return strings.HasPrefix(m.clientURLs[i], "https://")
		}
	}
	return false
}

// handshaken are the gRPC server's transport credentials: the client
// listeners negotiate TLS before gRPC gets a connection (serveTLS), and
// this tells the API what was negotiated, so the common name of a verified
// client certificate can name the caller. Plain connections stay plain.
type handshaken struct{}

var _ credentials.TransportCredentials = handshaken{}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return c, credentials.TLSInfo{
			State:          s.ConnectionState(),
			CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		}, nil
	}
	return insecure.NewCredentials().ServerHandshake(c)
}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("handshaken credentials are for the server side only")
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (handshaken) Clone() credentials.TransportCredentials { return handshaken{} }
func (handshaken) OverrideServerName(string) error         { return nil }
