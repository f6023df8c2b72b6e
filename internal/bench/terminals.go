package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
)

// terminalsLoad is the bench's live traffic: its simulated fleet's terminals reporting through
// a gateway that produces into Kafka. The bench runs it in a child process (`muckbench
// terminals`, the load as JSON on its standard input, what happens as JSON lines on its standard
// output), as it runs the squads: a city's gateways are not in the pipeline's process, so
// simulating the fleet and encoding and producing its fixes are not the pipeline's CPU, garbage
// or memory.
type terminalsLoad struct {
	Broker     string        `json:"broker"`
	Topic      string        `json:"topic"`
	CityDir    string        `json:"city_dir"` // the city the fleet drives in, its vehicles in the order the bench drove them
	Seed       uint64        `json:"seed"`
	Partitions int           `json:"partitions"`
	DeviceT0   int64         `json:"device_t0_ms"` // the fleet's device-time origin (the backlog's start), Unix ms
	SimStart   int64         `json:"sim_start_ms"` // the first device time of the live traffic: after every fix before it
	Rate       float64       `json:"rate"`         // fixes/s
	Window     time.Duration `json:"window"`       // the measurement window from the start: probes are sent in it
}

// terminalsEvent is one line the terminals' process writes: exactly one field is set.
type terminalsEvent struct {
	Started  *terminalsStarted `json:"started,omitempty"`
	Probe    *terminalsProbe   `json:"probe,omitempty"`
	InWindow *int64            `json:"in_window,omitempty"` // fixes produced in the window, once it is over
	Sent     *int64            `json:"sent,omitempty"`      // fixes produced in all, once stopped
}

// terminalsStarted: the traffic started at wall time WallStart with device time SimStart; a
// fix of device time t was produced at about WallStart + (t - SimStart).
type terminalsStarted struct {
	WallStartNs int64 `json:"wall_start_ns"`
	SimStartMs  int64 `json:"sim_start_ms"`
}

type terminalsProbe struct {
	Vehicle    string `json:"vehicle"`
	FixID      string `json:"fix_id"`
	ProducedNs int64  `json:"produced_ns"`
}

func (l terminalsLoad) validate() error {
	switch {
	case l.Broker == "" || l.Topic == "" || l.CityDir == "":
		return errors.New("broker, topic and city_dir are required")
	case l.Partitions < 1:
		return fmt.Errorf("partitions must be at least 1, got %d", l.Partitions)
	case !(l.Rate > 0):
		return fmt.Errorf("rate must be positive, got %g", l.Rate)
	case l.Window <= 0:
		return fmt.Errorf("window must be positive, got %s", l.Window)
	case l.SimStart <= l.DeviceT0:
		return fmt.Errorf("sim_start_ms %d is not after device_t0_ms %d", l.SimStart, l.DeviceT0)
	}
	return nil
}

// Terminals is `muckbench terminals`: it reads a terminalsLoad (JSON) from in, produces the
// traffic until in reaches its end (the bench closes it to stop the traffic) or ctx is done, and
// writes terminalsEvents to out, one JSON line each: started, the probes as they are sent,
// in_window once the window is over, sent at the end.
func Terminals(ctx context.Context, in io.Reader, out io.Writer) error {
	var l terminalsLoad
	if err := readLoad(in, &l, "broker, topic, city_dir, seed, partitions, device_t0_ms, sim_start_ms, rate, window"); err != nil {
		return err
	}
	if err := l.validate(); err != nil {
		return err
	}
	c, err := city.Load(l.CityDir)
	if err != nil {
		return err
	}
	f, err := newFleet(c, l.Seed)
	if err != nil {
		return err
	}
	f.SetOrigin(time.UnixMilli(l.DeviceT0))
	f.ResumeAt(l.SimStart)
	// The live violators start speeding at a moment in the window that leaves them time for the
	// fast fixes the rule wants before it opens an alert (about 10 s of them, so that a pair of
	// noisy fixes opens none): the fleet reports every vehicles/rate seconds.
	every := time.Duration(float64(f.Len()) / l.Rate * float64(time.Second))
	f.SpeedLater(l.SimStart, max(0, l.Window-3*every-speedingConfirm))

	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	var mu sync.Mutex
	var writeErr error
	emit := func(ev terminalsEvent) {
		mu.Lock()
		defer mu.Unlock()
		if writeErr == nil {
			if writeErr = enc.Encode(ev); writeErr == nil {
				writeErr = bw.Flush()
			}
		}
	}
	stop := make(chan struct{})
	go func() { // the end of the input stops the traffic
		_, _ = io.Copy(io.Discard, in)
		close(stop)
	}()
	w, conns := newProducer(l.Broker, l.Topic)
	defer conns.CloseIdleConnections()
	probes := make(chan probe, 1024)
	wallStart := time.Now()
	p := &liveProducer{f: f, parts: partitionsOf(f, l.Partitions), w: w, rate: l.Rate, wallStart: wallStart, simStart: l.SimStart,
		probeUntil: wallStart.Add(l.Window), probes: probes, stop: stop}
	emit(terminalsEvent{Started: &terminalsStarted{WallStartNs: wallStart.UnixNano(), SimStartMs: l.SimStart}})
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		for pr := range probes {
			emit(terminalsEvent{Probe: &terminalsProbe{Vehicle: pr.vehicle, FixID: pr.fixID, ProducedNs: pr.produced.UnixNano()}})
		}
	}()
	// The window's count, once no fix can join it: the producer counts a write in the window
	// when it starts before the window's end.
	windowOver := time.AfterFunc(time.Until(p.probeUntil)+2*produceEvery, func() {
		n := p.inWindow.Load()
		emit(terminalsEvent{InWindow: &n})
	})
	defer windowOver.Stop()
	err = p.run(ctx) // closes probes
	<-relayed
	sent := p.sent.Load()
	emit(terminalsEvent{Sent: &sent})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if writeErr != nil {
		return fmt.Errorf("cannot write to standard output: %w", writeErr)
	}
	return nil
}

// terminals is the bench's handle on a running terminals' process.
type terminals struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	started  terminalsStarted
	probes   chan probe    // closed when the process's output ends
	inWindow chan int64    // the window's count, once
	read     chan struct{} // closed when the process's output is read to its end
	sent     int64
	readErr  error
	stopOnce sync.Once
	stopErr  error
}

// startTerminals starts the traffic in a child process started by cmd and returns once it has
// started producing.
func startTerminals(ctx context.Context, cmd *exec.Cmd, l terminalsLoad) (*terminals, error) {
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("cannot start the live traffic: %w", err)
	}
	in, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the terminals' load: %w", err)
	}
	t := &terminals{cmd: cmd, probes: make(chan probe, 1024), inWindow: make(chan int64, 1), read: make(chan struct{})}
	if t.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("cannot start the terminals' process: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the terminals' process: %w", err)
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the terminals' process (%s): %w", cmd.Path, err)
	}
	started := make(chan terminalsStarted, 1)
	go t.readEvents(out, started)
	if _, err := t.stdin.Write(append(in, '\n')); err != nil {
		t.abort()
		return nil, fmt.Errorf("cannot give the terminals' process its load: %w", err)
	}
	select {
	case s := <-started:
		t.started = s
		return t, nil
	case <-t.read:
		err := t.stop()
		return nil, fmt.Errorf("the terminals' process ended before it started producing: %w", errors.Join(t.readErr, err))
	case <-time.After(2 * time.Minute):
		t.abort()
		return nil, errors.New("the terminals' process did not start producing within 2 minutes")
	case <-ctx.Done():
		t.abort()
		return nil, ctx.Err()
	}
}

// readEvents reads the process's events until its output ends.
func (t *terminals) readEvents(out io.Reader, started chan<- terminalsStarted) {
	defer close(t.read)
	defer close(t.probes)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev terminalsEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.readErr = fmt.Errorf("the terminals' process wrote %q: %w", clip(sc.Text(), 200), err)
			_, _ = io.Copy(io.Discard, out)
			return
		}
		switch {
		case ev.Started != nil:
			started <- *ev.Started
		case ev.Probe != nil:
			t.probes <- probe{vehicle: ev.Probe.Vehicle, fixID: ev.Probe.FixID, produced: time.Unix(0, ev.Probe.ProducedNs)}
		case ev.InWindow != nil:
			t.inWindow <- *ev.InWindow
		case ev.Sent != nil:
			t.sent = *ev.Sent
		}
	}
	t.readErr = sc.Err()
}

// wallOf returns when a fix of device time ms was produced.
func (t *terminals) wallOf(ms int64) time.Time {
	return time.Unix(0, t.started.WallStartNs).Add(time.Duration(ms-t.started.SimStartMs) * time.Millisecond)
}

// stop ends the traffic (the end of the process's input) and waits for the process, which
// reports how many fixes it produced in all (t.sent); calls after the first return its result.
func (t *terminals) stop() error {
	t.stopOnce.Do(func() {
		_ = t.stdin.Close()
		<-t.read // the probes must be drained by their reader meanwhile
		if err := t.cmd.Wait(); err != nil {
			t.stopErr = fmt.Errorf("the terminals' process (pid %d) failed: %w", t.cmd.Process.Pid, err)
			return
		}
		t.stopErr = t.readErr
	})
	return t.stopErr
}

// abort kills the process and waits for it.
func (t *terminals) abort() {
	_ = t.cmd.Process.Kill()
	_ = t.stop()
}

// liveProducer produces the fleet's fixes at a steady rate, in device time continuing the backlog.
type liveProducer struct {
	f          *sim.Fleet
	parts      []int32 // each vehicle's partition
	w          *sink.PartitionProducer
	rate       float64
	wallStart  time.Time
	simStart   int64 // Unix ms of device time at wallStart
	probeUntil time.Time
	probes     chan<- probe
	stop       <-chan struct{}
	sent       atomic.Int64
	inWindow   atomic.Int64
}

// wallOf returns when a fix with device time ms was produced.
func (p *liveProducer) wallOf(ms int64) time.Time {
	return p.wallStart.Add(time.Duration(ms-p.simStart) * time.Millisecond)
}

func (p *liveProducer) run(ctx context.Context) error {
	defer close(p.probes)
	tick := time.NewTicker(produceEvery)
	defer tick.Stop()
	var m traffic
	cursor, v := 0, p.f.Len()
	nextProbe := p.wallStart
	maxChunk := max(1, int(p.rate/10)) // a tenth of a second's worth at most per write
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stop:
			return nil
		case <-tick.C:
		}
		now := time.Now()
		due := min(int(p.rate*now.Sub(p.wallStart).Seconds())-int(p.sent.Load()), maxChunk)
		if due <= 0 {
			continue
		}
		simNow := p.simStart + now.Sub(p.wallStart).Milliseconds()
		m.reset()
		pr := probe{}
		for range due {
			i := cursor
			cursor = (cursor + 1) % v
			t := p.f.Next(i, simNow)
			m.add(p.f, i, t, p.parts[i])
			if pr.vehicle == "" && now.Before(p.probeUntil) && !now.Before(nextProbe) {
				plate := p.f.Plates()[i]
				pr = probe{vehicle: plate, fixID: plate + "@" + strconv.FormatInt(t, 10)}
				nextProbe = nextProbe.Add(probeEvery)
			}
		}
		sentAt := time.Now()
		if err := m.produce(ctx, p.w); err != nil {
			return fmt.Errorf("cannot produce live traffic: %w", err)
		}
		p.sent.Add(int64(due))
		if now.Before(p.probeUntil) {
			p.inWindow.Add(int64(due))
		}
		if pr.vehicle != "" {
			pr.produced = sentAt
			select {
			case p.probes <- pr:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
