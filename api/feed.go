package api

import (
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
	// readBack: a change this instance made (and journaled then), read back from the alerts topic.
	readBack bool
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
	// positioned: seq is the position of the item's record on the alerts topic (SetFeedPositions);
	// journalSeq numbers the journal's items then (wall-clock microseconds).
	positioned bool
	journalSeq uint64
}

func newFeed(size int, complete uint64) feed {
	return feed{size: size, complete: complete, subs: make(map[*subscriber]struct{})}
}

// publish appends an item to the feed and hands it to the subscribers. Called with the alerts'
// lock held, so that items are in the order the alerts changed.
//
// A feed positioned on the alerts topic (SetFeedPositions) streams only what it reads from the
// topic, with the record's position as the item's seq: a change made here is journaled (and so
// handed to the webhook) at once, and streamed when it is read back (ApplyAnnounced).
func (l *Live) publish(item FeedItem) FeedItem {
	item.relayed = item.relayed || l.alerts.relaying
	if l.feed.positioned {
		if l.alerts.position == 0 {
			return l.feed.journalOnly(item, l.now())
		}
		return l.feed.publishAt(item, l.alerts.position, l.now())
	}
	return l.feed.publish(item, l.now())
}

func (f *feed) publish(item FeedItem, now time.Time) FeedItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Sequence numbers are wall-clock microseconds, strictly increasing: they keep growing across
	// restarts, so a client's Last-Event-ID stays meaningful.
	f.seq = max(f.seq+1, uint64(now.UnixMicro()))
	item.Seq = f.seq
	f.stream(item)
	if !item.relayed {
		f.journal = append(f.journal, item)
	}
	return item
}

// stream adds an item to the ring and hands it to the subscribers. f.mu is held.
func (f *feed) stream(item FeedItem) {
	if len(f.ring) < f.size {
		f.ring = append(f.ring, item)
	} else {
		f.complete = f.ring[f.ringStart].Seq
		f.ring[f.ringStart] = item
		f.ringStart = (f.ringStart + 1) % len(f.ring)
	}
	for s := range f.subs {
		s.offer(item)
	}
}

// journalOnly journals a change made here, with a wall-clock seq of its own (the journal's key,
// and when the alert was first published), without streaming it (a positioned feed).
func (f *feed) journalOnly(item FeedItem, now time.Time) FeedItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.journalSeq = max(f.journalSeq+1, uint64(now.UnixMicro()))
	item.Seq = f.journalSeq
	if !item.relayed {
		f.journal = append(f.journal, item)
	}
	return item
}

// publishAt streams an item read from the alerts topic at position pos (its offset + 1) with pos
// as its seq, once: a record read again is not streamed again. A change another instance made
// is not journaled; one this instance's pipeline made is, with a wall-clock seq.
func (f *feed) publishAt(item FeedItem, pos uint64, now time.Time) FeedItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pos <= f.seq {
		return item
	}
	f.seq = pos
	if !item.relayed && !item.readBack {
		j := item
		f.journalSeq = max(f.journalSeq+1, uint64(now.UnixMicro()))
		j.Seq = f.journalSeq
		f.journal = append(f.journal, j)
	}
	item.Seq = pos
	f.stream(item)
	return item
}

// SetFeedPositions makes the feed's seq the position of each item's record on the alerts topic
// (its offset + 1), so that an item has the same seq on every instance of a shared view and a
// client resumes on any of them exactly where it left off. It needs an alerts topic of one
// partition (a single order); from is the offset the view starts reading it at. Call it before
// the view is fed.
func (l *Live) SetFeedPositions(from uint64) {
	l.feed.mu.Lock()
	defer l.feed.mu.Unlock()
	l.feed.positioned = true
	l.feed.seq, l.feed.complete = from, from
}

// FeedPositioned reports whether the feed's seqs are positions on the alerts topic.
func (l *Live) FeedPositioned() bool {
	l.feed.mu.RLock()
	defer l.feed.mu.RUnlock()
	return l.feed.positioned
}

// takeJournal returns the items published since the last call, for the journal writer.
// The next items go to a slice made as large as this call's: grown from nothing instead, by a
// quarter at a time once large, a burst of alert changes (the morning's zone hours) allocated
// several times its items between two flushes.
func (l *Live) takeJournal() []FeedItem {
	f := &l.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.journal
	f.journal = nil
	if len(j) > 0 {
		f.journal = make([]FeedItem, 0, len(j))
	}
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
	return appendFeedItem(make([]byte, 0, feedItemSize(&item)), &item)
}
