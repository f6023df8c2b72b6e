package detectors

import (
	"unsafe"

	"github.com/muckwatch/muckwatch/record"
)

// Judging a fix reads its track (896 bytes, fourteen cache lines) and what the track points to,
// its registration, permit and route. Over a fleet of 100,000 none of it is still in the caches since
// the vehicle's last fix, and a fix's reads wait on each other (the track's slot, then the
// track, then its permit), one miss after another: BenchmarkEngineProcessBatchFleet spent ~1.1
// µs a fix where one vehicle's fixes take 0.4.
//
// warm reads the tracks of the next warmFixes fixes of a batch before they are judged, one level
// at a time for all of them (their slots, then every line of their tracks, then what those point
// to), so that reads that do not wait on each other are in flight together: a group waits for
// memory about as long as one fix did. What is read is thrown away; the reads only bring the
// lines into the cache, the prefetch Go does not offer. A track's fixes are judged as before;
// warm changes nothing but what the caches hold.

// warmFixes is how many fixes are warmed at once: their tracks (~57 KB) stay in the core's cache
// while they are judged.
const warmFixes = 64

// cacheLine is the unit warm reads a track in.
const cacheLine = 64

// warm reads the tracks of the first warmFixes of fixes, and what they point to, into the cache.
func (e *Engine) warm(fixes []record.Fix) {
	var tracks [warmFixes]*Track
	n := 0
	for i := range fixes[:min(len(fixes), warmFixes)] {
		if tr := e.numbered.Get(fixes[i].VehicleNo); tr != nil {
			tracks[n] = tr
			n++
		}
	}
	var sum byte
	for _, tr := range tracks[:n] {
		p := unsafe.Pointer(tr) // a byte of every line, all within the track
		for off := uintptr(0); off < unsafe.Sizeof(Track{}); off += cacheLine {
			sum += *(*byte)(unsafe.Add(p, off))
		}
	}
	for _, tr := range tracks[:n] {
		if v := tr.vehicle; v != nil {
			sum += *(*byte)(unsafe.Pointer(v))
		}
		if p := tr.permit; p != nil {
			sum += *(*byte)(unsafe.Pointer(p))
		}
		if r := tr.route; r != nil {
			sum += *(*byte)(unsafe.Pointer(r))
		}
		if len(tr.episodes) > 0 {
			sum += *(*byte)(unsafe.Pointer(&tr.episodes[0]))
		}
	}
	// route deviation reads the route's corridor, then the segment the truck was last near: with
	// 10,000 routes (muckbench --city large) neither is in the cache either
	for _, tr := range tracks[:n] {
		if r := tr.route; r != nil && r.Corridor != nil {
			sum += *(*byte)(unsafe.Pointer(r.Corridor))
		}
	}
	for _, tr := range tracks[:n] {
		if r := tr.route; r != nil && r.Corridor != nil {
			if line, seg := r.Corridor.Line, int(tr.last.routeSeg); seg >= 0 && seg < len(line) {
				sum += *(*byte)(unsafe.Pointer(&line[seg]))
			}
		}
	}
	e.warmed = sum
}
