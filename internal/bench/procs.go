package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// CPU is the CPU the processes used during a phase, in cores (CPU seconds per second).
type CPU struct {
	Pipeline   float64 `json:"pipeline_process"` // this process: the pipeline, and the bench's producer and probes
	Broker     float64 `json:"broker,omitempty"`
	ClickHouse float64 `json:"clickhouse,omitempty"`
	// Others is what the rest of the machine used meanwhile (/proc/stat): another load on the
	// machine perturbs every figure.
	Others float64 `json:"others"`
	// PipelineQueued is how long this process's threads waited, runnable, for a CPU, per second
	// of the phase (the kernel's run delay, /proc/self/task/*/schedstat): the other processes
	// and its own threads keeping the cores from it. Go's own queueing for a P is not in it.
	PipelineQueued float64 `json:"pipeline_run_queue"`
}

// Busy is the cores every process together used.
func (c CPU) Busy() float64 { return c.Pipeline + c.Broker + c.ClickHouse + c.Others }

func (c CPU) String() string {
	s := fmt.Sprintf("this process %.2f", c.Pipeline)
	if c.Broker > 0 {
		s += fmt.Sprintf(", broker %.2f", c.Broker)
	}
	if c.ClickHouse > 0 {
		s += fmt.Sprintf(", ClickHouse %.2f", c.ClickHouse)
	}
	s += fmt.Sprintf(", other processes %.2f", c.Others)
	if c.PipelineQueued > 0 {
		s += fmt.Sprintf(" (this process's threads waited for a core %.2f s a second)", c.PipelineQueued)
	}
	return s
}

// procSet is the processes whose CPU and memory the bench reads from /proc; an empty pid is
// not read.
type procSet struct{ broker, clickhouse string }

type cpuMark struct {
	at                              time.Time
	self, broker, clickhse, machine float64
	selfQueued                      float64 // seconds its threads waited for a CPU (runDelay)
}

func (p procSet) mark() cpuMark {
	m := cpuMark{at: time.Now()}
	m.machine, _ = machineCPU()
	m.self, _ = procCPU("self")
	m.selfQueued, _ = runDelay("self")
	if p.broker != "" {
		m.broker, _ = procCPU(p.broker)
	}
	if p.clickhouse != "" {
		m.clickhse, _ = procCPU(p.clickhouse)
	}
	return m
}

// since returns the cores each process used since m.
func (p procSet) since(m cpuMark) CPU {
	n := p.mark()
	secs := n.at.Sub(m.at).Seconds()
	c := CPU{Pipeline: (n.self - m.self) / secs, Broker: (n.broker - m.broker) / secs, ClickHouse: (n.clickhse - m.clickhse) / secs,
		PipelineQueued: max(0, n.selfQueued-m.selfQueued) / secs}
	if n.machine > 0 && m.machine > 0 {
		c.Others = max(0, (n.machine-m.machine)/secs-c.Pipeline-c.Broker-c.ClickHouse)
	}
	return c
}

// machineCPU returns the CPU seconds the whole machine has been busy (not idle nor waiting for
// I/O), from /proc/stat.
func machineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read the machine's CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, fmt.Errorf("cannot read the machine's CPU time: %q", line)
	}
	var busy uint64
	for k, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot read the machine's CPU time: %q", line)
		}
		if k != 3 && k != 4 && k < 8 { // idle and iowait are not busy; guest time is in user already
			busy += v
		}
	}
	return float64(busy) / 100, nil
}

// procCPU returns the CPU seconds (user and system) process pid has used, from /proc/PID/stat
// (in clock ticks of 1/100 s, USER_HZ on Linux).
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %w", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %q", pid, s)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %q", pid, s)
	}
	return float64(utime+stime) / 100, nil
}

// runDelay returns how long, in seconds, the threads of process pid have waited, runnable, on
// a run queue for a CPU, summed over the threads it has now (/proc/PID/task/TID/schedstat: time
// on the CPU, time waiting, slices, in nanoseconds). A thread that ended meanwhile is not
// counted; the Go runtime keeps its threads.
func runDelay(pid string) (float64, error) { return runDelayIn("/proc/"+pid+"/task", pid) }

// runDelayIn is runDelay over the threads' folders in dir.
func runDelayIn(dir, pid string) (float64, error) {
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("cannot list the threads of process %s: %w", pid, err)
	}
	var waited uint64
	read := 0
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		fields := strings.Fields(string(b))
		if len(fields) < 3 {
			return 0, fmt.Errorf("cannot read the run delay of thread %s of process %s: %q", t.Name(), pid, b)
		}
		v, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot read the run delay of thread %s of process %s: %q", t.Name(), pid, b)
		}
		waited += v
		read++
	}
	if read == 0 {
		return 0, fmt.Errorf("cannot read the run delay of any thread of process %s (no schedstat in %s)", pid, dir)
	}
	return float64(waited) / 1e9, nil
}

// writeHeapProfile writes a heap profile to path after a collection (a heap profile is as of the
// last one). Its allocation counts are since the process started, so two of them, one the
// other's base, give what was allocated in between (--live-memprofile); the collection counts in
// the bench's report include these collections.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create the heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write the heap profile: %w", err)
	}
	return nil
}

// procMemory returns the peak and current resident set size of process pid ("self" for this one).
func procMemory(pid string) (peak, rss uint64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the memory of process %s: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cannot read %s of process %s: %q", k, pid, line)
		}
		if k == "VmHWM" {
			peak = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("process %s reports no VmHWM", pid)
	}
	return peak, rss, nil
}

// resetPeakRSS resets this process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0).
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("cannot reset the peak RSS: %w", err)
	}
	return nil
}

// readMemory puts the peak and current RSS of this process, the broker's and ClickHouse's in r.
func readMemory(ps procSet, r *Report) {
	if hwm, rss, err := procMemory("self"); err == nil {
		r.PeakRSS, r.RSS = hwm, rss
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("cannot read this process's RSS: %v", err))
	}
	if ps.broker != "" {
		if hwm, _, err := procMemory(ps.broker); err == nil {
			r.BrokerPeakRSS = hwm
		}
	}
	if ps.clickhouse != "" {
		if hwm, rss, err := procMemory(ps.clickhouse); err == nil {
			r.ClickHousePeak, r.ClickHouseRSS = hwm, rss
		}
	}
}
