package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
)

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save a member's backend database",
	}
	cf := addClientFlags(cmd)
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Stream one member's database to FILE (checked, then renamed into place)",
		Long: `Save streams the database of the one member named by --endpoints into
FILE.part, checks the SHA-256 the member appends and that the file opens as a
bbolt database, fsyncs it and renames it to FILE. FILE is never left half
written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("snapshot save", "simple", "json"); err != nil {
				return err
			}
			if len(cf.endpoints) != 1 {
				return fmt.Errorf("snapshot save needs exactly one endpoint, got %d (pick one member with --endpoints)", len(cf.endpoints))
			}
			path := args[0]
			cli, err := cf.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			// The stream is bounded by the command context, not
			// --command-timeout: a large database takes as long as it takes.
			start := time.Now()
			resp, err := cli.SnapshotWithVersion(cmd.Context())
			if err != nil {
				return cf.requestError("start snapshot", err)
			}
			defer resp.Snapshot.Close()
			size, err := writeSnapshot(path, resp.Snapshot)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cf.writeOut == "json" {
				return printJSON(out, map[string]any{"path": path, "size": size, "version": resp.Version})
			}
			fmt.Fprintf(out, "Snapshot saved at %s (%d bytes in %s)\n", path, size, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.AddCommand(save)
	return cmd
}

// writeSnapshot copies r to path+".part", verifies it, fsyncs it and renames
// it to path.
func writeSnapshot(path string, r io.Reader) (size int64, err error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create snapshot file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	if size, err = io.Copy(f, r); err != nil {
		return 0, fmt.Errorf("receive snapshot into %s: %w", part, err)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", part, err)
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", part, err)
	}
	if err = verifySnapshot(part, size); err != nil {
		return 0, err
	}
	if err = os.Rename(part, path); err != nil {
		return 0, fmt.Errorf("rename snapshot into place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return size, nil
}

// verifySnapshot checks the SHA-256 trailer the member appends to the
// database and that the database opens with bbolt.
func verifySnapshot(path string, size int64) error {
	if size%512 != sha256.Size {
		return fmt.Errorf("snapshot %s: %d bytes has no SHA-256 trailer (the member sent a truncated stream; retry)", path, size)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify snapshot %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, size-sha256.Size); err != nil {
		return fmt.Errorf("verify snapshot %s: %w", path, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return fmt.Errorf("verify snapshot %s: %w", path, err)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("snapshot %s: SHA-256 mismatch (the stream was corrupted; retry)", path)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("snapshot %s is not a bbolt database: %w", path, err)
	}
	defer db.Close()
	buckets := 0
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { buckets++; return nil })
	})
	if err != nil {
		return fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if buckets == 0 {
		return errors.New("snapshot " + path + " holds no buckets (not a member database)")
	}
	return nil
}
