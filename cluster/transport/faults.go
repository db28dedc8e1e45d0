package transport

import (
	"sync"
	"time"
)

// Link is what happens to the messages of one direction between two
// members.
type Link struct {
	Drop  bool          // lose every message (a partition)
	Delay time.Duration // deliver each message this much later, in order
	// Reorder swaps each message with the one after it (a message waits
	// at most a few milliseconds for one to overtake it).
	Reorder bool
	// Flap, when positive, takes the link down (as Drop) and up again in
	// turns of Flap each, starting down when the link is set: a link that
	// keeps failing and recovering. Delay and Reorder act while it is up.
	Flap time.Duration
}

// downAt reports whether a link set at since drops what is sent at now.
func (l Link) downAt(since, now time.Time) bool {
	if l.Drop {
		return true
	}
	if l.Flap <= 0 {
		return false
	}
	return now.Sub(since)/l.Flap%2 == 0
}

// setLink is a link and when it was set (a flap counts its turns from
// then).
type setLink struct {
	Link
	since time.Time
}

// Faults holds the links that are not healthy. The zero value is not
// usable; NewFaults makes one. One Faults may be shared by the transports of
// every member in a process, so a test sets each link in one place.
type Faults struct {
	now func() time.Time // the clock flaps follow

	mu    sync.Mutex
	links map[[2]uint64]setLink // guarded by mu; from, to
}

// NewFaults returns Faults with every link healthy.
func NewFaults() *Faults { return &Faults{now: time.Now, links: map[[2]uint64]setLink{}} }

// Set sets the link from one member to another; the zero Link heals it.
func (f *Faults) Set(from, to uint64, l Link) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l == (Link{}) {
		delete(f.links, [2]uint64{from, to})
		return
	}
	f.links[[2]uint64{from, to}] = setLink{Link: l, since: f.now()}
}

// Cut drops every message from one member to another (one direction).
func (f *Faults) Cut(from, to uint64) { f.Set(from, to, Link{Drop: true}) }

// Delay delays every message from one member to another by d.
func (f *Faults) Delay(from, to uint64, d time.Duration) { f.Set(from, to, Link{Delay: d}) }

// Flap takes the link from one member to another down for period, up for
// period, and so on, starting now (one direction).
func (f *Faults) Flap(from, to uint64, period time.Duration) {
	f.Set(from, to, Link{Flap: period})
}

// Partition cuts every link between group a and group b, both ways.
func (f *Faults) Partition(a, b []uint64) {
	for _, x := range a {
		for _, y := range b {
			f.Cut(x, y)
			f.Cut(y, x)
		}
	}
}

// Isolate cuts id off from every other member of all, both ways.
func (f *Faults) Isolate(id uint64, all []uint64) {
	for _, o := range all {
		if o != id {
			f.Cut(id, o)
			f.Cut(o, id)
		}
	}
}

// Heal makes every link healthy again.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.links)
}

// Link returns the link from one member to another as it is now: a
// flapping link in a down turn has Drop set.
func (f *Faults) Link(from, to uint64) Link {
	if f == nil {
		return Link{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sl, ok := f.links[[2]uint64{from, to}]
	if !ok {
		return Link{}
	}
	l := sl.Link
	l.Drop = l.downAt(sl.since, f.now())
	return l
}
