package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tendkv/tend/store"
)

// RestoreSnapshot makes dataDir the data dir of a member that starts a new
// cluster from the snapshot file (saved from a tend or an etcd member, as
// etcdutl snapshot restore does for etcd): the snapshot's keyspace, leases,
// alarms and users become its store, and the member's WAL is created when
// it starts, from its own flags (--initial-cluster and the rest, with
// --initial-cluster-state new). Every member of the new cluster restores
// the same file into its own data dir. dataDir must hold no member yet;
// on failure nothing is left in it. bump is store.RestoreFile's.
func RestoreSnapshot(snapshot, dataDir string, skipHashCheck bool, bump int64) (store.FileStatus, error) {
	memberDir := filepath.Join(dataDir, "member")
	if _, err := os.Stat(memberDir); err == nil {
		return store.FileStatus{}, fmt.Errorf("--data-dir %s already holds a member (%s): restore into a new data dir", dataDir, memberDir)
	}
	snapDir := filepath.Join(memberDir, "snap")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return store.FileStatus{}, fmt.Errorf("create %s: %w", snapDir, err)
	}
	db := filepath.Join(snapDir, "db")
	if err := store.RestoreFile(snapshot, db, skipHashCheck, bump); err != nil {
		os.RemoveAll(memberDir)
		return store.FileStatus{}, err
	}
	return store.Status(db)
}
