package backoff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestNext(t *testing.T) {
	f := func(p Policy, want ...time.Duration) {
		t.Helper()
		b := New(p)
		var got []time.Duration
		for range want {
			got = append(got, b.Next())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: waits %v, want %v", p, got, want)
		}
	}
	// doubling, capped
	f(Policy{Min: 200 * ms, Max: time.Second}, 200*ms, 400*ms, 800*ms, time.Second, time.Second)
	// uncapped
	f(Policy{Min: 200 * ms}, 200*ms, 400*ms, 800*ms, 1600*ms, 3200*ms)
	// another multiplier
	f(Policy{Min: 100 * ms, Max: time.Second, Multiplier: 3}, 100*ms, 300*ms, 900*ms, time.Second)
	f(Policy{Min: 100 * ms, Multiplier: 1}, 100*ms, 100*ms, 100*ms)
	// zero durations: no waits at all
	f(Policy{}, 0, 0, 0)
	f(Policy{Max: time.Second}, 0, 0)
	// min above max: max
	f(Policy{Min: 2 * time.Second, Max: time.Second}, time.Second, time.Second)
	// no overflow past the longest duration
	f(Policy{Min: math.MaxInt64 / 2}, math.MaxInt64/2, math.MaxInt64, math.MaxInt64)
}

func TestReset(t *testing.T) {
	b := New(Policy{Min: time.Second, Max: 30 * time.Second})
	for range 10 {
		b.Next()
	}
	if d := b.Next(); d != 30*time.Second {
		t.Fatalf("after 10 waits: %s, want the cap", d)
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Errorf("after Reset: %s, want min", d)
	}
	var zero Backoff
	if d := zero.Next(); d != 0 {
		t.Errorf("the zero Backoff waits %s", d)
	}
}

func TestJitter(t *testing.T) {
	tests := []struct {
		jitter, random float64
		want           time.Duration
	}{
		{0.5, 0, time.Second},                       // nothing taken off
		{0.5, 0.5, 750 * ms},                        // a quarter
		{0.5, 0.999, 500*ms + 500*time.Microsecond}, // almost half
		{1, 0.25, 750 * ms},
	}
	for _, tt := range tests {
		b := New(Policy{Min: time.Second, Max: 10 * time.Second, Jitter: tt.jitter})
		b.random = func() float64 { return tt.random }
		if d := b.Next(); d != tt.want {
			t.Errorf("jitter %g, random %g: %s, want %s", tt.jitter, tt.random, d, tt.want)
		}
		// the jitter does not feed into the growth
		if d := b.Next(); d > 2*time.Second || d < time.Duration((1-tt.jitter)*float64(2*time.Second)) {
			t.Errorf("jitter %g: the second wait %s is not drawn from the doubled first", tt.jitter, d)
		}
	}
	// the real random stays within bounds
	b := New(Policy{Min: time.Second, Jitter: 0.2})
	for range 100 {
		b.Reset()
		if d := b.Next(); d < 800*ms || d > time.Second {
			t.Fatalf("jitter 0.2 of 1s: %s", d)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		p    Policy
		want string // "" valid
	}{
		{Policy{}, ""},
		{Policy{Min: time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: 1, Attempts: 5}, ""},
		{Policy{Min: -1}, "min"},
		{Policy{Max: -1}, "max"},
		{Policy{Min: time.Minute, Max: time.Second}, "max (1s) must be at least min"},
		{Policy{Multiplier: 0.5}, "multiplier"},
		{Policy{Multiplier: math.NaN()}, "multiplier"},
		{Policy{Jitter: 1.5}, "jitter"},
		{Policy{Jitter: math.NaN()}, "jitter"},
		{Policy{Attempts: -1}, "attempts"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.p, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want an error about %q", tt.p, err, tt.want)
		}
	}
}

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"zero wait", t.Context(), 0, nil},
		{"negative wait", t.Context(), -time.Second, nil},
		{"short wait", t.Context(), ms, nil},
		{"cancelled before a long wait", cancelled, time.Hour, context.Canceled},
		{"cancelled, zero wait", cancelled, 0, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
				t.Errorf("Sleep(%s) = %v, want %v", tt.d, err, tt.want)
			}
		})
	}
}

// A wait ends when its context does, long before its time.
func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	b := New(Policy{Min: time.Hour})
	done := make(chan error)
	go func() { done <- b.Wait(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

// fakeClock records the waits asked for and returns at once; cancelAt cancels the context at the
// wait of that number (from 1), as a stop during a wait does.
type fakeClock struct {
	waits    []time.Duration
	cancelAt int
	cancel   context.CancelFunc
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.waits = append(c.waits, d)
	if len(c.waits) == c.cancelAt {
		c.cancel()
	}
	return ctx.Err()
}

func TestRetry(t *testing.T) {
	errDown := errors.New("down")
	errRefused := errors.New("refused")
	tests := []struct {
		name     string
		policy   Policy
		failures int   // attempts that fail before one succeeds (-1: all)
		fail     error // what they fail with
		cancelAt int   // the wait during which the context ends (0: never)
		before   bool  // the context has ended before Retry is called
		want     error
		attempts int
		waits    []time.Duration
	}{
		{name: "first attempt succeeds", policy: Policy{Min: 200 * ms}, attempts: 1},
		{name: "succeeds after three failures", policy: Policy{Min: 200 * ms, Max: time.Second}, failures: 3, fail: errDown,
			attempts: 4, waits: []time.Duration{200 * ms, 400 * ms, 800 * ms}},
		{name: "keeps trying while the context lasts", policy: Policy{Min: 200 * ms, Max: 500 * ms}, failures: 6, fail: errDown,
			attempts: 7, waits: []time.Duration{200 * ms, 400 * ms, 500 * ms, 500 * ms, 500 * ms, 500 * ms}},
		{name: "gives up after its attempts", policy: Policy{Min: 200 * ms, Attempts: 5}, failures: -1, fail: errDown,
			want: errDown, attempts: 5, waits: []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms}},
		{name: "one attempt only", policy: Policy{Min: 200 * ms, Attempts: 1}, failures: -1, fail: errDown,
			want: errDown, attempts: 1},
		{name: "a permanent error is not retried", policy: Policy{Min: 200 * ms}, failures: -1, fail: Permanent(errRefused),
			want: errRefused, attempts: 1},
		{name: "a wrapped permanent error is not retried", policy: Policy{Min: 200 * ms}, failures: -1, fail: fmt.Errorf("commit: %w", Permanent(errRefused)),
			want: errRefused, attempts: 1},
		{name: "the context ends during a wait", policy: Policy{Min: 200 * ms}, failures: -1, fail: errDown, cancelAt: 2,
			want: errDown, attempts: 2, waits: []time.Duration{200 * ms, 400 * ms}},
		{name: "the context ended before: one attempt", policy: Policy{Min: 200 * ms}, failures: -1, fail: errDown, before: true,
			want: errDown, attempts: 1},
		{name: "zero durations", policy: Policy{}, failures: 2, fail: errDown, attempts: 3, waits: []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.before {
				cancel()
			}
			clock := &fakeClock{cancelAt: tt.cancelAt, cancel: cancel}
			b := &Backoff{p: tt.policy, sleep: clock.sleep}
			attempts := 0
			var failed []int
			err := b.retry(ctx, func() error {
				attempts++
				if tt.failures < 0 || attempts <= tt.failures {
					return tt.fail
				}
				return nil
			}, func(n int, err error, wait time.Duration) {
				failed = append(failed, n)
				if !errors.Is(err, tt.fail) {
					t.Errorf("onFail got %v, want the attempt's error", err)
				}
				if wait != tt.waits[n-1] {
					t.Errorf("onFail after attempt %d: wait %s, want %s", n, wait, tt.waits[n-1])
				}
			})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Retry = %v, want %v", err, tt.want)
			}
			var mark *permanent
			if errors.As(err, &mark) && err == error(mark) {
				t.Errorf("Retry returned the permanent mark itself: %v", err)
			}
			if attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", attempts, tt.attempts)
			}
			if !slices.Equal(clock.waits, tt.waits) {
				t.Errorf("waits %v, want %v", clock.waits, tt.waits)
			}
			if len(failed) != len(tt.waits) {
				t.Errorf("onFail called after attempts %v, want once before each of the %d waits", failed, len(tt.waits))
			}
		})
	}
}

// Retry's exported form waits with real timers: zero durations make that instant.
func TestRetryRealClock(t *testing.T) {
	n := 0
	err := Retry(t.Context(), Policy{Attempts: 3}, func() error { n++; return errors.New("no") }, nil)
	if err == nil || n != 3 {
		t.Errorf("Retry = %v after %d attempts, want an error after 3", err, n)
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}
