package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/configs"
	"github.com/muckwatch/muckwatch/detectors"
)

// LoadCity loads the city folder at path; the default path falls back to the sample city embedded
// in the binary when the folder is not there (a binary run outside the checkout).
func LoadCity(path string) (*city.City, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && filepath.Clean(path) == filepath.Join("configs", configs.SampleCity) {
		sub, err := fs.Sub(configs.FS, configs.SampleCity)
		if err != nil {
			return nil, fmt.Errorf("cannot open the embedded sample city: %w", err)
		}
		return city.LoadFS(sub, "(embedded) "+path)
	}
	return city.Load(path)
}

// watchCity reloads the city folder when its files change. A folder that fails to load is
// reported and the reference data in force stays.
func watchCity(ctx context.Context, dir, last string, every time.Duration, engine *detectors.Engine, log *slog.Logger, reloads *prometheus.CounterVec) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp := folderStamp(dir)
		if stamp == last {
			continue
		}
		last = stamp
		c, err := city.Load(dir)
		if err != nil {
			log.Error("cannot reload the city; the previous reference data stays in force", "dir", dir, "err", err)
			reloads.WithLabelValues("failed").Inc()
			continue
		}
		engine.SetCity(c)
		reloads.WithLabelValues("ok").Inc()
		log.Info("city reloaded", "dir", dir, "routes", len(c.Routes), "zones", len(c.Zones), "permits", len(c.Permits))
	}
}

// folderStamp summarises the names, sizes and modification times of a folder's files.
func folderStamp(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var s []byte
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		s = fmt.Appendf(s, "%s:%d:%d;", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return string(s)
}
