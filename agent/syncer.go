package agent

import (
	"log/slog"
)

// syncer fsyncs folders beside the loop, so that a file swapped in by a
// rename is visible at once and durable a moment later, without the next
// change waiting for the folder's fsync. Requests that queue up while a
// sync runs are served together, one fsync per folder.
type syncer struct {
	log  *slog.Logger
	reqs chan syncReq
	done chan struct{}
}

// syncReq asks for dir to be synced; done is closed once it was, after the
// request was made, and then synced (if set) is called.
type syncReq struct {
	dir    string
	done   chan struct{}
	synced func()
}

// startSyncer starts the syncer's goroutine; stop ends it once every
// request made before was served.
func startSyncer(log *slog.Logger) *syncer {
	s := &syncer{log: log, reqs: make(chan syncReq, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for req := range s.reqs {
			batch := []syncReq{req}
			for more := true; more; {
				select {
				case r, ok := <-s.reqs:
					if !ok {
						more = false
						break
					}
					batch = append(batch, r)
				default:
					more = false
				}
			}
			synced := map[string]bool{}
			for _, r := range batch {
				if !synced[r.dir] {
					synced[r.dir] = true
					if err := syncDir(r.dir); err != nil {
						s.log.Error("renamed file may not survive a crash", "error", err)
					}
				}
				close(r.done)
				if r.synced != nil {
					r.synced()
				}
			}
		}
	}()
	return s
}

// stop serves the requests made so far and ends the goroutine.
func (s *syncer) stop() {
	close(s.reqs)
	<-s.done
}

// syncFolder has dir fsynced, beside the loop when it runs one, in line
// otherwise (Once); the channel is closed when it is done.
func (l *loop) syncFolder(dir string) <-chan struct{} { return l.syncFolderThen(dir, nil) }

// syncFolderThen is syncFolder calling synced (if not nil) once dir is
// synced, beside the loop when the syncer runs it.
func (l *loop) syncFolderThen(dir string, synced func()) <-chan struct{} {
	done := make(chan struct{})
	if l.syncer == nil {
		if err := syncDir(dir); err != nil {
			l.log.Error("renamed file may not survive a crash", "error", err)
		}
		close(done)
		if synced != nil {
			synced()
		}
		return done
	}
	l.syncer.reqs <- syncReq{dir: dir, done: done, synced: synced}
	return done
}
