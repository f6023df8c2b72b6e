package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// squadLoad is the squads' side of the bench: lookups of random plates (GET
// /api/v1/vehicles/{plate}), each squad with its own token. At Rate they arrive at random
// (exponential gaps), each on its own, and each is timed from when it was due, not from when it
// was sent: a squad does not wait for another's answer, and timing from the send would hide the
// wait of those due meanwhile. At Rate 0, Concurrency clients look up as fast as they can, one
// after another: that measures the most the API serves, its latency being mostly the queue the
// clients themselves make.
//
// By default the bench runs it in a child process (`muckbench squads`, the load as JSON on its
// standard input, the result as JSON on its standard output), as a load generator such as wrk
// is run: squads' handhelds are not in the pipeline's process, so their HTTP clients' CPU,
// allocations and scheduling are not the pipeline's, and a pause of the pipeline's runtime does
// not also stop the clock that times it.
type squadLoad struct {
	Base        string   `json:"base"`   // the API's base URL
	Plates      []string `json:"plates"` // looked up at random
	Tokens      []string `json:"tokens"` // one per squad
	Seed        uint64   `json:"seed"`
	Lookups     int      `json:"lookups"`
	Rate        float64  `json:"rate"`        // lookups/s; 0: closed loop
	Concurrency int      `json:"concurrency"` // clients of the closed loop
}

// squadResult is what the squads measured.
type squadResult struct {
	Lookups     int     `json:"lookups"`
	Failures    int     `json:"failures"`
	FirstError  string  `json:"first_error,omitempty"`
	MaxInFlight int     `json:"max_in_flight"`
	Rate        float64 `json:"rate"` // lookups/s achieved
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

func (l squadLoad) validate() error {
	switch {
	case l.Base == "":
		return errors.New("no API base URL")
	case len(l.Plates) == 0:
		return errors.New("no plates to look up")
	case len(l.Tokens) == 0:
		return errors.New("no tokens")
	case l.Lookups < 1:
		return fmt.Errorf("lookups must be at least 1, got %d", l.Lookups)
	case l.Rate < 0:
		return fmt.Errorf("rate must not be negative, got %g", l.Rate)
	case l.Rate == 0 && (l.Concurrency < 1 || l.Concurrency > len(l.Tokens)):
		return fmt.Errorf("a closed loop needs 1 to %d clients (one per token), got %d", len(l.Tokens), l.Concurrency)
	}
	return nil
}

// run runs the lookups in this process.
func (l squadLoad) run(ctx context.Context) (squadResult, error) {
	if err := l.validate(); err != nil {
		return squadResult{}, err
	}
	tr := &http.Transport{MaxIdleConns: 2 * len(l.Tokens), MaxIdleConnsPerHost: 2 * len(l.Tokens)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, l.Lookups)
	var failed, inFlight, maxInFlight atomic.Int64
	var firstErr atomic.Value
	fail := func(msg string) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, msg)
	}
	lookup := func(i int, rng *rand.Rand, token string, due time.Time) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		u := l.Base + "/api/v1/vehicles/" + url.PathEscape(l.Plates[rng.IntN(len(l.Plates))])
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			fail(err.Error())
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			fail(err.Error())
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat[i] = time.Since(due)
		if resp.StatusCode != http.StatusOK {
			fail("HTTP " + resp.Status + " for " + u)
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	if l.Rate > 0 {
		rng := rand.New(rand.NewPCG(l.Seed, 0))
		due := began
		for i := range l.Lookups {
			due = due.Add(time.Duration(rng.ExpFloat64() / l.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
			if ctx.Err() != nil {
				break
			}
			lrng, at := rand.New(rand.NewPCG(l.Seed, uint64(i)+1)), due
			wg.Go(func() { lookup(i, lrng, l.Tokens[i%len(l.Tokens)], at) })
		}
	} else {
		var next atomic.Int64
		for c := range l.Concurrency {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(l.Seed, uint64(c)))
				for {
					i := int(next.Add(1) - 1)
					if i >= l.Lookups || ctx.Err() != nil {
						return
					}
					lookup(i, rng, l.Tokens[c], time.Now())
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return squadResult{}, err
	}
	elapsed := time.Since(began)
	slices.Sort(lat)
	res := squadResult{Lookups: l.Lookups, Failures: int(failed.Load()), MaxInFlight: int(maxInFlight.Load()),
		Rate:  float64(l.Lookups) / elapsed.Seconds(),
		P50Ms: ms(percentile(lat, 0.50)), P99Ms: ms(percentile(lat, 0.99)), MaxMs: ms(percentile(lat, 1))}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	return res, nil
}

// runChild runs the lookups in a child process started by cmd (`muckbench squads`): the load
// goes to its standard input, the result comes from its standard output; its standard error is
// passed on.
func (l squadLoad) runChild(ctx context.Context, cmd *exec.Cmd) (squadResult, error) {
	if err := l.validate(); err != nil {
		return squadResult{}, err
	}
	in, err := json.Marshal(l)
	if err != nil {
		return squadResult{}, fmt.Errorf("cannot encode the squads' load: %w", err)
	}
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout = bytes.NewReader(in), &out
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return squadResult{}, fmt.Errorf("cannot start the squads' process (%s): %w", cmd.Path, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-waited
		return squadResult{}, ctx.Err()
	}
	if err != nil {
		return squadResult{}, fmt.Errorf("the squads' process (pid %d) failed: %w", cmd.Process.Pid, err)
	}
	var res squadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return squadResult{}, fmt.Errorf("the squads' process (pid %d) printed no result: %w (%q)", cmd.Process.Pid, err, clip(out.String(), 200))
	}
	return res, nil
}

// Squads is `muckbench squads`: the bench's squad lookups in a process of their own. It
// reads a squadLoad as JSON from in and writes the squadResult as JSON to out.
func Squads(ctx context.Context, in io.Reader, out io.Writer) error {
	var l squadLoad
	if err := readLoad(in, &l, "base, plates, tokens, seed, lookups, rate, concurrency"); err != nil {
		return err
	}
	res, err := l.run(ctx)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(res); err != nil {
		return fmt.Errorf("cannot write the result: %w", err)
	}
	return nil
}

// runLookups runs the squads' lookups (squadLoad), in a child process (`muckbench squads`) unless
// o.SquadsInProcess, and puts what they measured in r.
func runLookups(ctx context.Context, o *Options, base string, plates, tokens []string, r *Report) error {
	if base == "" {
		return errors.New("the pipeline serves no API")
	}
	l := squadLoad{Base: base, Plates: plates, Tokens: tokens, Seed: o.Seed, Lookups: o.Lookups, Rate: o.LookupRate, Concurrency: o.Concurrency}
	var res squadResult
	var err error
	if o.SquadsInProcess {
		res, err = l.run(ctx)
	} else {
		var cmd *exec.Cmd
		if cmd, err = o.child("squads"); err == nil {
			res, err = l.runChild(ctx, cmd)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot run the squads' lookups: %w", err)
	}
	r.Lookups, r.Concurrency, r.LookupFailures = res.Lookups, o.Concurrency, res.Failures
	r.LookupTarget, r.LookupInFlight, r.LookupRate = o.LookupRate, res.MaxInFlight, res.Rate
	r.LookupP50Ms, r.LookupP99Ms, r.LookupMaxMs = res.P50Ms, res.P99Ms, res.MaxMs
	if res.FirstError != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d lookups failed, the first with: %s", r.LookupFailures, o.Lookups, res.FirstError))
	}
	return nil
}
