package api

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The audit's insert is sent again with its columns emptied, after a flush of at most
// auditKeptRows records, and every record is stored as it was queued; a flush's queue serves as
// the queue of the flush after next.
func TestAuditJournalKeepsItsInsert(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	store := NewStore(e.conn, e.db, histLogger())
	at := time.Date(2026, 12, 7, 21, 30, 0, 123_000_000, time.UTC)
	queued := 0
	flush := func(what string, n, kept int) {
		t.Helper()
		for range n {
			queued++
			store.Audit(AuditRecord{At: at.Add(time.Duration(queued) * time.Millisecond), Actor: fmt.Sprintf("squad-%d", queued), Role: string(RoleSquad),
				Method: "GET", Path: "/api/v1/vehicles/粤B00001", Plate: "粤B00001", Status: 200 + queued%2, Remote: "10.0.0.7"})
		}
		if err := store.FlushAudit(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := store.AuditQueued(); n != 0 {
			t.Fatalf("%s: %d records still queued after a flush", what, n)
		}
		checkKept(t, what, store.auditLog.ins.KeptRows(), auditColumnNames, n, kept)
	}
	flush("first flush", 5, 5)
	flush("second flush", 3, 3)
	// the two queues take turns: the first flush's is the queue now, the second's the spare
	if cap(store.audit) < 5 || cap(store.auditSpare) < 3 {
		t.Errorf("after two flushes the queue has room for %d records and the spare for %d, want the first flush's 5 and the second's 3",
			cap(store.audit), cap(store.auditSpare))
	}
	flush("a flush larger than kept", auditKeptRows+1, 0)
	flush("a flush after it", 2, 2)

	var rows uint64
	if err := e.conn.QueryRow(ctx, "SELECT count() FROM "+e.db+".api_audit").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if int(rows) != queued {
		t.Fatalf("the audit holds %d rows, want the %d queued", rows, queued)
	}
	var (
		when                                     time.Time
		ms                                       int64
		actor, role, method, path, plate, remote string
		status                                   uint16
	)
	row := e.conn.QueryRow(ctx, "SELECT at, at_ms, actor, role, method, path, plate, status, remote FROM "+e.db+".api_audit WHERE actor = 'squad-7'")
	if err := row.Scan(&when, &ms, &actor, &role, &method, &path, &plate, &status, &remote); err != nil {
		t.Fatal(err)
	}
	want := at.Add(7 * time.Millisecond)
	if !when.Equal(want.Truncate(time.Second)) || ms != want.UnixMilli() || role != string(RoleSquad) || method != "GET" ||
		path != "/api/v1/vehicles/粤B00001" || plate != "粤B00001" || status != 201 || remote != "10.0.0.7" {
		t.Errorf("record 7 reads back as %s %d %s %s %s %s %s %d %s", when, ms, actor, role, method, path, plate, status, remote)
	}
}
