package detectors

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Snapshots: the checkpoints of every vehicle changed since the last, as of one moment between
// two batches, encoded on a goroutine of their own while the engine goes on judging. Encoding a
// fleet's state takes ~1.2 µs a vehicle (its track, episodes and alerts are out of the cache by
// then): ~125 ms for 100,000 trucks, which the batches behind it waited for when the engine's own
// goroutine did it.
//
// The cut stays consistent by copy-on-write: before the engine changes a track that a snapshot in
// flight has not encoded yet, it encodes the track itself (settle). Each track of the snapshot is
// claimed by exactly one of the two goroutines (Track.cp, compare-and-swap), so it is encoded once,
// as it stood at the snapshot, whoever gets there first.
//
// Track.marked is the epoch (Engine.epoch) whose changed-list (Engine.dirty) holds the track; a
// snapshot takes the list and starts the next epoch, so that taking one touches no track. Track.cp
// is 2×epoch once a goroutine has claimed the track for that epoch's snapshot, 2×epoch+1 once it
// is encoded.

// Snapshot is the checkpoints of the vehicles changed in one epoch (Engine.Snapshot).
type Snapshot struct {
	e   *Engine
	cut *cut
	enc snapshotPart // what the encoder encoded, and once done all of them
}

// cut is what the engine keeps of the snapshot in flight (Engine.inflight): enough to tell
// whether a track is in it and to encode it there, not the checkpoints, which are the
// Snapshot's holder's.
type cut struct {
	epoch  uint32
	tracks []*Track // read by the encoder and, when hurried, the engine; changed by neither until done
	// settled: what the engine's goroutine encoded before it changed a track (under mu: the
	// encoder takes them over once every track is encoded)
	mu      sync.Mutex
	settled snapshotPart
	done    chan struct{}
	// hurry is closed when the engine wants the snapshot finished (the next is due): the
	// encoder stops pacing itself, the engine's goroutine encodes what is left beside it
	hurry chan struct{}
	// the checkpoints' number and size, once done: the next snapshot's buffers are sized by them
	count, bytes int
}

// snapshotPart is checkpoints encoded by one goroutine, in arenas of its own (Dirty's chunking).
// chunks are its arenas of arenaChunk bytes, for Release.
type snapshotPart struct {
	checkpointLists
	arena  []byte
	chunks [][]byte
	bytes  int
}

// checkpointLists is checkpoints by index: the vehicle, its input shard, its state.
type checkpointLists struct {
	vehicles []string
	shards   []record.Shard
	values   [][]byte
}

func (p *snapshotPart) add(e *Engine, tr *Track) {
	if cap(p.arena)-len(p.arena) < arenaChunkRoom { // a chunk twice the last, up to arenaChunk
		p.bytes += len(p.arena)
		p.newArena(&e.released, min(arenaChunk, max(16<<10, 2*cap(p.arena))))
	}
	start := len(p.arena)
	p.arena = e.appendCheckpoint(p.arena, tr)
	p.vehicles = append(p.vehicles, tr.VehicleID)
	p.shards = append(p.shards, tr.shard)
	p.values = append(p.values, p.arena[start:len(p.arena):len(p.arena)])
}

// newArena starts an arena of at least size bytes (at most arenaChunk): a released chunk if there
// is one, else a new one of size bytes.
func (p *snapshotPart) newArena(m *snapshotMemory, size int) {
	p.arena = m.chunk(size < arenaChunk)
	if p.arena == nil {
		p.arena = make([]byte, 0, size)
		return
	}
	p.chunks = append(p.chunks, p.arena)
}

// snapshotMemory keeps the memory of snapshots whose checkpoints were written (Snapshot.Release)
// for the snapshots after them: in a live window every vehicle moves between two checkpoints, so
// each snapshot is the whole fleet's state (~50 MB for 100,000 trucks), and made afresh each
// time it was most of what the process allocated, and the collections it set off every
// checkpoint interval were the lookups' and the detection's slowest moments. It keeps as many
// chunks as the largest of the last few snapshots released had, so that a burst's (a backlog's)
// do not stay once the snapshots are smaller. The engine's goroutine, the encoder and the
// releasing goroutine use it.
type snapshotMemory struct {
	mu     sync.Mutex
	chunks [][]byte          // each of arenaChunk bytes, empty
	lists  []checkpointLists // empty: the encoder's part's and the engine's (keptLists)
	// theirs: the encoder's list of the tracks the engine's goroutine claimed, emptied (one
	// encoder runs at a time; in a live window it is most of the fleet)
	theirs []*Track
	// used: how many chunks each of the last keptSnapshots snapshots released had (released
	// counts them all)
	used     [keptSnapshots]int
	released int
}

// keptSnapshots is how many of the last snapshots released the chunks kept are enough for.
const keptSnapshots = 4

// keptLists is how many parts' lists a snapshotMemory keeps: a snapshot has two parts.
const keptLists = 2

// chunk returns an empty chunk of arenaChunk bytes, a released one if there is one, else a new
// one, or nil when onlyKept is true.
func (m *snapshotMemory) chunk(onlyKept bool) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.chunks); n > 0 {
		c := m.chunks[n-1]
		m.chunks[n-1] = nil
		m.chunks = m.chunks[:n-1]
		return c
	}
	if onlyKept {
		return nil
	}
	return make([]byte, 0, arenaChunk)
}

// takeLists returns lists with room for n checkpoints: the smallest kept ones that have it, else
// new ones. Both parts of a snapshot ask for room for all of its tracks: either may encode most.
func (m *snapshotMemory) takeLists(n int) checkpointLists {
	m.mu.Lock()
	defer m.mu.Unlock()
	best := -1
	for i, l := range m.lists {
		if cap(l.values) >= n && (best < 0 || cap(l.values) < cap(m.lists[best].values)) {
			best = i
		}
	}
	if best < 0 {
		return checkpointLists{make([]string, 0, n), make([]record.Shard, 0, n), make([][]byte, 0, n)}
	}
	l := m.lists[best]
	m.lists = slices.Delete(m.lists, best, best+1)
	return l
}

// takeTheirs returns the encoder's list of claimed tracks, empty.
func (m *snapshotMemory) takeTheirs() []*Track {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.theirs
	m.theirs = nil
	return l
}

// putTheirs keeps l, emptied, for the next encoder.
func (m *snapshotMemory) putTheirs(l []*Track) {
	clear(l)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.theirs = l[:0]
}

// putLists keeps l, emptied, unless keptLists larger ones are kept.
func (m *snapshotMemory) putLists(l checkpointLists) {
	if cap(l.values) == 0 {
		return
	}
	clear(l.vehicles)
	clear(l.values)
	l = checkpointLists{l.vehicles[:0], l.shards[:0], l.values[:0]}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists = append(m.lists, l)
	if len(m.lists) > keptLists { // the smallest goes
		slices.SortFunc(m.lists, func(a, b checkpointLists) int { return cap(b.values) - cap(a.values) })
		m.lists = slices.Delete(m.lists, keptLists, len(m.lists))
	}
}

// release keeps p's chunks and lists, emptied, dropping those kept before beyond as many chunks
// as the most any of the last keptSnapshots released had (snapshots of the same fleet differ by
// a few chunks, with how the two goroutines shared the work, and each chunk made afresh is a
// MiB of garbage); with keep false it keeps nothing, and drops what it kept.
func (m *snapshotMemory) release(p *snapshotPart, keep bool) {
	if keep {
		m.putLists(p.checkpointLists)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !keep {
		clear(m.chunks)
		clear(m.lists)
		m.chunks, m.lists, m.theirs = m.chunks[:0], m.lists[:0], nil
		m.used = [keptSnapshots]int{}
		return
	}
	for _, c := range p.chunks {
		m.chunks = append(m.chunks, c[:0])
	}
	m.used[m.released%keptSnapshots] = len(p.chunks)
	m.released++
	if extra := len(m.chunks) - slices.Max(m.used[:]); extra > 0 {
		clear(m.chunks[:extra]) // the oldest
		m.chunks = append(m.chunks[:0], m.chunks[extra:]...)
	}
}

// Snapshot takes the checkpoints of every vehicle whose state changed since the last snapshot (or
// Dirty call), as it stands now, and forgets that they changed. They are encoded on a goroutine of
// its own; the engine may go on processing at once. Call Wait before reading them.
//
// The encoder spreads its work over about spread (0: at once): a track the engine changes
// meanwhile is encoded by the engine, just before, while it is in the cache (~0.2 µs, against
// ~1.2 µs for a track the encoder fetches from memory), so the slower the sweep, the less it
// costs and the less it takes from the batches being judged beside it; but the checkpoints, and
// the offsets they commit, wait for it. A snapshot still in flight when the next is taken is
// finished at once, the engine's goroutine helping.
func (e *Engine) Snapshot(spread time.Duration) *Snapshot {
	s := e.takeSnapshot()
	if len(s.cut.tracks) > 0 {
		go s.encode(min(arenaChunk, len(s.cut.tracks)*max(e.checkpointSize, 64)*5/4), spread)
	}
	return s
}

// takeSnapshot is Snapshot without its encoder started (s.encode): the tests start it when they
// choose to.
func (e *Engine) takeSnapshot() *Snapshot {
	e.finishSnapshot()
	c := &cut{epoch: e.epoch, tracks: e.dirty, done: make(chan struct{}), hurry: make(chan struct{})}
	e.dirty, e.spare = e.spare, nil
	e.epoch++
	if len(c.tracks) == 0 {
		close(c.done)
	} else {
		e.inflight = c
	}
	return &Snapshot{e: e, cut: c}
}

// sweepChunk is how many tracks the encoder encodes between its pauses.
const sweepChunk = 512

// claim reports whether the caller has won tr for the cut's snapshot: it is then the one to
// encode it, and says so with encoded. The other goroutine, losing, waits for that (await).
func (c *cut) claim(tr *Track) bool {
	v := tr.cp.Load()
	return v < 2*c.epoch && tr.cp.CompareAndSwap(v, 2*c.epoch)
}

func (c *cut) encoded(tr *Track) { tr.cp.Store(2*c.epoch + 1) }

func (c *cut) isEncoded(tr *Track) bool { return tr.cp.Load() == 2*c.epoch+1 }

// await waits for the goroutine that claimed tr to encode it: a µs or two.
func (c *cut) await(tr *Track) {
	for !c.isEncoded(tr) {
		runtime.Gosched()
	}
}

// encode encodes every track of the snapshot the engine's goroutine has not claimed, then waits
// for those it has to be encoded and takes its checkpoints over.
func (s *Snapshot) encode(arena int, spread time.Duration) {
	c := s.cut
	n := len(c.tracks)
	s.enc.checkpointLists = s.e.released.takeLists(n)
	s.enc.newArena(&s.e.released, arena)
	theirs := s.e.released.takeTheirs()
	var pause *time.Timer
	start, chunks := time.Now(), time.Duration((n+sweepChunk-1)/sweepChunk)
	mine := 0 // tracks this goroutine encoded in the chunk before
	for i, tr := range c.tracks {
		// A pause between chunks, to keep to the spread; none after a chunk the engine had
		// encoded all of (it is meeting every track, a backlog): the snapshot is then done as
		// soon as the engine is.
		if spread > 0 && i > 0 && i%sweepChunk == 0 {
			if d := time.Until(start.Add(spread * time.Duration(i/sweepChunk) / chunks)); mine > 0 && d > 0 && !sleep(&pause, d, c.hurry) {
				spread = 0 // hurried
			}
			mine = 0
		}
		if c.claim(tr) {
			s.enc.add(s.e, tr)
			c.encoded(tr)
			mine++
		} else {
			theirs = append(theirs, tr)
		}
	}
	for _, tr := range theirs {
		c.await(tr)
	}
	s.e.released.putTheirs(theirs)
	c.mu.Lock()
	st := c.settled
	c.settled = snapshotPart{}
	c.mu.Unlock()
	s.enc.take(&st)
	s.e.released.putLists(st.checkpointLists) // copied: its chunks are the snapshot's now, its lists free
	c.count, c.bytes = len(s.enc.values), s.enc.bytes
	close(c.done)
}

// sleep waits d on *t (made at the first call), and reports false if stop came first.
func sleep(t **time.Timer, d time.Duration, stop <-chan struct{}) bool {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-(*t).C:
		return true
	case <-stop:
		return false
	}
}

// take appends q's checkpoints to p's, and counts both parts' bytes in p's; p's arena is not
// appended to any more.
func (p *snapshotPart) take(q *snapshotPart) {
	p.vehicles = append(p.vehicles, q.vehicles...)
	p.shards = append(p.shards, q.shards...)
	p.values = append(p.values, q.values...)
	p.chunks = append(p.chunks, q.chunks...)
	p.bytes += len(p.arena) + q.bytes + len(q.arena)
	p.arena = nil
}

// settle encodes tr for the snapshot in flight, unless it is not in it or already encoded: the
// engine calls it before it changes a track. When the encoder is at it, it waits for it.
func (e *Engine) settle(tr *Track) {
	c := e.inflight
	if c == nil || tr.marked != c.epoch || c.isEncoded(tr) {
		return
	}
	if !c.claim(tr) {
		c.await(tr)
		return
	}
	c.mu.Lock()
	if c.settled.values == nil { // room for all: in a live window the engine meets most tracks first
		c.settled.checkpointLists = e.released.takeLists(len(c.tracks))
	}
	c.settled.add(e, tr)
	c.mu.Unlock()
	c.encoded(tr)
}

// finishSnapshot waits for the snapshot in flight, if any, to be encoded.
func (e *Engine) finishSnapshot() {
	if c := e.inflight; c != nil {
		select {
		case <-c.done:
		default:
			close(c.hurry)
			for _, tr := range c.tracks { // the encoder reads the list too; neither changes it
				e.settle(tr)
			}
			<-c.done
		}
		if c.count > 0 {
			e.checkpointSize = c.bytes / c.count
		}
		clear(c.tracks)
		e.spare, c.tracks = c.tracks[:0], nil // the next epoch's changed-list
		e.inflight = nil
	}
}

// Len returns how many checkpoints the snapshot holds, once Wait has returned.
func (s *Snapshot) Len() int { return len(s.enc.values) }

// Wait waits until every checkpoint of the snapshot is encoded, or ctx is done.
func (s *Snapshot) Wait(ctx context.Context) error {
	select {
	case <-s.cut.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("checkpoints not encoded yet: %w", ctx.Err())
	}
}

// Each calls f with every checkpoint of the snapshot, once Wait has returned: the vehicle, the
// input shard its records come from, and its state. f may keep the slices until Release.
func (s *Snapshot) Each(f func(vehicle string, shard record.Shard, checkpoint []byte)) {
	for i, v := range s.enc.vehicles {
		f(v, s.enc.shards[i], s.enc.values[i])
	}
}

// Release gives the snapshot's memory to the snapshots after it: call it, once Wait has returned,
// when nothing reads the checkpoints Each gave any more (they are written). The snapshot is then
// empty. With keep false (no snapshot like it is expected soon: the input paused) the memory goes
// to the collector instead, with what the snapshots released before left. A snapshot not
// released leaves its memory to the collector.
func (s *Snapshot) Release(keep bool) {
	s.e.released.release(&s.enc, keep)
	s.enc = snapshotPart{}
}
