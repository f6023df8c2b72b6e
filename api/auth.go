package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Role is what a token may do.
type Role string

// Roles. An admin may do everything.
const (
	RoleSquad      Role = "squad"      // inspection squads: vehicle lookups on handhelds
	RoleSupervisor Role = "supervisor" // command centre: the alert feed, dispatch, lifecycle
	RoleAnalyst    Role = "analyst"    // history: violations, tracks, heatmaps
	RoleAdmin      Role = "admin"
)

func parseRole(s string) (Role, bool) {
	switch r := Role(s); r {
	case RoleSquad, RoleSupervisor, RoleAnalyst, RoleAdmin:
		return r, true
	}
	return "", false
}

// Principal is who a request comes from.
type Principal struct {
	Name string
	Role Role
}

// Tokens holds the accepted bearer tokens by the SHA-256 of the token: the tokens themselves are
// never stored, only their hashes.
type Tokens struct {
	byHash map[[sha256.Size]byte]Principal
}

// ParseTokens parses entries "ROLE:NAME:sha256:HEX" separated by commas or newlines. src names
// where they came from, for error messages.
func ParseTokens(s, src string) (*Tokens, error) {
	t := &Tokens{byHash: make(map[[sha256.Size]byte]Principal)}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		if len(parts) != 4 || parts[2] != "sha256" {
			return nil, fmt.Errorf("%s entry %d: want ROLE:NAME:sha256:HEX, got %d colon-separated parts", src, i+1, len(parts))
		}
		role, ok := parseRole(parts[0])
		if !ok {
			return nil, fmt.Errorf("%s entry %d: role %q is not squad, supervisor, analyst or admin", src, i+1, parts[0])
		}
		if parts[1] == "" {
			return nil, fmt.Errorf("%s entry %d: empty name", src, i+1)
		}
		h, err := hex.DecodeString(parts[3])
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("%s entry %d (%s): the hash must be 64 hex digits", src, i+1, parts[1])
		}
		var k [sha256.Size]byte
		copy(k[:], h)
		if _, dup := t.byHash[k]; dup {
			return nil, fmt.Errorf("%s entry %d (%s): the same token is listed twice", src, i+1, parts[1])
		}
		t.byHash[k] = Principal{Name: parts[1], Role: role}
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// Lookup returns who token belongs to.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	h := sha256.Sum256([]byte(token))
	p, ok := t.byHash[h]
	if !ok {
		return Principal{}, false
	}
	// The map lookup is by a hash of a high-entropy secret; compare once more in constant time.
	for k := range t.byHash {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			return p, true
		}
	}
	return Principal{}, false
}

// NewToken returns a fresh random token and its entry for ParseTokens.
func NewToken(role Role, name string) (token, entry string, err error) {
	if _, ok := parseRole(string(role)); !ok {
		return "", "", fmt.Errorf("role %q is not squad, supervisor, analyst or admin", role)
	}
	if name == "" || strings.ContainsAny(name, ":,\n") {
		return "", "", fmt.Errorf("token name %q must be non-empty without ':' ',' or newlines", name)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = "mw_" + hex.EncodeToString(b[:])
	return token, TokenEntry(role, name, token), nil
}

// TokenEntry is the ParseTokens entry of token.
func TokenEntry(role Role, name, token string) string {
	h := sha256.Sum256([]byte(token))
	return fmt.Sprintf("%s:%s:sha256:%s", role, name, hex.EncodeToString(h[:]))
}

// limiter is a token bucket per principal.
type limiter struct {
	rate    float64
	burst   float64
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket), now: time.Now}
}

// allow takes one request from who's bucket; when empty it returns how long until the next.
func (l *limiter) allow(who string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[who]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[who] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// bearer extracts the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// failureLimiter counts refused authentications per client address: after burst of them, at most
// rate per second more are answered (429 before that), so that tokens cannot be guessed at speed.
type failureLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
	now         func() time.Time
}

// maxFailureClients bounds the addresses remembered; beyond it the oldest state is forgotten.
const maxFailureClients = 100_000

func newFailureLimiter(perMinute int) *failureLimiter {
	return &failureLimiter{rate: float64(perMinute) / 60, burst: float64(perMinute), buckets: make(map[string]*bucket), now: time.Now}
}

// refill brings host's bucket up to now. l.mu is held.
func (l *failureLimiter) refill(host string) *bucket {
	now := l.now()
	b := l.buckets[host]
	if b == nil {
		if len(l.buckets) >= maxFailureClients {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[host] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b
}

// allowed reports whether host may try a token now, and if not how long until it may.
func (l *failureLimiter) allowed(host string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(host)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// failed counts a refused authentication from host.
func (l *failureLimiter) failed(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(host)
	b.tokens = max(0, b.tokens-1)
}
