package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/store"
)

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save a member's backend database, restore one into a new member's data dir, or describe one",
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
	var (
		dataDir       string
		skipHash      bool
		bump          uint64
		markCompacted bool
	)
	restore := &cobra.Command{
		Use:   "restore FILE --data-dir DIR",
		Short: "Make DIR the data dir of a member that starts a new cluster from the snapshot FILE",
		Long: `Restore checks the snapshot FILE (saved by tend snapshot save or etcdctl
snapshot save, from tend or from etcd) and writes its database into
--data-dir as the store of a member that starts a new cluster: every key,
revision, lease and user is kept; the old cluster's log position is not. As
with etcdutl snapshot restore, restore the same file once per member of the
new cluster, each into its own data dir, then start each member with
tend server --data-dir DIR, its usual flags and --initial-cluster-state new;
its WAL and membership come from those flags. --skip-hash-check restores a
database file copied out of a data dir (member/snap/db), which has no
SHA-256 trailer.

An older snapshot takes the cluster back to revisions its clients have
already seen: an agent that watched past the snapshot's revision would
wait for revisions the new history reuses, and miss what they hold.
--bump-revision N --mark-compacted (as etcdutl's) moves the revision on
by N, past anything the old cluster reached, and marks it compacted, so
such a watch is told "compacted" and the agent reads everything again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("snapshot restore", "simple", "json"); err != nil {
				return err
			}
			for _, name := range etcdutlClusterFlags {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s: tend snapshot restore takes no cluster flags, unlike etcdutl's; give --%s to tend server when it starts on --data-dir, with --initial-cluster-state new", name, name)
				}
			}
			switch {
			case bump > 0 && !markCompacted:
				return fmt.Errorf("--bump-revision %d needs --mark-compacted (as etcdutl's): clients that watched past the snapshot must be told to read again", bump)
			case bump == 0 && markCompacted:
				return fmt.Errorf("--mark-compacted needs --bump-revision N, the revisions to move on by")
			case bump > math.MaxInt32:
				return fmt.Errorf("--bump-revision %d: give at most %d", bump, math.MaxInt32)
			}
			info, err := cluster.RestoreSnapshot(args[0], dataDir, skipHash, int64(bump))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cf.writeOut == "json" {
				return printJSON(out, map[string]any{"data_dir": dataDir, "status": info})
			}
			fmt.Fprintf(out, "Restored %s into %s (revision %d, %d keys, %s)\n", args[0], dataDir, info.Revision, info.TotalKey, humanize.Bytes(uint64(info.TotalSize)))
			fmt.Fprintf(out, "Start the member with: tend server --data-dir %s --initial-cluster-state new and its --name, --initial-cluster and URLs\n", dataDir)
			return nil
		},
	}
	restore.Flags().StringVar(&dataDir, "data-dir", "default.etcd", "the new member's data dir (must hold no member)")
	restore.Flags().Uint64Var(&bump, "bump-revision", 0, "move the revision on by this much after the restore (with --mark-compacted)")
	restore.Flags().BoolVar(&markCompacted, "mark-compacted", false, "mark the bumped revision compacted, so watches from before it are told to read again (needs --bump-revision)")
	restore.Flags().BoolVar(&skipHash, "skip-hash-check", false, "restore a file without the SHA-256 trailer snapshots carry (a member/snap/db copied from a data dir)")
	for _, name := range etcdutlClusterFlags {
		restore.Flags().String(name, "", "")
		restore.Flags().MarkHidden(name)
	}
	status := &cobra.Command{
		Use:   "status FILE",
		Short: "Print a snapshot's (or a database file's) hash, revision, key count, size and version, as etcdutl's",
		Long: `Status checks FILE's bbolt structure and prints what etcdutl snapshot
status prints: the CRC-32 of its buckets' contents (equal for equal files,
whoever wrote them), the newest revision, the keys live at it, the file's
size and its schema version.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("snapshot status", "simple", "table", "json"); err != nil {
				return err
			}
			st, err := store.Status(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cf.writeOut == "json" {
				return printJSON(out, st)
			}
			rows := [][]string{{fmt.Sprintf("%x", st.Hash), fmt.Sprint(st.Revision), fmt.Sprint(st.TotalKey), humanize.Bytes(uint64(st.TotalSize)), st.Version}}
			if cf.writeOut == "table" {
				printTable(out, []string{"hash", "revision", "total keys", "total size", "version"}, rows)
			} else {
				printRows(out, rows)
			}
			return nil
		},
	}
	cmd.AddCommand(save, restore, status)
	return cmd
}

// etcdutlClusterFlags are etcdutl snapshot restore's flags that tend
// server takes instead: restore refuses them, naming where they go.
var etcdutlClusterFlags = []string{"name", "initial-cluster", "initial-cluster-token", "initial-advertise-peer-urls"}

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
	if err = store.VerifySnapshot(part); err != nil {
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
