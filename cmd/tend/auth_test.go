package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// authCLISteps is a session of user, role and auth commands, and KV
// commands as users. stdin, when set, answers a password question.
var authCLISteps = []struct{ args, stdin string }{
	{"auth status", ""},
	{"auth enable", ""},
	{"user add root --new-user-password rootpw", ""},
	{"user add root:again", ""},
	{"user add alice:alicepw", ""},
	{"user add bob --interactive=false", "bobpw\n"},
	{"user add cn-client --no-password", ""},
	{"user list", ""},
	{"user list -w json", ""},
	{"role add app1", ""},
	{"role add app2", ""},
	{"role grant-permission app1 read /app1/ --prefix", ""},
	{"role grant-permission app1 write /app1/w", ""},
	{"role grant-permission app1 readwrite /app1/rw /app1/rx", ""},
	{"role grant-permission app1 read /z --from-key", ""},
	{"role grant-permission app2 readwrite /app2/ --prefix", ""},
	{"role grant-permission nope read /x", ""},
	{"role get app1", ""},
	{"role get -w json app1", ""},
	{"role list", ""},
	{"user grant-role alice app1", ""},
	{"user grant-role bob app2", ""},
	{"user get alice", ""},
	{"user get alice --detail", ""},
	{"put /app1/x v1", ""},
	{"auth enable", ""},
	{"auth status", ""},
	{"auth status -w json", ""},
	{"get /app1/x", ""},
	{"--user alice:alicepw get --prefix /app1/", ""},
	{"--user alice --password alicepw get --prefix /app1/", ""},
	{"--user alice:alicepw get /app2/x", ""},
	{"--user alice:alicepw put /app1/x no", ""},
	{"--user alice:alicepw put /app1/w yes", ""},
	{"--user alice:alicepw user list", ""},
	{"--user alice:wrong get /app1/x", ""},
	{"--user root:rootpw role get root", ""},
	{"--user root:rootpw role revoke-permission app1 /app1/ --prefix", ""},
	{"--user root:rootpw role revoke-permission app1 /z --from-key", ""},
	{"--user root:rootpw role revoke-permission app1 /app1/rw /app1/rx", ""},
	{"--user root:rootpw role revoke-permission app1 /app1/w", ""},
	{"--user root:rootpw role revoke-permission app1 /nope", ""},
	{"--user root:rootpw user revoke-role bob app2", ""},
	{"--user root:rootpw user passwd alice --interactive=false", "newpw\n"},
	{"--user root:rootpw user delete bob", ""},
	{"--user root:rootpw role delete app2", ""},
	{"--user root:rootpw user delete root", ""},
	{"--user root:rootpw auth disable", ""},
	{"auth status", ""},
}

// TestAuthCommandsMatchEtcdctl runs the session with tend's commands
// against one fresh server, and with the real etcdctl against another of the
// same kind (etcd, then a tend member), and requires the same stdout and the
// same failures. Error messages differ on purpose: tend's name what it was
// doing.
func TestAuthCommandsMatchEtcdctl(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	for _, kind := range []struct {
		name  string
		start func(string) (string, func(), error)
	}{{"etcd", startEtcd}, {"tend", startTendMember}} {
		t.Run(kind.name, func(t *testing.T) {
			epTend, stop, err := kind.start(filepath.Join(t.TempDir(), "a"))
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			epCtl, stop2, err := kind.start(filepath.Join(t.TempDir(), "b"))
			if err != nil {
				t.Fatal(err)
			}
			defer stop2()
			for i, s := range authCLISteps {
				args := strings.Fields(s.args)
				got := tendAt(t, epTend, []byte(s.stdin), args...)
				cmd := exec.Command(etcdctl, append([]string{"--endpoints", epCtl}, args...)...)
				var out, errb bytes.Buffer
				cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(s.stdin), &out, &errb
				werr := cmd.Run()
				if string(got.stdout) != out.String() || (got.err != nil) != (werr != nil) {
					t.Errorf("step %d: %s\n tend:    %q err=%v %s\n etcdctl: %q err=%v %s", i, s.args,
						got.stdout, got.err, got.stderr, out.String(), werr, errb.String())
				}
				if strings.Contains(s.args, "alice:wrong") && !strings.Contains(string(got.stderr), "check --user and --password") {
					t.Errorf("step %d: %s: %q does not point at the credentials", i, s.args, got.stderr)
				}
				if got.err != nil && !strings.Contains(string(got.stderr), firstLine(errb.String())) {
					t.Errorf("step %d: %s: tend's error %q does not carry etcdctl's %q", i, s.args, got.stderr, firstLine(errb.String()))
				}
			}
		})
	}
}

// firstLine is etcdctl's error (its "Error: " line, not its client's
// logs) from where the server's words start.
func firstLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if s, ok := strings.CutPrefix(l, "Error: "); ok {
			if i := strings.Index(s, "etcdserver: "); i >= 0 {
				return s[i:]
			}
			return s
		}
	}
	return stderr
}

// TestAuthCommandErrorsNameTheFix: usage mistakes fail before connecting,
// saying what to give instead.
func TestAuthCommandErrorsNameTheFix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ args, want string }{
		{"role grant-permission app1 bogus /x", "use read, write or readwrite"},
		{"role grant-permission app1 read /x --prefix --from-key", "--from-key and --prefix"},
		{"role grant-permission app1 read /x /y --prefix", "give KEY alone"},
		{"user add alice --interactive=true", "empty password"},
		{"user add :pw", "empty user name"},
		{"role add", "accepts 1 arg"},
	} {
		r := tendAt(t, "127.0.0.1:1", nil, strings.Fields(tc.args)...)
		if r.err == nil || !strings.Contains(string(r.stderr), tc.want) {
			t.Errorf("tend %s: err=%v stderr=%q, want %q", tc.args, r.err, r.stderr, tc.want)
		}
	}
}
