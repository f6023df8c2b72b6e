package record

import (
	"slices"
	"sync"
)

// PlateNumbers gives every plate a small number, 1, 2, 3, … in the order the plates are first
// seen, shared by the decoders of one consumer. The stages after decoding keep per-vehicle state
// in slices indexed by Fix.VehicleNo instead of hashing the plate again for every fix (a map of
// 100,000 plates is a cache miss or three a lookup). A number is only a hint: whoever keeps state
// by it checks that the plate it finds there is the fix's. Safe for concurrent use; the decoders
// ask only for plates they have not seen before.
type PlateNumbers struct {
	mu    sync.Mutex
	nums  map[string]uint32
	limit int
}

// maxPlateNumbers bounds the plates numbered (a nation's fleet is under a million): past it,
// a new plate gets 0 and is looked up by name downstream, so a flood of made-up plates cannot
// grow the table, or the slices indexed by it, without bound.
const maxPlateNumbers = 1 << 21

// NewPlateNumbers returns an empty numbering.
func NewPlateNumbers() *PlateNumbers {
	return &PlateNumbers{nums: make(map[string]uint32), limit: maxPlateNumbers}
}

// Number returns plate's number, giving it the next one if it has none; 0 once the numbering is
// full, and for the empty plate.
func (p *PlateNumbers) Number(plate string) uint32 {
	if plate == "" {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.nums[plate]; ok {
		return n
	}
	if len(p.nums) >= p.limit {
		return 0
	}
	n := uint32(len(p.nums) + 1)
	p.nums[plate] = n
	return n
}

// ByPlateNumber holds a value per plate number (Fix.VehicleNo) in a slice, for the stages after
// decoding that keep per-vehicle state: finding a fix's vehicle is an index, not a hash of its
// plate. A number is a hint, so whoever gets a value checks it against the fix's plate. The zero
// value is empty and ready for use.
type ByPlateNumber[T any] struct{ vs []T }

// Get returns the value put for no, or T's zero value.
func (b *ByPlateNumber[T]) Get(no uint32) (v T) {
	if int(no) < len(b.vs) {
		v = b.vs[no]
	}
	return v
}

// Put keeps v for no; for no 0 (a plate without a number) it keeps nothing.
func (b *ByPlateNumber[T]) Put(no uint32, v T) {
	if no == 0 {
		return
	}
	if int(no) >= len(b.vs) {
		b.vs = slices.Grow(b.vs, int(no)+1-len(b.vs))
		b.vs = b.vs[:cap(b.vs)]
	}
	b.vs[no] = v
}
