package api

import (
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// TestViolationViewEncoding pins the analysts' JSON and CSV of a violation: defused CSV text,
// null or empty for a missing end and for numbers that are not finite, times in the city's zone.
func TestViolationViewEncoding(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	alerts := []detectors.Alert{
		{ID: "=a<b>&", Rule: "speeding", Severity: "severe", Status: "open", VehicleID: "+粤B1", Company: "A&B \u2028 \"q\"", PermitID: "-p",
			Place: "@x", District: "\td", Start: time.UnixMilli(1795420800123), Lat: math.NaN(), Lon: math.Inf(1), Value: 1e-7, Limit: 1e21,
			Evidence: "bad \xff utf8 <b>"},
		{ID: "b", Rule: "dwell", Start: time.UnixMilli(1795420800000), End: time.UnixMilli(1795420801500), Lat: 22.5, Lon: 114, Value: 62.5,
			Limit: 40, Evidence: "ok"},
	}
	views := []ViolationView{violationView(&alerts[0], loc), violationView(&alerts[1], loc)}
	rec := httptest.NewRecorder()
	writeBody(rec, "application/json", ViolationsAnswer{Violations: views})
	if got, want := rec.Body.String(), `{"from":"","to":"","total":0,"offset":0,"violations":[{"alert_id":"=a<b>&","rule":"speeding","severity":"severe","status":"open","vehicle_id":"+粤B1","company":"A&B \u2028 \"q\"","permit_id":"-p","place":"@x","district":"\td","start":"2026-11-23T16:00:00.123+08:00","end":null,"lat":null,"lon":null,"value":1e-7,"limit":1e+21,"evidence":"bad \ufffd utf8 <b>"},{"alert_id":"b","rule":"dwell","severity":"","status":"","vehicle_id":"","company":"","permit_id":"","place":"","district":"","start":"2026-11-23T16:00:00+08:00","end":"2026-11-23T16:00:01.500+08:00","lat":22.5,"lon":114,"value":62.5,"limit":40,"evidence":"ok"}],"next":""}`+"\n"; got != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	rec = httptest.NewRecorder()
	writeCSV(rec, "violations.csv", [][]string{violationCSVHeader, views[0].csvRecord(), views[1].csvRecord()})
	if got, want := rec.Body.String(), "\ufeffalert_id,rule,severity,status,vehicle_id,company,permit_id,place,district,start,end,lat,lon,value,limit,evidence\n'=a<b>&,speeding,severe,open,'+粤B1,\"A&B   \"\"q\"\"\",'-p,'@x,'\td,2026-11-23T16:00:00.123+08:00,,,,0.0000001,1000000000000000000000,bad \xff utf8 <b>\nb,dwell,,,,,,,,2026-11-23T16:00:00+08:00,2026-11-23T16:00:01.500+08:00,22.5,114,62.5,40,ok\n"; got != want {
		t.Errorf("CSV\n got %q\nwant %q", got, want)
	}
	rec = httptest.NewRecorder()
	writeBody(rec, "application/geo+json", AlertProperties{views[1]})
	if got, want := rec.Body.String(), `{"kind":"alert","alert_id":"b","rule":"dwell","severity":"","status":"","start":"2026-11-23T16:00:00+08:00","end":"2026-11-23T16:00:01.500+08:00","evidence":"ok"}`+"\n"; got != want {
		t.Errorf("alert properties\n got %s\nwant %s", got, want)
	}
}
