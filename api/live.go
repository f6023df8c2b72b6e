package api

import (
	"sync/atomic"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// Live is the API's in-memory view of what is going on: every vehicle's last position
// (positions.go), the officers' positions (officers.go), the open alerts with their handling and
// each vehicle's violations of the last 30 days (alerts.go), and the alert feed with its
// subscribers (feed.go). Each of the four has a lock of its own; the alerts' is taken before the
// officers' (to plan a dispatch) and the feed's (to publish a change), never the other way round,
// so that feed items are published in the order the alerts changed. The pipeline feeds it
// (Observe) after each batch is durably written; on start it is filled from ClickHouse (Restore).
// It is safe for concurrent use.
type Live struct {
	cfg Config
	now func() time.Time
	// latestMs is the newest device time observed: "now" in event time (see eventNowMs).
	latestMs atomic.Int64

	positions vehiclePositions
	officers  officerPositions
	alerts    alertBook
	feed      feed
	risks     riskBook // a shared view's risk scores (shared.go)
	duty      Duty     // a shared view's share of the overdue checks (duty.go); nil: all
}

// NewLive returns an empty view.
func NewLive(cfg Config) *Live {
	return &Live{
		cfg: cfg, now: time.Now,
		positions: newVehiclePositions(), officers: newOfficerPositions(), alerts: newAlertBook(),
		feed: newFeed(cfg.FeedBuffer, uint64(time.Now().UnixMicro())),
	}
}

// Observe takes in a batch that has been durably written: positions, officers and alert changes.
// It copies what it keeps; the batch may be reused afterwards.
func (l *Live) Observe(fixes []record.Fix, officers []record.OfficerPosition, changes []detectors.Change) {
	if len(fixes) > 0 {
		l.observedAt(l.positions.observe(fixes))
	}
	if len(officers) > 0 {
		l.observedAt(l.officers.observe(officers))
	}
	if len(changes) == 0 {
		return
	}
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	for _, c := range changes {
		l.applyChange(c)
	}
}

// observedAt raises the newest device time observed to ms.
func (l *Live) observedAt(ms int64) {
	for {
		cur := l.latestMs.Load()
		if ms <= cur || l.latestMs.CompareAndSwap(cur, ms) {
			return
		}
	}
}

// eventNowMs is "now" on the devices' clock: the wall clock, or the newest device time observed
// when that is earlier (a backlog or a replay being worked off).
func (l *Live) eventNowMs() int64 {
	now := l.now().UnixMilli()
	if latest := l.latestMs.Load(); latest > 0 && latest < now {
		return latest
	}
	return now
}
