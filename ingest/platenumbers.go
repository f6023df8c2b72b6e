package ingest

import "sync"

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

// Len returns how many plates have a number.
func (p *PlateNumbers) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.nums)
}
