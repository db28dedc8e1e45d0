package auth

import (
	"strconv"
	"sync"
	"time"
)

// simple are etcd's simple tokens: "prefix.index", known in memory on every
// member, forgotten ttl after their last use.
type simple struct {
	ttl time.Duration
	now func() time.Time

	// mu guards tokens.
	mu     sync.Mutex
	tokens map[string]*simpleToken
}

type simpleToken struct {
	user    string
	expires time.Time
}

func newSimple(opts Options) *simple {
	return &simple{ttl: opts.TTL, now: opts.Now, tokens: map[string]*simpleToken{}}
}

func (s *simple) Prefix() (string, error) { return randomLetters(simpleTokenLen) }

func (s *simple) Assign(user string, _, index uint64, prefix string) (string, error) {
	tok := prefix + "." + strconv.FormatUint(index, 10)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Drop expired tokens here, so that unused ones do not pile up.
	for t, st := range s.tokens {
		if !now.Before(st.expires) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = &simpleToken{user: user, expires: now.Add(s.ttl)}
	return tok, nil
}

func (s *simple) Check(token string) (Claims, error) {
	if _, ok := simpleIndex(token); !ok {
		return Claims{}, ErrInvalidAuthToken
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tokens[token]
	if !ok {
		return Claims{}, ErrInvalidAuthToken
	}
	if !now.Before(st.expires) {
		delete(s.tokens, token)
		return Claims{}, ErrInvalidAuthToken
	}
	st.expires = now.Add(s.ttl)
	return Claims{User: st.user}, nil
}

func (s *simple) Index(token string) uint64 {
	n, _ := simpleIndex(token)
	return n
}

func (s *simple) Forget(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, st := range s.tokens {
		if st.user == user {
			delete(s.tokens, t)
		}
	}
}

func (s *simple) ForgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}
