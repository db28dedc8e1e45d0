package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/tendkv/tend/agent/config"
)

// defaultPerms is the mode of a new file whose template sets no perms.
const defaultPerms os.FileMode = 0o644

// staged is a candidate file written next to its destination, synced and
// with its final mode, waiting to be checked and renamed into place.
type staged struct {
	dest string
	path string // the temporary file
}

// stage writes data to a temporary file in the destination's folder, fsyncs
// it and gives it the template's mode and owner (the mode of the file it
// replaces when the template sets none).
func stage(t *config.Template, data []byte) (*staged, error) {
	dir, base := filepath.Split(t.Destination)
	f, err := os.CreateTemp(dir, "."+base+".tend-*")
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", t.Destination, err)
	}
	s := &staged{dest: t.Destination, path: f.Name()}
	fail := func(err error) (*staged, error) {
		f.Close()
		os.Remove(s.path)
		return nil, fmt.Errorf("stage %s: %w", t.Destination, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	perm := t.Perms
	if perm == 0 {
		perm = defaultPerms
		if info, err := os.Stat(t.Destination); err == nil {
			perm = info.Mode().Perm()
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if t.UID >= 0 || t.GID >= 0 {
		if err := f.Chown(t.UID, t.GID); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(s.path)
		return nil, fmt.Errorf("stage %s: %w", t.Destination, err)
	}
	return s, nil
}

// check runs the template's check command on the staged file, with
// {{ .path }} in its arguments standing for the staged file's path.
func (s *staged) check(ctx context.Context, t *config.Template) error {
	if len(t.Check) == 0 {
		return nil
	}
	args := make([]string, len(t.Check))
	for i, a := range t.Check {
		tmpl, err := template.New("check").Option("missingkey=error").Parse(a)
		if err != nil {
			return fmt.Errorf("check %s: parse argument %q: %w", t.Destination, a, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]string{"path": s.path}); err != nil {
			return fmt.Errorf("check %s: expand argument %q: %w", t.Destination, a, err)
		}
		args[i] = b.String()
	}
	timeout := t.CheckTimeout
	if timeout <= 0 {
		timeout = config.DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = t.CheckDir
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 2048 {
			msg = "..." + msg[len(msg)-2048:]
		}
		if msg != "" {
			return fmt.Errorf("check %s: %s: %w: %s", t.Destination, strings.Join(args, " "), err, msg)
		}
		return fmt.Errorf("check %s: %s: %w", t.Destination, strings.Join(args, " "), err)
	}
	return nil
}

// commit keeps the current destination as <destination>.bak when backup is
// set and renames the staged file over the destination. The caller fsyncs
// the folder (syncDir, or the loop's syncer) to make the rename durable.
func (s *staged) commit(backup bool) error {
	if backup {
		if err := keepBackup(s.dest); err != nil {
			s.discard()
			return err
		}
	}
	if err := os.Rename(s.path, s.dest); err != nil {
		s.discard()
		return fmt.Errorf("replace %s: %w", s.dest, err)
	}
	return nil
}

// discard removes the staged file.
func (s *staged) discard() { os.Remove(s.path) }

// keepBackup makes <dest>.bak a copy of dest, itself swapped in atomically.
func keepBackup(dest string) error {
	data, err := os.ReadFile(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("back up %s: %w", dest, err)
	}
	info, err := os.Stat(dest)
	if err != nil {
		return fmt.Errorf("back up %s: %w", dest, err)
	}
	bak := &config.Template{Destination: dest + ".bak", Perms: info.Mode().Perm(), UID: -1, GID: -1}
	s, err := stage(bak, data)
	if err != nil {
		return fmt.Errorf("back up %s: %w", dest, err)
	}
	if err := os.Rename(s.path, bak.Destination); err != nil {
		s.discard()
		return fmt.Errorf("back up %s: %w", dest, err)
	}
	return nil
}

// syncDir fsyncs a folder so a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// onDisk is what a destination held before a change, for rollback.
type onDisk struct {
	data   []byte
	exists bool
}

// readDisk reads the destination; a missing file is not an error.
func readDisk(path string) (onDisk, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return onDisk{}, nil
	}
	if err != nil {
		return onDisk{}, fmt.Errorf("read %s: %w", path, err)
	}
	return onDisk{data: data, exists: true}, nil
}

// same reports whether the destination already holds data.
func (d onDisk) same(data []byte) bool { return d.exists && bytes.Equal(d.data, data) }

// restore puts back what the destination held: the old bytes swapped in
// atomically, or no file at all.
func (d onDisk) restore(t *config.Template) error {
	if !d.exists {
		if err := os.Remove(t.Destination); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("roll back %s: %w", t.Destination, err)
		}
		return syncDir(filepath.Dir(t.Destination))
	}
	s, err := stage(t, d.data)
	if err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	if err := s.commit(false); err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	return syncDir(filepath.Dir(t.Destination))
}
