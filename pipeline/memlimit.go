package pipeline

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// RuntimeConfig configures the Go runtime the pipeline runs in.
type RuntimeConfig struct {
	// MemoryLimitMiB is the soft memory limit of the process (runtime/debug.SetMemoryLimit), in
	// MiB: the collector runs as the process nears it, not each time the heap has doubled since
	// the last collection (GOGC is off under a limit, unless the GOGC environment variable is
	// set: while the trucks' state grows from nothing, doubling ran the collector twelve times
	// over the bench's backlog instead of three, each marking all the state). Default 440:
	// 100,000 trucks peak at ~270-320 MB of live heap, and without a limit at ~700 MB of RSS; the
	// heap nearing the limit overshoots it (481-483 MB of RSS at 440, 494-499 at 450, in the
	// bench's hardest case, against its 500 MB target). A fleet much larger needs it raised
	// (about 3 KiB a truck plus 150 MiB); set below the live heap, the collector takes up to half
	// the CPU and the process still grows past it. -1: no limit (the collector's GOGC pacing
	// alone). The GOMEMLIMIT environment variable, when set, is used instead.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
}

// defaultMemoryLimitMiB: see RuntimeConfig.MemoryLimitMiB.
const defaultMemoryLimitMiB = 440

func (c RuntimeConfig) withDefaults() RuntimeConfig {
	if c.MemoryLimitMiB == 0 {
		c.MemoryLimitMiB = defaultMemoryLimitMiB
	}
	return c
}

func (c RuntimeConfig) validate() error {
	if c.MemoryLimitMiB < -1 {
		return fmt.Errorf("runtime.memory_limit_mib must be a size in MiB, or -1 for none, got %d", c.MemoryLimitMiB)
	}
	return nil
}

// ApplyMemoryLimit sets the process's soft memory limit from c, unless the environment's
// GOMEMLIMIT set one, and returns a function that puts back the limit before. The limit is the
// process's: a command that runs the pipeline calls it once, before Run.
func (c RuntimeConfig) ApplyMemoryLimit(log *slog.Logger) (undo func()) {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Info("memory limit from the environment", "GOMEMLIMIT", env)
		return func() {}
	}
	limit, percent := int64(math.MaxInt64), gcPercent()
	before := percent
	if c = c.withDefaults(); c.MemoryLimitMiB > 0 {
		limit = int64(c.MemoryLimitMiB) << 20
		if os.Getenv("GOGC") == "" {
			percent = -1
		}
		log.Info("memory limit", "mib", c.MemoryLimitMiB, "gogc", percent)
	}
	limitBefore := debug.SetMemoryLimit(limit)
	debug.SetGCPercent(percent)
	return func() {
		debug.SetGCPercent(before)
		debug.SetMemoryLimit(limitBefore)
	}
}

// gcPercent is the process's GOGC (-1: off).
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100 // the runtime's default; the metric has been there since Go 1.21
	}
	if v := s[0].Value.Uint64(); v <= math.MaxInt32 {
		return int(v)
	}
	return -1
}
