package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// levels in Spring Boot's order, most severe first.
var levels = []string{"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"}

const root = "ROOT"

// rank is a level's verbosity: OFF 0 ... TRACE 5, -1 for an unknown level.
func rank(level string) int {
	for i, l := range levels {
		if l == level {
			return i
		}
	}
	return -1
}

// registry is the logger tree. The mutex guards configured.
type registry struct {
	mu         sync.Mutex
	configured map[string]string // logger → configured level; "" inherits
}

func newRegistry(names []string) *registry {
	r := &registry{configured: map[string]string{root: "INFO"}}
	for _, n := range names {
		r.addLocked(n)
	}
	return r
}

// addLocked creates a logger and its dotted ancestors, as logback does.
func (r *registry) addLocked(name string) {
	for n := name; n != ""; {
		if _, ok := r.configured[n]; !ok {
			r.configured[n] = ""
		}
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[:i]
	}
}

// canonical maps any spelling of ROOT to ROOT.
func canonical(name string) string {
	if strings.EqualFold(name, root) {
		return root
	}
	return name
}

// effectiveLocked is the level of name or its nearest configured ancestor.
func (r *registry) effectiveLocked(name string) string {
	for n := name; ; {
		if l := r.configured[n]; l != "" {
			return l
		}
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			return r.configured[root]
		}
		n = n[:i]
	}
}

// state is one logger as the actuator shows it; a nil configured level is
// JSON null.
type state struct {
	ConfiguredLevel *string `json:"configuredLevel"`
	EffectiveLevel  string  `json:"effectiveLevel"`
}

func (r *registry) stateLocked(name string) state {
	s := state{EffectiveLevel: r.effectiveLocked(name)}
	if l := r.configured[name]; l != "" {
		s.ConfiguredLevel = &l
	}
	return s
}

// get returns one logger, and false if it is unknown.
func (r *registry) get(name string) (state, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name = canonical(name)
	if _, ok := r.configured[name]; !ok {
		return state{}, false
	}
	return r.stateLocked(name), true
}

// all returns every logger, ROOT first, then by name (the actuator's order).
func (r *registry) all() ([]string, map[string]state) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.configured))
	out := make(map[string]state, len(r.configured))
	for n := range r.configured {
		names = append(names, n)
		out[n] = r.stateLocked(n)
	}
	sort.Slice(names, func(i, j int) bool {
		if names[i] == root || names[j] == root {
			return names[i] == root
		}
		return names[i] < names[j]
	})
	return names, out
}

// set configures name's level; level "" resets it to inherit (ROOT to
// INFO).
func (r *registry) set(name, level string) error {
	name = canonical(name)
	if level != "" {
		level = strings.ToUpper(level)
		if rank(level) < 0 {
			return fmt.Errorf("unknown level %q (use one of %s, or null to inherit)", level, strings.Join(levels, ", "))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == root && level == "" {
		level = "INFO"
	}
	r.addLocked(name)
	r.configured[name] = level
	return nil
}

// enabled reports whether name logs lines at level.
func (r *registry) enabled(name, level string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	eff := r.effectiveLocked(canonical(name))
	return eff != "OFF" && rank(level) <= rank(eff)
}
