package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clientFlags are the connection and output flags every client command
// shares. They are persistent flags of each client command, so both
// `tend --endpoints X get k` and `tend get --endpoints X k` work.
type clientFlags struct {
	endpoints      []string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	writeOut       string
	cacert         string
	cert           string
	key            string
	user           string
	password       string
}

// defaultEndpoints is --endpoints' default: TEND_ENDPOINTS, then
// ETCDCTL_ENDPOINTS (comma-separated), then 127.0.0.1:2379.
func defaultEndpoints() []string {
	for _, env := range []string{"TEND_ENDPOINTS", "ETCDCTL_ENDPOINTS"} {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return strings.Split(v, ",")
		}
	}
	return []string{"127.0.0.1:2379"}
}

// addClientFlags registers the client flags on cmd and returns where they
// land after parsing.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	cf := &clientFlags{}
	fs := cmd.PersistentFlags()
	fs.StringSliceVar(&cf.endpoints, "endpoints", defaultEndpoints(), "gRPC endpoints, comma-separated (env TEND_ENDPOINTS or ETCDCTL_ENDPOINTS)")
	fs.DurationVar(&cf.dialTimeout, "dial-timeout", 2*time.Second, "time to connect to an endpoint")
	fs.DurationVar(&cf.commandTimeout, "command-timeout", 5*time.Second, "time a command may take (not for watch or keep-alive)")
	fs.StringVarP(&cf.writeOut, "write-out", "w", "simple", "output format: simple or json")
	fs.StringVar(&cf.cacert, "cacert", "", "verify servers with this CA bundle (PEM)")
	fs.StringVar(&cf.cert, "cert", "", "client TLS certificate (PEM)")
	fs.StringVar(&cf.key, "key", "", "client TLS key (PEM)")
	fs.StringVar(&cf.user, "user", "", "username[:password] for authentication")
	fs.StringVar(&cf.password, "password", "", "password for authentication (when --user has none)")
	return cf
}

// checkWriteOut reports an error naming the flag unless --write-out is one of
// allowed.
func (cf *clientFlags) checkWriteOut(cmdName string, allowed ...string) error {
	for _, a := range allowed {
		if cf.writeOut == a {
			return nil
		}
	}
	return fmt.Errorf("--write-out %q is not supported by %s (use %s)", cf.writeOut, cmdName, strings.Join(allowed, " or "))
}

// config returns the clientv3 configuration the flags describe.
func (cf *clientFlags) config() (clientv3.Config, error) {
	cfg := clientv3.Config{
		Endpoints:   cf.endpoints,
		DialTimeout: cf.dialTimeout,
		Logger:      zap.NewNop(),
	}
	if len(cf.endpoints) == 0 {
		return cfg, fmt.Errorf("--endpoints is empty (give at least one, e.g. --endpoints 127.0.0.1:2379)")
	}
	if cf.cacert != "" || cf.cert != "" || cf.key != "" {
		if (cf.cert == "") != (cf.key == "") {
			return cfg, fmt.Errorf("--cert and --key go together (give both or neither)")
		}
		info := transport.TLSInfo{CertFile: cf.cert, KeyFile: cf.key, TrustedCAFile: cf.cacert}
		var (
			tc  *tls.Config
			err error
		)
		if tc, err = info.ClientConfig(); err != nil {
			return cfg, fmt.Errorf("load TLS files (--cacert, --cert, --key): %w", err)
		}
		cfg.TLS = tc
	}
	if cf.user != "" {
		name, pass, ok := strings.Cut(cf.user, ":")
		if !ok {
			pass = cf.password
		} else if cf.password != "" {
			return cfg, fmt.Errorf("password given twice (use --user name:password or --user name --password password)")
		}
		cfg.Username, cfg.Password = name, pass
	} else if cf.password != "" {
		return cfg, fmt.Errorf("--password needs --user")
	}
	return cfg, nil
}

// client connects to the endpoints. The caller closes it.
func (cf *clientFlags) client() (*clientv3.Client, error) {
	cfg, err := cf.config()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if errors.Is(err, rpctypes.ErrAuthFailed) {
		return nil, fmt.Errorf("authenticate as %s at %s: %w (check --user and --password)", cfg.Username, strings.Join(cf.endpoints, ","), err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is a member running there? set --endpoints)", strings.Join(cf.endpoints, ","), err)
	}
	return cli, nil
}

// commandContext bounds one request by --command-timeout.
func (cf *clientFlags) commandContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, cf.commandTimeout)
}

// requestError wraps an error from the server, naming what was attempted
// and, for a timeout, what to do about it.
func (cf *clientFlags) requestError(action string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded") {
		if hint := cf.tlsHint(); hint != "" {
			return fmt.Errorf("%s: %w (%s)", action, err, hint)
		}
		return fmt.Errorf("%s: %w (no answer from %s within --command-timeout %s; is a member running there?)",
			action, err, strings.Join(cf.endpoints, ","), cf.commandTimeout)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// printJSON writes v as one line of JSON, the way etcdctl -w json does.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// kvPrinter prints key-value pairs as etcdctl's simple format does: the key
// on one line, the value on the next.
type kvPrinter struct {
	w         io.Writer
	valueOnly bool
	keysOnly  bool
}

func (p kvPrinter) print(key, value []byte) {
	if !p.valueOnly {
		fmt.Fprintf(p.w, "%s\n", key)
	}
	if !p.keysOnly {
		fmt.Fprintf(p.w, "%s\n", value)
	}
}

// call connects, runs one request bounded by --command-timeout, and wraps
// its error naming action.
func call[T any](cmd *cobra.Command, cf *clientFlags, action string, request func(ctx context.Context, cli *clientv3.Client) (T, error)) (T, error) {
	var zero T
	cli, err := cf.client()
	if err != nil {
		return zero, err
	}
	defer cli.Close()
	ctx, cancel := cf.commandContext(cmd.Context())
	defer cancel()
	resp, err := request(ctx, cli)
	if err != nil {
		return zero, cf.requestError(action, err)
	}
	return resp, nil
}

// do is call for requests that print as they go.
func (cf *clientFlags) do(cmd *cobra.Command, action string, request func(ctx context.Context, cli *clientv3.Client) error) error {
	_, err := call(cmd, cf, action, func(ctx context.Context, cli *clientv3.Client) (struct{}, error) {
		return struct{}{}, request(ctx, cli)
	})
	return err
}
