// Command perfserve serves the console over an API whose live view holds a synthetic fleet of
// -trucks trucks that all report every -every, for measuring the command centre in a browser
// (console/e2e/perf.mjs, run by `make console-perf`). No broker, no ClickHouse: only the live
// view the command centre reads is exercised. It prints the URL and a supervisor token, then
// serves until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/console"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

type fixedCity struct{ c *city.City }

func (f fixedCity) City() *city.City { return f.c }

type noRisk struct{}

func (noRisk) Risk(string) (detectors.Risk, bool) { return detectors.Risk{}, false }

func main() {
	trucks := flag.Int("trucks", 15000, "trucks in the synthetic fleet")
	every := flag.Duration("every", 10*time.Second, "how often every truck reports")
	cityDir := flag.String("city", "configs/cities/shenzhen", "city folder")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	flag.Parse()
	if err := run(*trucks, *every, *cityDir, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "perfserve:", err)
		os.Exit(1)
	}
}

func run(trucks int, every time.Duration, cityDir, listen string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := city.Load(cityDir)
	if err != nil {
		return err
	}
	token, entry, err := api.NewToken(api.RoleSupervisor, "perf")
	if err != nil {
		return err
	}
	cfg := api.Config{}.WithDefaults()
	if err := os.Setenv(cfg.TokensEnv, entry); err != nil {
		return err
	}
	cfg.RatePerSecond, cfg.Burst = 1000, 1000
	live := api.NewLive(cfg)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := api.NewServer(cfg, live, nil, fixedCity{c}, noRisk{}, nil, log, nil)
	if err != nil {
		return err
	}
	srv.SetConsole(console.Handler())
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("url=http://%s\ntoken=%s\n", ln.Addr(), token)

	// Trucks drive straight lines about the city's origin at 20–60 km/h; every 30th has an open
	// alert, one in three of those severe.
	rng := rand.New(rand.NewPCG(1, 2))
	type truck struct{ lat, lon, dLat, dLon, kmh float64 }
	fleet := make([]truck, trucks)
	o := c.Origin
	for i := range fleet {
		heading, kmh := rng.Float64()*2*math.Pi, 20+rng.Float64()*40
		step := kmh / 3.6 * every.Seconds() / 111_000
		fleet[i] = truck{lat: o[1] + (rng.Float64()-0.5)*0.4, lon: o[0] + (rng.Float64()-0.5)*0.6,
			dLat: step * math.Cos(heading), dLon: step * math.Sin(heading), kmh: kmh}
	}
	fixes := make([]record.Fix, trucks)
	var changes []detectors.Change
	now := time.Now()
	for i := 0; i < trucks; i += 30 {
		sev := detectors.SeverityWarning
		if i%90 == 0 {
			sev = detectors.SeveritySevere
		}
		plate := fmt.Sprintf("粤B%05d", i)
		changes = append(changes, detectors.Change{Kind: detectors.ChangeOpened, Alert: detectors.Alert{
			ID: fmt.Sprintf("perf-%d", i), Rule: detectors.RuleSpeeding, Severity: sev, Status: detectors.StatusOpen,
			VehicleID: plate, Start: now, Updated: now, Lat: fleet[i].lat, Lon: fleet[i].lon, Value: 70, Limit: 40, Version: 1,
			Evidence: "synthetic alert for the console's measurement"}})
	}
	report := func(at time.Time) {
		for i := range fleet {
			tr := &fleet[i]
			tr.lat += tr.dLat
			tr.lon += tr.dLon
			fixes[i] = record.Fix{VehicleID: fmt.Sprintf("粤B%05d", i), Time: at, Lat: tr.lat, Lon: tr.lon, SpeedKmh: float32(tr.kmh)}
		}
		live.Observe(fixes, nil, changes)
		changes = nil
	}
	report(time.Now())
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				report(at)
			}
		}
	}()
	return srv.Serve(ctx, ln)
}
