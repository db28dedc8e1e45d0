package agent

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// Every folder sync asked for is done, once stop returns at the latest;
// a folder that cannot be synced is logged, and its waiter released.
func TestSyncerServesEveryRequest(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "missing")}
	logs := &recorder{}
	l := &loop{log: slog.New(logs), syncer: startSyncer(slog.New(logs))}
	var done []<-chan struct{}
	for i := range 200 {
		done = append(done, l.syncFolder(dirs[i%len(dirs)]))
	}
	for i, d := range done[:100] {
		select {
		case <-d:
		case <-time.After(10 * time.Second):
			t.Fatalf("sync %d of %s not done within 10s", i, dirs[i%len(dirs)])
		}
	}
	l.syncer.stop()
	for i, d := range done {
		select {
		case <-d:
		default:
			t.Fatalf("sync %d of %s not done after stop", i, dirs[i%len(dirs)])
		}
	}
	if n := logs.count("renamed file may not survive a crash", "missing"); n == 0 || n > 50 {
		t.Errorf("%d errors logged for the missing folder, want between 1 and 50 (one per batch)", n)
	}
	// Without a syncer (Once), the sync happens in line.
	l.syncer = nil
	select {
	case <-l.syncFolder(dirs[0]):
	default:
		t.Error("an in-line sync returned before it was done")
	}
}
