package cluster

import (
	"sync"

	"github.com/tendkv/tend/store"
)

// waitRegistry matches applied results to the proposers waiting for them,
// by request ID.
type waitRegistry struct {
	mu sync.Mutex
	m  map[uint64]chan store.Result
}

func newWaitRegistry() *waitRegistry {
	return &waitRegistry{m: map[uint64]chan store.Result{}}
}

// register returns the channel that will carry id's result.
func (w *waitRegistry) register(id uint64) <-chan store.Result {
	ch := make(chan store.Result, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

// trigger delivers id's result, if anyone is still waiting.
func (w *waitRegistry) trigger(id uint64, r store.Result) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// cancel forgets id (its proposer gave up).
func (w *waitRegistry) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}
