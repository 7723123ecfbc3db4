package demoapp

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// MaxSessions bounds the sessions an [App] keeps. When it is full, a new
// session evicts the one used least recently, so memory stays bounded
// however many clients come by.
const MaxSessions = 100_000

// sessions maps session IDs to user names ("" until the session logs in).
// It is safe for concurrent use and holds at most max sessions, evicting the
// least recently used.
type sessions struct {
	mu   sync.Mutex
	max  int
	byID map[string]*list.Element // of *session
	lru  list.List                // least recently used at the front
}

type session struct {
	id   string
	user string
}

func newSessions(max int) *sessions {
	return &sessions{max: max, byID: make(map[string]*list.Element)}
}

// create starts a session for user and returns its new, random ID.
func (s *sessions) create(user string) string {
	id := newID()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.lru.Len() >= s.max {
		oldest := s.lru.Remove(s.lru.Front()).(*session)
		delete(s.byID, oldest.id)
	}
	s.byID[id] = s.lru.PushBack(&session{id: id, user: user})
	return id
}

// user returns the user of the session id and whether the session exists,
// and marks it used.
func (s *sessions) user(id string) (user string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return "", false
	}
	s.lru.MoveToBack(e)
	return e.Value.(*session).user, true
}

// delete ends the session id, if it exists.
func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[id]; ok {
		s.lru.Remove(e)
		delete(s.byID, id)
	}
}

// len returns the number of sessions.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// newID returns 128 random bits in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b[:])
}
