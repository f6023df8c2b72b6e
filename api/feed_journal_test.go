package api

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestFeedJournalKeepsItsInsert: the journal's writes read back whole and in order, each one sent
// with the batch of the last (its columns emptied: nothing of the last write goes with it), and a
// write larger than journalKeptRows does not leave its batch kept.
func TestFeedJournalKeepsItsInsert(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	store := NewStore(e.conn, e.db, histLogger())
	cases := feedItemCases()
	seq := uint64(0)
	items := func(n int) []FeedItem {
		out := make([]FeedItem, n)
		for i := range out {
			seq++
			out[i] = cases[i%len(cases)]
			out[i].Seq, out[i].Change = seq, "updated"
			out[i].Alert.ID = fmt.Sprintf("a%d", seq)
		}
		return out
	}
	var written []FeedItem
	write := func(what string, n, kept int) {
		t.Helper()
		it := items(n)
		if err := store.WriteFeed(ctx, it); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		written = append(written, it...)
		checkKept(t, what, store.journal.ins.KeptRows(), journalColumnNames, n, kept)
	}
	write("first write", 5, 5)
	write("second write", 3, 3)
	write("a write larger than kept", journalKeptRows+1, 0)
	write("a write after it", 2, 2)

	got, err := store.FeedSince(ctx, 0, len(written)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(written) {
		t.Fatalf("the journal reads back %d items, want %d", len(got), len(written))
	}
	for i := range got {
		var want FeedItem // as written, invalid UTF-8 read back as U+FFFD
		if err := json.Unmarshal(encodeItem(written[i]), &want); err != nil {
			t.Fatal(err)
		}
		if a, b := string(encodeItem(got[i])), string(encodeItem(want)); a != b {
			t.Fatalf("item %d reads back as\n%s\nwant\n%s", i, a, b)
		}
	}
	var rule, vehicle string
	var at time.Time
	row := e.conn.QueryRow(ctx, "SELECT rule, vehicle_id, written_at FROM "+e.db+".alert_feed WHERE seq = 2")
	if err := row.Scan(&rule, &vehicle, &at); err != nil {
		t.Fatal(err)
	}
	if want := written[1].Alert; rule != string(want.Rule) || vehicle != want.VehicleID || time.Since(at) > time.Minute {
		t.Errorf("row 2 holds rule %q, vehicle %q, written at %s; want %q, %q, now", rule, vehicle, at, want.Rule, want.VehicleID)
	}
}

// checkKept fails unless batches (chinsert.Insert.KeptRows) is one batch of kept rows in each of
// the columns names after a write of n rows, or none when kept is 0.
func checkKept(t *testing.T, what string, batches [][]int, names []string, n, kept int) {
	t.Helper()
	if kept == 0 {
		if len(batches) != 0 {
			t.Fatalf("%s: %d batches kept after a write of %d rows, want none", what, len(batches), n)
		}
		return
	}
	if len(batches) != 1 {
		t.Fatalf("%s: %d batches kept, want 1", what, len(batches))
	}
	for i, rows := range batches[0] {
		if rows != kept {
			t.Fatalf("%s: the kept batch's column %s holds %d rows, want the last write's %d", what, names[i], rows, kept)
		}
	}
}
