// Package backoff is muckwatch's one way of waiting between attempts at something that failed: a
// Policy (the first wait, how it grows, its cap, optional jitter, how many attempts), a Backoff that
// hands out the policy's waits one after another (Next, Reset, Wait), and Retry, which runs an
// attempt until it succeeds, the policy's attempts are used up, the error is Permanent, or the
// context ends.
//
// Every wait returns at once when its context ends, with the context's error: a stopping
// component never sleeps out a back-off.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Policy says how long to wait between attempts. The first wait is Min; each next one is
// Multiplier times the one before, up to Max.
type Policy struct {
	// Min is the first wait. Zero makes every wait zero (tests).
	Min time.Duration
	// Max caps the waits; zero leaves them uncapped.
	Max time.Duration
	// Multiplier is how much each wait grows over the one before; zero means 2.
	Multiplier float64
	// Jitter, within [0, 1], takes up to that fraction off each wait at random, so that
	// instances that failed together do not all try again together. Zero: waits are exact.
	Jitter float64
	// Attempts bounds the attempts Retry makes, the first included; zero: until the context ends.
	Attempts int
}

// Validate reports the first invalid field.
func (p Policy) Validate() error {
	switch {
	case p.Min < 0:
		return fmt.Errorf("backoff: min must not be negative, got %s", p.Min)
	case p.Max < 0:
		return fmt.Errorf("backoff: max must not be negative, got %s", p.Max)
	case p.Max > 0 && p.Max < p.Min:
		return fmt.Errorf("backoff: max (%s) must be at least min (%s)", p.Max, p.Min)
	case p.Multiplier != 0 && !(p.Multiplier >= 1): // NaN too
		return fmt.Errorf("backoff: the multiplier must be at least 1, got %g", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("backoff: jitter must be within [0, 1], got %g", p.Jitter)
	case p.Attempts < 0:
		return fmt.Errorf("backoff: attempts must not be negative, got %d", p.Attempts)
	}
	return nil
}

// Backoff hands out the waits of a Policy, one after another. Its zero value waits nothing; it is
// not safe for concurrent use (each retrying loop has its own).
type Backoff struct {
	p    Policy
	next time.Duration // the wait before jitter that Next returns next; 0: Min
	// sleep is Sleep; tests put a fake clock here
	sleep func(ctx context.Context, d time.Duration) error
	// random returns a number in [0, 1) for the jitter; nil: math/rand/v2
	random func() float64
}

// New returns a Backoff whose first wait is p.Min.
func New(p Policy) *Backoff {
	return &Backoff{p: p}
}

// Next returns the wait before the next attempt and moves on to the one after.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d == 0 {
		d = b.p.Min
	}
	if b.p.Max > 0 {
		d = min(d, b.p.Max)
	}
	b.next = grow(d, b.p.Multiplier, b.p.Max)
	if b.p.Jitter > 0 && d > 0 {
		r := b.random
		if r == nil {
			r = rand.Float64
		}
		d -= time.Duration(b.p.Jitter * r() * float64(d))
	}
	return d
}

// grow returns d times m (2 when m is 0), capped at limit (when not 0) and at the longest
// Duration.
func grow(d time.Duration, m float64, limit time.Duration) time.Duration {
	if m == 0 {
		m = 2
	}
	f := float64(d) * m
	if limit > 0 && f >= float64(limit) {
		return limit
	}
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// Reset starts the waits over from Min: the thing retried has succeeded.
func (b *Backoff) Reset() { b.next = 0 }

// Wait waits Next(), or returns ctx.Err() as soon as ctx ends.
func (b *Backoff) Wait(ctx context.Context) error {
	return b.wait(ctx, b.Next())
}

func (b *Backoff) wait(ctx context.Context, d time.Duration) error {
	if b.sleep != nil {
		return b.sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d, or returns ctx.Err() as soon as ctx ends (at once, for a context already
// ended, whatever d).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Permanent marks err as not worth another attempt: Retry returns err at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Retry calls attempt until it returns nil, waiting between failed attempts as p says. It stops
// and returns the last attempt's error when that error is Permanent (without the mark), when
// p.Attempts attempts have failed, or when ctx ends (before a wait or during one; ctx.Err() then
// tells why). The first attempt is always made. onFail, if not nil, is called after every failed attempt
// that is to be followed by another, with the attempt's number (from 1), its error and the wait
// ahead.
func Retry(ctx context.Context, p Policy, attempt func() error, onFail func(n int, err error, wait time.Duration)) error {
	b := Backoff{p: p}
	return b.retry(ctx, attempt, onFail)
}

func (b *Backoff) retry(ctx context.Context, attempt func() error, onFail func(n int, err error, wait time.Duration)) error {
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		if perm := (*permanent)(nil); errors.As(err, &perm) {
			if err == error(perm) {
				return perm.err
			}
			return err
		}
		if ctx.Err() != nil || (b.p.Attempts > 0 && n >= b.p.Attempts) {
			return err
		}
		wait := b.Next()
		if onFail != nil {
			onFail(n, err, wait)
		}
		if b.wait(ctx, wait) != nil {
			return err
		}
	}
}
