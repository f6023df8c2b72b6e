package record

import (
	"hash/maphash"
	"unsafe"
)

// vehicleTable maps a vehicle_id as sent to its vehicleName: the lookup every fix makes. A Go
// map keyed by string reaches a key's bytes through a pointer, so in a table of a city's fleet
// (far larger than the caches, and shared with the detectors' state) a lookup cost two or three
// cache misses: 0.58 s of the bench's 6.2 s of CPU working off its backlog, the decoder's largest
// cost. Here an id of up to 15 bytes (a Chinese plate as sent is 9–12) is kept in its slot
// beside its name, so a lookup reads one 32-byte slot, half a cache line; longer ids go to a
// Go map.
type vehicleTable struct {
	seed  maphash.Seed
	slots []vehicleSlot // a power of two long, at most 3/4 used; open addressing, linear probing
	used  int
	long  map[string]vehicleName // ids of 0 or more than maxInlineID bytes
}

// vehicleSlot is an id and its name: key holds the id's bytes, zero padded, and its length in
// the last byte (0: the slot is free); plate and size are the name's plate, whose bytes it keeps.
type vehicleSlot struct {
	key   inlineID
	plate *byte
	size  uint32
	no    uint32
}

// inlineID is an id of 1 to maxInlineID bytes as a slot keeps it.
type inlineID [16]byte

const maxInlineID = len(inlineID{}) - 1

// firstSlots is how many slots the table starts with.
const firstSlots = 1024

// inline returns id as a slot keeps it; ok is false when it is too long (or empty) for a slot.
func inline(id []byte) (k inlineID, ok bool) {
	if len(id) == 0 || len(id) > maxInlineID {
		return k, false
	}
	copy(k[:], id)
	k[maxInlineID] = byte(len(id))
	return k, true
}

func (t *vehicleTable) len() int { return t.used + len(t.long) }

// get returns the name of the id as sent.
func (t *vehicleTable) get(id []byte) (vehicleName, bool) {
	k, ok := inline(id)
	if !ok {
		n, ok := t.long[string(id)]
		return n, ok
	}
	return t.getInline(k)
}

func (t *vehicleTable) getInline(k inlineID) (vehicleName, bool) {
	if len(t.slots) == 0 {
		return vehicleName{}, false
	}
	mask := len(t.slots) - 1
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == k {
			return vehicleName{plate: unsafe.String(s.plate, s.size), no: s.no}, true
		}
		if s.key[maxInlineID] == 0 {
			return vehicleName{}, false
		}
	}
}

// put sets the name of the id as sent.
func (t *vehicleTable) put(id []byte, n vehicleName) {
	k, ok := inline(id)
	if !ok {
		if t.long == nil {
			t.long = make(map[string]vehicleName)
		}
		t.long[string(id)] = n
		return
	}
	if (t.used+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	if t.place(t.slots, k, n) {
		t.used++
	}
}

// place sets k's name in slots, which have room; it reports whether k took a free slot.
func (t *vehicleTable) place(slots []vehicleSlot, k inlineID, n vehicleName) bool {
	mask := len(slots) - 1
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		s := &slots[i]
		free := s.key[maxInlineID] == 0
		if free || s.key == k {
			*s = vehicleSlot{key: k, plate: unsafe.StringData(n.plate), size: uint32(len(n.plate)), no: n.no}
			return free
		}
	}
}

func (t *vehicleTable) grow() {
	if len(t.slots) == 0 {
		t.seed = maphash.MakeSeed()
		t.slots = make([]vehicleSlot, firstSlots)
		return
	}
	slots := make([]vehicleSlot, 2*len(t.slots))
	for i := range t.slots {
		if s := &t.slots[i]; s.key[maxInlineID] != 0 {
			t.place(slots, s.key, vehicleName{plate: unsafe.String(s.plate, s.size), no: s.no})
		}
	}
	t.slots = slots
}

func (t *vehicleTable) hash(k inlineID) int {
	return int(maphash.Bytes(t.seed, k[:]))
}
