package playground

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startTest starts a playground of n members with etcd's timing and serves
// its page; both stop when the test ends.
func startTest(t *testing.T, n int) (*Playground, *httptest.Server) {
	t.Helper()
	return startWith(t, Options{Members: n})
}

// startWith starts a playground with opts (its DataDir a temporary one) and
// serves its page.
func startWith(t *testing.T, opts Options) (*Playground, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts.DataDir = t.TempDir()
	p, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start playground: %v", err)
	}
	srv := httptest.NewServer(Handler(p.Hub(), p))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		p.Close()
	})
	return p, srv
}

// stream is a page's view of GET /api/events.
type stream struct {
	states   chan State
	timeline chan Entry
	watch    chan []WatchEvent
	msgs     chan Msg
	keys     chan Keyspace // the keyspace a page starts from
	fleet    chan Fleet
}

// openStream reads the event stream until the test ends.
func openStream(t *testing.T, base string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/events: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET /api/events: Content-Type %q", ct)
	}
	s := &stream{states: make(chan State, 1024), timeline: make(chan Entry, 1024), watch: make(chan []WatchEvent, 1024), msgs: make(chan Msg, 4096), keys: make(chan Keyspace, 16), fleet: make(chan Fleet, 1024)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data := []byte(strings.TrimPrefix(line, "data: "))
				switch event {
				case "state":
					var st State
					if json.Unmarshal(data, &st) == nil {
						offer(s.states, st)
					}
				case "timeline":
					var e Entry
					if json.Unmarshal(data, &e) == nil {
						offer(s.timeline, e)
					}
				case "timeline-all":
					var es []Entry
					if json.Unmarshal(data, &es) == nil {
						for _, e := range es {
							offer(s.timeline, e)
						}
					}
				case "watch":
					var evs []WatchEvent
					if json.Unmarshal(data, &evs) == nil {
						offer(s.watch, evs)
					}
				case "keys":
					var ks Keyspace
					if json.Unmarshal(data, &ks) == nil {
						offer(s.keys, ks)
					}
				case "fleet":
					var f Fleet
					if json.Unmarshal(data, &f) == nil {
						offer(s.fleet, f)
					}
				case "msgs":
					var ms []Msg
					if json.Unmarshal(data, &ms) == nil {
						for _, m := range ms {
							offer(s.msgs, m)
						}
					}
				}
			}
		}
	}()
	return s
}

// offer queues v, dropping the oldest when the test reads too slowly.
func offer[T any](c chan T, v T) {
	for range 2 {
		select {
		case c <- v:
			return
		default:
			select {
			case <-c:
			default:
			}
		}
	}
}

// await returns the first value from c that satisfies cond, or fails
// after d saying what it waited for and, with show, the last value seen.
func await[T any](t *testing.T, c <-chan T, d time.Duration, what string, cond func(T) bool, show func(T) string) T {
	t.Helper()
	deadline := time.After(d)
	var last T
	for {
		select {
		case v := <-c:
			if cond(v) {
				return v
			}
			last = v
		case <-deadline:
			msg := fmt.Sprintf("no %s within %v", what, d)
			if show != nil {
				msg += "; last: " + show(last)
			}
			t.Fatal(msg)
			return last
		}
	}
}

// waitState returns the first state the stream reports that satisfies
// cond, or fails after d.
func (s *stream) waitState(t *testing.T, d time.Duration, what string, cond func(State) bool) State {
	t.Helper()
	return await(t, s.states, d, "state with "+what, cond, describe)
}

// waitEntry returns the first timeline entry that satisfies cond, or fails
// after d.
func (s *stream) waitEntry(t *testing.T, d time.Duration, what string, cond func(Entry) bool) Entry {
	t.Helper()
	return await(t, s.timeline, d, "timeline entry "+what, cond, nil)
}

// waitFleet returns the first fleet the stream reports that satisfies
// cond, or fails after d.
func (s *stream) waitFleet(t *testing.T, d time.Duration, what string, cond func(Fleet) bool) Fleet {
	t.Helper()
	return await(t, s.fleet, d, "fleet with "+what, cond, func(f Fleet) string { return fmt.Sprintf("%+v", f) })
}

// waitWatch returns the first watch event for key, or fails after d.
func (s *stream) waitWatch(t *testing.T, d time.Duration, key string) WatchEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case evs := <-s.watch:
			for _, ev := range evs {
				if ev.Key == key {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no watch event for %s within %v", key, d)
			return WatchEvent{}
		}
	}
}

// waitMsgs reads the stream's messages until each of wants (by what it
// describes) matched one, or fails after d naming those that did not.
// Every message read is first given to check.
func (s *stream) waitMsgs(t *testing.T, d time.Duration, check func(Msg), wants map[string]func(Msg) bool) {
	t.Helper()
	deadline := time.After(d)
	seen := map[string]int{}
	for len(wants) > 0 {
		select {
		case m := <-s.msgs:
			check(m)
			seen[m.Kind]++
			for what, want := range wants {
				if want(m) {
					delete(wants, what)
				}
			}
		case <-deadline:
			var missing []string
			for what := range wants {
				missing = append(missing, what)
			}
			t.Fatalf("within %v no message %s (messages seen by kind: %v)", d, strings.Join(missing, "; "), seen)
			return
		}
	}
}

// describe prints a state as one line a person reads in a failure.
func describe(st State) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "leader %s term %d groups %v:", name(st, st.Leader), st.Term, st.Groups)
	for _, m := range st.Members {
		fmt.Fprintf(&b, " %s=%s/t%d/c%d", m.Name, m.Role, m.Term, m.Commit)
	}
	return b.String()
}

func name(st State, id string) string {
	if id == "" {
		return "none"
	}
	return memberByID(st.Members, id).Name
}

func member(st State, name string) MemberView {
	for _, m := range st.Members {
		if m.Name == name {
			return m
		}
	}
	return MemberView{}
}

func leaders(st State) int {
	n := 0
	for _, m := range st.Members {
		if m.Role == "leader" {
			n++
		}
	}
	return n
}

// post asks for an action through the HTTP API.
func post(t *testing.T, base, action string, r Request) (ActionResult, int) {
	t.Helper()
	body, _ := json.Marshal(r)
	resp, err := http.Post(base+"/api/"+action, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /api/%s: %v", action, err)
	}
	defer resp.Body.Close()
	var res ActionResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("POST /api/%s: decode answer: %v", action, err)
	}
	return res, resp.StatusCode
}

// mustPost asks for an action that must succeed.
func mustPost(t *testing.T, base, action string, r Request) ActionResult {
	t.Helper()
	res, code := post(t, base, action, r)
	if !res.OK || code != http.StatusOK {
		t.Fatalf("POST /api/%s %+v: %d %s", action, r, code, res.Error)
	}
	return res
}
