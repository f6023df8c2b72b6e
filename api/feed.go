package api

import (
	"encoding/json"
	"math"
	"sort"
	"sync"
	"time"
)

// FeedItem is one item of the live alert feed (SSE, webhook).
type FeedItem struct {
	Seq    uint64    `json:"seq"`
	Change string    `json:"change"`
	Alert  AlertView `json:"alert"`
	// relayed: the change was made by another instance and read from the alerts topic (a shared
	// view, shared.go); that instance journals it and hands it to the webhook, not this one.
	relayed bool
}

// feed is the live alert feed: the last items in a ring for clients resuming with Last-Event-ID,
// the items not yet journaled, and the SSE subscribers.
type feed struct {
	mu        sync.RWMutex
	size      int // how many items the ring keeps (Config.FeedBuffer)
	seq       uint64
	ring      []FeedItem // the last size items, oldest first from ringStart
	ringStart int
	complete  uint64 // the ring holds every item after this seq (process start, or the last dropped)
	subs      map[*subscriber]struct{}
	journal   []FeedItem // items not yet handed to the journal writer
}

func newFeed(size int, complete uint64) feed {
	return feed{size: size, complete: complete, subs: make(map[*subscriber]struct{})}
}

// publish appends an item to the feed and hands it to the subscribers. Called with the alerts'
// lock held, so that items are in the order the alerts changed.
func (l *Live) publish(item FeedItem) FeedItem {
	item.relayed = item.relayed || l.alerts.relaying
	return l.feed.publish(item, l.now())
}

func (f *feed) publish(item FeedItem, now time.Time) FeedItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Sequence numbers are wall-clock microseconds, strictly increasing: they keep growing across
	// restarts, so a client's Last-Event-ID stays meaningful.
	f.seq = max(f.seq+1, uint64(now.UnixMicro()))
	item.Seq = f.seq
	if len(f.ring) < f.size {
		f.ring = append(f.ring, item)
	} else {
		f.complete = f.ring[f.ringStart].Seq
		f.ring[f.ringStart] = item
		f.ringStart = (f.ringStart + 1) % len(f.ring)
	}
	if !item.relayed {
		f.journal = append(f.journal, item)
	}
	for s := range f.subs {
		s.offer(item)
	}
	return item
}

// takeJournal returns the items published since the last call, for the journal writer.
func (l *Live) takeJournal() []FeedItem {
	f := &l.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.journal
	f.journal = nil
	return j
}

// Since returns the feed items after seq still in memory, oldest first, and whether the memory
// reaches back that far (false: older items must be read from the journal).
func (l *Live) Since(seq uint64, limit int) ([]FeedItem, bool) {
	f := &l.feed
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.since(seq, limit)
}

// since is Since with f.mu held.
func (f *feed) since(seq uint64, limit int) ([]FeedItem, bool) {
	ok := seq >= f.complete
	n := len(f.ring)
	at := func(i int) *FeedItem { return &f.ring[(f.ringStart+i)%n] }
	i := sort.Search(n, func(i int) bool { return at(i).Seq > seq })
	var out []FeedItem
	for ; i < n && len(out) < limit; i++ {
		out = append(out, *at(i))
	}
	return out, ok
}

// subscriber is one SSE client. Items that do not fit its buffer close it: the client reconnects
// with Last-Event-ID and resumes from the ring, so a slow client loses nothing and holds up no one.
type subscriber struct {
	filter AlertFilter
	ch     chan FeedItem
	closed bool
}

func (s *subscriber) offer(item FeedItem) {
	if s.closed || !s.filter.Match(&item.Alert.Alert) {
		return
	}
	select {
	case s.ch <- item:
	default:
		s.closed = true
		close(s.ch)
	}
}

// Subscribe registers a feed subscriber and returns, atomically with the registration, the items
// after seq still in memory (ok false when the memory does not reach back that far).
func (l *Live) Subscribe(f AlertFilter, after uint64, buffer int) (*subscriber, []FeedItem, bool) {
	fd := &l.feed
	fd.mu.Lock()
	defer fd.mu.Unlock()
	s := &subscriber{filter: f, ch: make(chan FeedItem, buffer)}
	fd.subs[s] = struct{}{}
	backlog, ok := fd.since(after, math.MaxInt)
	return s, backlog, ok
}

// Unsubscribe removes a subscriber.
func (l *Live) Unsubscribe(s *subscriber) {
	f := &l.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// encodeItem is the JSON of a feed item.
func encodeItem(item FeedItem) []byte {
	b, _ := json.Marshal(item) // only strings, numbers and bools: cannot fail
	return b
}
