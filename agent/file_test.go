package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tendkv/tend/agent/config"
)

func testTemplate(dir string) *config.Template {
	return &config.Template{Name: "t", Destination: filepath.Join(dir, "app.conf"), UID: -1, GID: -1}
}

// A new file gets 0644, a replaced one keeps its mode, perms override it,
// a backup keeps the previous bytes, and no staged file is left behind.
func TestStageAndCommit(t *testing.T) {
	dir := t.TempDir()
	tm := testTemplate(dir)
	write := func(data string, backup bool) {
		t.Helper()
		s, err := stage(tm, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.commit(backup); err != nil {
			t.Fatal(err)
		}
	}
	mode := func() os.FileMode {
		info, err := os.Stat(tm.Destination)
		if err != nil {
			t.Fatal(err)
		}
		return info.Mode().Perm()
	}
	write("one", true)
	if m := mode(); m != defaultPerms {
		t.Errorf("new file mode %v, want %v", m, defaultPerms)
	}
	if _, err := os.Stat(tm.Destination + ".bak"); !os.IsNotExist(err) {
		t.Errorf("a backup of a file that did not exist was made (stat: %v)", err)
	}
	if err := os.Chmod(tm.Destination, 0o600); err != nil {
		t.Fatal(err)
	}
	write("two", true)
	if m := mode(); m != 0o600 {
		t.Errorf("replaced file mode %v, want the old 0600 kept", m)
	}
	if b, _ := os.ReadFile(tm.Destination + ".bak"); string(b) != "one" {
		t.Errorf(".bak = %q, want one", b)
	}
	tm.Perms = 0o640
	write("three", false)
	if m := mode(); m != 0o640 {
		t.Errorf("mode %v, want perms 0640", m)
	}
	if os.Getuid() == 0 {
		tm.UID, tm.GID = 65534, 65534
		write("four", false)
		info, _ := os.Stat(tm.Destination)
		if st := info.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("owner %d:%d, want 65534:65534", st.Uid, st.Gid)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tend-") {
			t.Errorf("staged file left behind: %s", e.Name())
		}
	}
}

// The check sees the staged file through {{ .path }}; its failure names
// the command and its output.
func TestCheckRunsOnStagedFile(t *testing.T) {
	dir := t.TempDir()
	tm := testTemplate(dir)
	tm.Check = []string{"sh", "-c", "grep -q good {{ .path }} || { echo rejected >&2; exit 3; }"}
	s, err := stage(tm, []byte("bad"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.check(context.Background(), tm)
	s.discard()
	if err == nil || !strings.Contains(err.Error(), "exit status 3: rejected") || !strings.Contains(err.Error(), ".tend-") {
		t.Fatalf("check error = %v, want the staged path, exit status and output", err)
	}
	s, err = stage(tm, []byte("good"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.discard()
	if err := s.check(context.Background(), tm); err != nil {
		t.Fatalf("check of a good file: %v", err)
	}
}

// Rolling back a file that did not exist removes it.
func TestRestoreMissingRemoves(t *testing.T) {
	dir := t.TempDir()
	tm := testTemplate(dir)
	if err := os.WriteFile(tm.Destination, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (onDisk{}).restore(tm); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tm.Destination); !os.IsNotExist(err) {
		t.Fatalf("file still there after rolling back to nothing (stat: %v)", err)
	}
}

// BenchmarkStageCommit is the file half of an apply: write, fsync, rename,
// fsync the folder.
func BenchmarkStageCommit(b *testing.B) {
	tm := testTemplate(b.TempDir())
	for i := 0; i < b.N; i++ {
		s, err := stage(tm, []byte("value"))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.commit(false); err != nil {
			b.Fatal(err)
		}
		if err := syncDir(filepath.Dir(tm.Destination)); err != nil {
			b.Fatal(err)
		}
	}
}
