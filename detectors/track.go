package detectors

import (
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// A Track is everything the engine remembers of one vehicle: its last accepted fix, its episodes
// (one slot per rule), what its risk score is made of, and where its records come from. Tracks are
// found by plate, or by the plate number the decoder gives a fix (record.PlateNumbers).

// Track is the engine's state for one vehicle.
type Track struct {
	VehicleID string
	no        uint32 // its slot in Engine.numbered (0: none)
	last      Observation
	hasLast   bool
	inSite    bool // the last observation was inside a site
	// for the risk score
	history    []time.Time // when its alerts of the last 30 days opened, oldest first
	registered bool
	permitted  bool
	scored     bool // a risk was computed
	jumps      int
	episodes   []*Episode   // one per registered rule, fix rules first (each nil while it holds nothing); nil while all are (slot)
	dirty      bool         // changed since the last checkpoint
	shard      record.Shard // the input its fixes come from (its camera events', while it has no fix)
	// its camera events: the input they come from, the offset after the newest judged, and, for
	// the batch being processed (evBatch), the offset below which they were judged before
	evShard  record.Shard
	evNext   int64
	evFloor  int64
	evBatch  uint64
	restored bool      // from a checkpoint, its input not yet read again (Resume)
	due      time.Time // the next time a time-driven rule may decide, when dueAt >= 0
	dueAt    int       // index in the engine's due heap, -1 when not in it
	// its registration and permits in the reference data in force (looked up once, not per fix)
	ref     *city.City
	vehicle *city.Vehicle
	permits []*city.Permit
}

// Tracks returns the number of vehicles tracked. It is safe to call from any goroutine.
func (e *Engine) Tracks() int { return int(e.tracked.Load()) }

func (e *Engine) track(id string) *Track {
	tr := e.tracks[id]
	if tr == nil {
		tr = &Track{VehicleID: id, dueAt: -1}
		e.tracks[id] = tr
		e.tracked.Store(int64(len(e.tracks)))
		e.metrics.tracked.Set(float64(len(e.tracks)))
	}
	return tr
}

// numberedTrack is track for a fix whose plate has number no (record.PlateNumbers): the track is
// kept at numbered[no] and found there by the next fix, its plate only compared (the same
// interned string, as a rule). A number is a hint, so a different plate there is looked up by
// name and takes the slot over.
func (e *Engine) numberedTrack(id string, no uint32) *Track {
	if tr := e.numbered.Get(no); tr != nil && tr.VehicleID == id {
		return tr
	}
	tr := e.track(id)
	if no == 0 {
		return tr
	}
	e.unnumber(tr)
	e.numbered.Put(no, tr)
	tr.no = no
	return tr
}

// unnumber takes tr out of its slot in numbered, if it still holds it.
func (e *Engine) unnumber(tr *Track) {
	if e.numbered.Get(tr.no) == tr {
		e.numbered.Put(tr.no, nil)
	}
	tr.no = 0
}

// forget drops tr from the engine's indexes of tracks.
func (e *Engine) forget(tr *Track) {
	delete(e.tracks, tr.VehicleID)
	e.unnumber(tr)
}
