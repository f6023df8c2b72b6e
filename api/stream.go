package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sseBuffer is how many items a slow SSE client may fall behind before it is disconnected (it
// resumes with Last-Event-ID and loses nothing).
const sseBuffer = 4096

// handleStream serves the live alert feed as Server-Sent Events. Filters: rule, severity,
// district (comma-separated). A client that reconnects with Last-Event-ID (or ?last_event_id=)
// gets every item after it first: from memory, or from the ClickHouse journal when the memory
// does not reach back that far. On a positioned feed (a shared view over an alerts topic of one
// partition) an id means the same on every instance: a client resumes on any of them exactly.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := s.liveFilter(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	snapshot := false
	switch q.Get("snapshot") {
	case "", "false":
	case "true":
		snapshot = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("snapshot must be true or false, got %q", q.Get("snapshot")))
		return
	}
	var after uint64
	if id := orDefault(r.Header.Get("Last-Event-ID"), q.Get("last_event_id")); id != "" {
		after, err = strconv.ParseUint(id, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID must be the id of an event of this stream (a number), got %q", id))
			return
		}
	}
	who := principal(r).Name
	if !s.streams.take(who, s.cfg.MaxStreamsPerToken) {
		s.metrics.streamRefused.Inc()
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%s already has %d alert streams open, the most one token may; close one first", who, s.cfg.MaxStreamsPerToken))
		return
	}
	defer s.streams.release(who)
	sub, backlog, complete := s.live.Subscribe(f, after, sseBuffer)
	defer s.live.Unsubscribe(sub)
	s.metrics.sseClients.Inc()
	defer s.metrics.sseClients.Dec()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if snapshot {
		// the open alerts now, taken after subscribing: a change published meanwhile comes both
		// in the snapshot and as an event (clients keep the newest version of each alert)
		b, _ := json.Marshal(struct {
			Alerts []AlertView `json:"alerts"`
		}{s.live.OpenAlerts(f)}) // only strings, numbers and bools: cannot fail
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
	}
	sent := after
	send := func(it FeedItem) bool {
		if it.Seq <= sent || !f.Match(&it.Alert.Alert) {
			return true
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", it.Seq, it.Change, encodeItem(it)); err != nil {
			return false
		}
		sent = it.Seq
		return true
	}
	if after > 0 {
		if !complete && s.live.FeedPositioned() {
			// the journal numbers its items by time, not by position: it cannot say what follows
			fmt.Fprintf(w, "event: error\ndata: {\"error\":%q}\n\n", "the alerts since this Last-Event-ID are older than this instance's memory of the feed (api.feed_buffer, api.view_lookback): reconnect with snapshot=true and no Last-Event-ID to start from the open alerts")
		} else if !complete && s.store != nil {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
			missed, err := s.store.FeedSince(ctx, after, 1_000_000)
			cancel()
			if err != nil {
				s.log.Warn("cannot replay the alert feed journal to a resuming client", "after", after, "err", err)
				fmt.Fprintf(w, "event: error\ndata: {\"error\":%q}\n\n", "cannot replay the alerts missed since this Last-Event-ID: the history is not answering; reconnect later to get them")
			}
			for _, it := range missed {
				if !send(it) {
					return
				}
			}
		}
		for _, it := range backlog {
			if !send(it) {
				return
			}
		}
	}
	if rc.Flush() != nil {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case it, ok := <-sub.ch:
			if !ok {
				return // fell too far behind: the client resumes with Last-Event-ID
			}
			if !send(it) {
				return
			}
		drain:
			for {
				select {
				case it, ok := <-sub.ch:
					if !ok {
						rc.Flush()
						return
					}
					if !send(it) {
						return
					}
				default:
					break drain
				}
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// streamCounter counts the alert streams each token has open.
type streamCounter struct {
	mu   sync.Mutex
	open map[string]int
}

// take opens a stream for who unless who has max open; release closes it.
func (c *streamCounter) take(who string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[who] >= max {
		return false
	}
	c.open[who]++
	return true
}

func (c *streamCounter) release(who string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[who]--; c.open[who] <= 0 {
		delete(c.open, who)
	}
}
