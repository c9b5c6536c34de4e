package httpentry

import (
	"fmt"
	"net/http"
	"sync"
)

// router routes a process's HTTP requests to the routes of its services: one
// per Plugin, shared by the services it serves. It is safe for concurrent use.
type router struct {
	mu     sync.Mutex
	mux    *http.ServeMux
	owners map[string]string // pattern → service
}

// newRouter returns an empty router.
func newRouter() *router { return &router{mux: http.NewServeMux(), owners: map[string]string{}} }

// ServeHTTP serves r with the route whose pattern matches it: 404 when none
// does, 405 when one does but for other methods.
func (m *router) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// handle adds service's route; a pattern taken, or conflicting with one
// mounted, is an error, not net/http's panic.
func (m *router) handle(service, pattern string, h http.Handler) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if owner, ok := m.owners[pattern]; ok {
		return fmt.Errorf("HTTP route %q is registered by services %q and %q: give each route to one service", pattern, owner, service)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("service %q: HTTP route %q: %v", service, pattern, p)
		}
	}()
	m.mux.Handle(pattern, h)
	m.owners[pattern] = service
	return nil
}
