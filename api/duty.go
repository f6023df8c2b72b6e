package api

// Duty shares among the instances of a shared view (Config.View "shared") the work that must be
// done once however many instances serve the API: checking an alert for overdue, taking its
// escalation steps (each a re-notification on the feed, on the alerts topic and to webhooks) and
// sending the daily digest. Every instance sees every alert; only the one whose duty covers an
// alert's vehicle checks it, and the others take its overdue and renotified changes from the
// alerts topic (ApplyAnnounced). An instance whose duty is in flux (joining, or its group
// rebalancing) covers nothing for that moment: a step falls due a little late, never twice.
//
// Without a Duty (a local view) an instance does all of it for the alerts it sees.
type Duty interface {
	// Watches reports whether this instance checks the alerts of a vehicle.
	Watches(vehicleID string) bool
	// SendsDigest reports whether this instance sends the daily digest.
	SendsDigest() bool
}

// SetDuty gives the view its share of the overdue checks and escalation (nil: all). Call it
// before the server starts.
func (l *Live) SetDuty(d Duty) { l.duty = d }

// watches reports whether this instance checks v for overdue and escalation.
func (l *Live) watches(v *AlertView) bool { return l.duty == nil || l.duty.Watches(v.VehicleID) }

// sendsDigest reports whether this instance sends the scheduled digest.
func (l *Live) sendsDigest() bool { return l.duty == nil || l.duty.SendsDigest() }

// shared reports whether the view is shared by several instances (it has a Duty).
func (l *Live) shared() bool { return l.duty != nil }
