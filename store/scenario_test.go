package store

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata scenarios")

// A scenario file (testdata/*.txt) is a list of cases separated by blank
// lines. A case is one command line, a line "----", and the expected output:
//
//	apply <InternalRaftRequest in protobuf text>   apply at the next index
//	range <RangeRequest in protobuf text>          Store.Range
//	restart                                         Close and Open again
//	crash                                           drop the open batch, Open again
//	commit                                          force the batch to disk
//	state                                           rev, compact rev, applied index
//	leases                                          Store.Leases
//	alarms                                          Store.Alarms
//	hash <rev>                                      Store.HashKV
//	auth                                            Store.Auth: users, roles
//
// Run with -rewrite to regenerate the expected output, then read the diff.

type scenarioCase struct {
	cmd, want string
}

func parseScenario(t *testing.T, path string) []scenarioCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []scenarioCase
	var cur *scenarioCase
	inWant := false
	for n, line := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && (line == "" || strings.HasPrefix(line, "#")):
		case cur == nil:
			cases = append(cases, scenarioCase{cmd: line})
			cur = &cases[len(cases)-1]
			inWant = false
		case !inWant && line == "----":
			inWant = true
		case !inWant:
			t.Fatalf("%s:%d: want ---- after the command (one command per case)", path, n+1)
		case line == "":
			cur = nil
		default:
			if cur.want != "" {
				cur.want += "\n"
			}
			cur.want += line
		}
	}
	return cases
}

func writeScenario(path string, cases []scenarioCase, got []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// Keep the leading comment block.
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\n")
	for i, c := range cases {
		fmt.Fprintf(&b, "%s\n----\n%s\n\n", c.cmd, got[i])
	}
	return os.WriteFile(path, []byte(strings.TrimRight(b.String(), "\n")+"\n"), 0o644)
}

// text prints a message as compact protobuf text with whitespace normalized
// (protobuf-go randomizes it between builds).
func text(m proto.Message) string {
	raw := prototext.MarshalOptions{}.Format(m)
	var b strings.Builder
	inStr, esc, space := false, false, false
	for _, r := range raw {
		switch {
		case inStr:
			b.WriteRune(r)
			if esc {
				esc = false
			} else if r == '\\' {
				esc = true
			} else if r == '"' {
				inStr = false
			}
			continue
		case r == ' ' || r == '\n' || r == '\t':
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if r == '"' {
			inStr = true
		}
		b.WriteRune(r)
	}
	return b.String()
}

type scenarioRunner struct {
	t     *testing.T
	path  string
	s     *Store
	index uint64
	// applied records each apply command and its result, for the etcd oracle.
	applied []appliedReq
}

type appliedReq struct {
	line string
	req  *pb.InternalRaftRequest
	res  Result
}

func (r *scenarioRunner) open() {
	s, err := Open(r.path, Options{MinLeaseTTL: 2})
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = s
}

func (r *scenarioRunner) run(cmd string) string {
	name, arg, _ := strings.Cut(cmd, " ")
	s := r.s
	switch name {
	case "apply":
		req := &pb.InternalRaftRequest{}
		if err := prototext.Unmarshal([]byte(arg), req); err != nil {
			r.t.Fatalf("%s: %v", cmd, err)
		}
		r.index++
		res, err := s.Apply(r.index, req)
		if err != nil {
			r.t.Fatalf("%s: fatal: %v", cmd, err)
		}
		r.applied = append(r.applied, appliedReq{line: cmd, req: req, res: res})
		if res.Err != nil {
			return "error: " + res.Err.Error()
		}
		return text(res.Resp)
	case "range":
		req := &pb.RangeRequest{}
		if err := prototext.Unmarshal([]byte(arg), req); err != nil {
			r.t.Fatalf("%s: %v", cmd, err)
		}
		resp, err := s.Range(req)
		if err != nil {
			return "error: " + err.Error()
		}
		return text(resp)
	case "restart", "crash":
		if name == "restart" {
			if err := s.Close(); err != nil {
				r.t.Fatal(err)
			}
		} else {
			s.crash()
		}
		r.open()
		r.index = r.s.AppliedIndex()
		return r.state()
	case "commit":
		if err := s.Commit(); err != nil {
			r.t.Fatal(err)
		}
		return r.state()
	case "state":
		return r.state()
	case "leases":
		var b strings.Builder
		for _, l := range s.Leases() {
			fmt.Fprintf(&b, "lease %d ttl=%d keys=%q\n", l.ID, l.TTL, l.Keys)
		}
		return strings.TrimSpace(b.String())
	case "alarms":
		var b strings.Builder
		for _, a := range s.Alarms() {
			b.WriteString(text(a) + "\n")
		}
		return strings.TrimSpace(b.String())
	case "auth":
		return authText(s.Auth())
	case "hash":
		rev, _ := strconv.ParseInt(arg, 10, 64)
		h, hr, cr, err := s.HashKV(rev)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("hash=%d hash-rev=%d compact-rev=%d", h, hr, cr)
	}
	r.t.Fatalf("unknown scenario command %q", cmd)
	return ""
}

func (r *scenarioRunner) state() string {
	return fmt.Sprintf("rev=%d compact=%d applied=%d", r.s.Rev(), r.s.CompactRev(), r.s.AppliedIndex())
}

// crash simulates a process crash: the open batch is lost, nothing else is
// written.
func (s *Store) crash() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		s.be.close(-1)
		s.hub.closeAll()
	})
}

func runScenario(t *testing.T, file string) *scenarioRunner {
	cases := parseScenario(t, file)
	r := &scenarioRunner{t: t, path: filepath.Join(t.TempDir(), "db")}
	r.open()
	t.Cleanup(func() { r.s.Close() })
	got := make([]string, len(cases))
	for i, c := range cases {
		got[i] = r.run(c.cmd)
		if !*rewrite && got[i] != c.want {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", file, c.cmd, got[i], c.want)
		}
	}
	if *rewrite {
		if err := writeScenario(file, cases, got); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

// authText prints the auth state: enabled, revision, users with their roles
// (not their hashes), roles with their permissions.
func authText(v AuthView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "enabled=%v revision=%d", v.st.enabled, v.st.rev)
	for _, name := range slices.Sorted(maps.Keys(v.st.users)) {
		u := v.st.users[name]
		fmt.Fprintf(&b, "\nuser %s roles=%q no-password=%v", name, u.Roles, u.GetOptions().GetNoPassword())
	}
	for _, name := range slices.Sorted(maps.Keys(v.st.roles)) {
		fmt.Fprintf(&b, "\nrole %s", name)
		for _, p := range v.st.roles[name].KeyPermission {
			fmt.Fprintf(&b, " %s[%q,%q)", p.PermType, p.Key, p.RangeEnd)
		}
	}
	return b.String()
}
