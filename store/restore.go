package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A snapshot (Snapshot, etcd's Maintenance.Snapshot, tend snapshot save,
// etcdctl snapshot save) is the database file followed by the SHA-256 of
// the file; the file's size is a whole number of 512-byte pages.

// VerifySnapshot checks the SHA-256 trailer of the snapshot at path and
// that the database before it opens with bbolt and holds buckets.
func VerifySnapshot(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	size := fi.Size()
	if size%512 != sha256.Size {
		return fmt.Errorf("snapshot %s: %d bytes has no SHA-256 trailer (a truncated or hand-made file; save it again)", path, size)
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
		return fmt.Errorf("snapshot %s: SHA-256 mismatch (the file was corrupted; save it again)", path)
	}
	return checkDatabase(path, "snapshot "+path)
}

// checkDatabase opens the bbolt file at path read-only and requires a
// bucket in it; what names the file in errors.
func checkDatabase(path, what string) error {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%s is not a bbolt database: %w", what, err)
	}
	defer db.Close()
	buckets := 0
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { buckets++; return nil })
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if buckets == 0 {
		return errors.New(what + " holds no buckets (not a member database)")
	}
	return nil
}

// RestoreFile writes the database of the snapshot at snapshot (a tend or
// an etcd member's) to dbPath, as the store of a member that starts a new
// cluster: every key, revision, lease, alarm and auth record is kept, and
// the applied index and raft term the snapshot was cut at are forgotten,
// since the new cluster's log starts again at 1. The trailer is checked
// first, unless skipHashCheck (for a database file copied from a data
// dir, which has none). dbPath must not exist; it appears whole or not at
// all.
//
// A bump above zero moves the revision on by that much and marks it
// compacted (etcdutl's --bump-revision with --mark-compacted): a client
// that watched the old cluster past the snapshot's revision then gets
// "compacted" and reads again, instead of waiting for revisions the new
// cluster's history will reuse.
func RestoreFile(snapshot, dbPath string, skipHashCheck bool, bump int64) (err error) {
	if bump < 0 {
		return fmt.Errorf("restore: a revision bump of %d: cannot be negative", bump)
	}
	fi, err := os.Stat(snapshot)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", snapshot, err)
	}
	size := fi.Size()
	if skipHashCheck {
		if size%512 == sha256.Size {
			size -= sha256.Size // a snapshot after all: leave its trailer out
		}
		if err := checkDatabase(snapshot, "file "+snapshot); err != nil {
			return err
		}
	} else {
		if err := VerifySnapshot(snapshot); err != nil {
			return err
		}
		size -= sha256.Size
	}
	if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("restore to %s: a database is already there (restore into an empty data dir)", dbPath)
	}
	part := dbPath + ".part"
	defer func() {
		if err != nil {
			os.Remove(part)
		}
	}()
	if err := copyPrefix(snapshot, part, size); err != nil {
		return err
	}
	db, err := bolt.Open(part, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open restored database %s: %w", part, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			return fmt.Errorf("snapshot %s has no %q bucket (not a member database)", snapshot, metaBucket)
		}
		for _, k := range [][]byte{metaAppliedIndex, metaTerm} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		if bump == 0 {
			return nil
		}
		// The store opens at the scheduled compaction's revision when
		// that is past its newest one, and finishes the compaction.
		latest := int64(0)
		if keys := tx.Bucket(keyBucket); keys != nil {
			if k, _ := keys.Cursor().Last(); k != nil {
				r, _ := parseRevKey(k)
				latest = r.main
			}
		}
		if v := meta.Get(metaScheduledCompact); len(v) >= revBytesLen {
			r, _ := parseRevKey(v)
			latest = max(latest, r.main)
		}
		return meta.Put(metaScheduledCompact, revKey(revision{main: latest + bump}, false))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("prepare restored database %s: %w", part, err)
	}
	if err := os.Rename(part, dbPath); err != nil {
		return fmt.Errorf("restore to %s: %w", dbPath, err)
	}
	return syncDir(filepath.Dir(dbPath))
}

// copyPrefix copies the first n bytes of src to a new file dst and fsyncs
// it.
func copyPrefix(src, dst string, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.CopyN(out, in, n); err != nil {
		out.Close()
		return fmt.Errorf("copy snapshot to %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("fsync %s: %w", dst, err)
	}
	return out.Close()
}

// syncDir fsyncs the folder dir, so that a rename into it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync folder %s: %w", dir, err)
	}
	return nil
}

// FileStatus describes a database file, as etcdutl snapshot status does.
type FileStatus struct {
	// Hash is the CRC-32 (Castagnoli) of every bucket's name and of its
	// keys and values, in bbolt's order (etcdutl's).
	Hash uint32 `json:"hash"`
	// Revision is the newest revision in the file; TotalKey the keys live
	// at it; TotalSize the file's size; Version its schema version ("" for
	// a backend older than etcd 3.6).
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

// Status reads the database file (or snapshot) at path, not in use by a
// store, after checking bbolt's page structure.
func Status(path string) (FileStatus, error) {
	var st FileStatus
	if _, err := os.Stat(path); err != nil {
		return st, err
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return st, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	live := map[string]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s fails bbolt's integrity check (%d problems): %s", path, len(problems), strings.Join(problems, "; "))
		}
		st.TotalSize = tx.Size()
		if meta := tx.Bucket(metaBucket); meta != nil {
			st.Version = string(meta.Get(metaStorageVersion))
		}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("%s: %q is not a bucket", path, name)
			}
			h.Write(name)
			isKeys := bytes.Equal(name, keyBucket)
			err := b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if !isKeys {
					return nil
				}
				r, tomb := parseRevKey(k)
				st.Revision = r.main
				kv, err := decodeKV(v)
				if err != nil {
					return fmt.Errorf("revision %d_%d: %w", r.main, r.sub, err)
				}
				if tomb {
					delete(live, string(kv.Key))
				} else {
					live[string(kv.Key)] = true
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: bucket %q: %w", path, name, err)
			}
		}
		return nil
	})
	st.TotalKey = len(live)
	st.Hash = h.Sum32()
	return st, err
}
