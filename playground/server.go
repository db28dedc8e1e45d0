package playground

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tendkv/tend/playground/web"
)

// Controller does what the page's buttons ask; a read-only dashboard has
// none.
type Controller interface {
	Act(ctx context.Context, action string, r Request) ActionResult
}

// keepAlive is how often an idle event stream gets a comment, so proxies
// and the browser keep it open.
const keepAlive = 15 * time.Second

// Handler serves the page, its event stream and its actions:
//
//	GET  /                the page (index.html, app.css, app.js)
//	GET  /api/events      Server-Sent Events (see the package doc)
//	GET  /api/state       the current State as JSON
//	GET  /api/timeline    the timeline as JSON
//	GET  /api/keys        the keyspace as JSON
//	GET  /api/fleet       the fleet panel as JSON (dashboard; its prefix "" when off)
//	POST /api/<action>    a Request as JSON, answered with an ActionResult
//
// ctl nil makes the page read-only: every action is refused.
func Handler(hub *Hub, ctl Controller) http.Handler {
	mux := http.NewServeMux()
	static := http.FileServerFS(web.FS)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, hub.State())
	})
	mux.HandleFunc("GET /api/timeline", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, hub.Timeline())
	})
	mux.HandleFunc("GET /api/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, hub.Keyspace())
	})
	mux.HandleFunc("GET /api/fleet", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, hub.Fleet())
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		serveEvents(w, r, hub)
	})
	mux.HandleFunc("POST /api/{action}", func(w http.ResponseWriter, r *http.Request) {
		action := r.PathValue("action")
		if ctl == nil {
			writeJSON(w, http.StatusForbidden, ActionResult{Action: action,
				Error: "this dashboard is read-only: it only watches the cluster (tend playground has the buttons)"})
			return
		}
		if !slices.Contains(Actions, action) {
			writeJSON(w, http.StatusNotFound, ActionResult{Action: action,
				Error: fmt.Sprintf("unknown action %q (try one of %s)", action, strings.Join(Actions, ", "))})
			return
		}
		var req Request
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, ActionResult{Action: action,
					Error: fmt.Sprintf("body: %v (want JSON such as {\"member\":\"m1\",\"key\":\"/k\",\"value\":\"v\"})", err)})
				return
			}
		}
		res := ctl.Act(r.Context(), action, req)
		code := http.StatusOK
		if !res.OK {
			code = http.StatusUnprocessableEntity
		}
		writeJSON(w, code, res)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// serveEvents streams the hub to one page until it leaves or falls behind.
func serveEvents(w http.ResponseWriter, r *http.Request, hub *Hub) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	first, c, gone, cancel := hub.Subscribe()
	defer cancel()
	// A new stream tells the browser to reconnect after one second.
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	for _, f := range first {
		if _, err := w.Write(f); err != nil {
			return
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-gone:
			return
		case <-ka.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
		case f := <-c:
			if _, err := w.Write(f); err != nil {
				return
			}
			// Write some of what else is waiting before one flush.
		batch:
			for range 64 {
				select {
				case f := <-c:
					if _, err := w.Write(f); err != nil {
						return
					}
				default:
					break batch
				}
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
