// Package tables describes muckwatch's ClickHouse tables: each table's name and its columns'
// names and types, in the order of the DDL. It is the one place that names a column: the writer
// (sink) builds its INSERT column lists from it and the readers (api, sim) their SELECT lists, and
// a test in sink checks it against the DDL, which is sink's migrations (sink/schema/*.sql).
//
// Conventions of the schema that the description carries: every time is an Int64 *_ms column of
// Unix milliseconds with a DateTime twin of whole seconds beside it (Column.Seconds) for
// partitions, ordering and people; a versioned table (ReplacingMergeTree(version)) keeps one row
// per version of a record, and its Fixed columns are the same in every version.
package tables

import (
	"fmt"
	"strings"
)

// Column is one column of a table.
type Column struct {
	Name string
	Type string // the ClickHouse type, as in the DDL
	// Seconds names the Int64 column of Unix milliseconds this DateTime column holds in whole
	// seconds; empty for any other column.
	Seconds string
	// Fixed: in a versioned table, the column is the same in every version of a record (it is
	// part of, or derived from, the record's identity).
	Fixed bool
}

// Table is one table.
type Table struct {
	Name    string
	Columns []Column
	// Version names the column that orders the versions of a record in a versioned table; empty
	// for a table of one row per record.
	Version string
}

// In is the table's name qualified by database db ("db.table").
func (t *Table) In(db string) string { return db + "." + t.Name }

// Names returns the names of the columns, in order.
func (t *Table) Names() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// Insert is the INSERT statement of every column of the table in database db, in order (ClickHouse
// 18.16 needs the explicit list): values are appended in the order of Columns.
func (t *Table) Insert(db string) string {
	return "INSERT INTO " + t.In(db) + " (" + strings.Join(t.Names(), ", ") + ")"
}

// Column returns the column called name.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Col returns name, checked to be a column of t: queries name their columns through it, so that
// a column the description lacks fails the first test that builds the query. It panics when t
// has no such column.
func (t *Table) Col(name string) string {
	if _, ok := t.Column(name); !ok {
		panic(fmt.Sprintf("tables: %s has no column %q", t.Name, name))
	}
	return name
}

// List is the comma-separated list of the named columns, each checked as Col checks it.
func (t *Table) List(names ...string) string {
	for _, n := range names {
		t.Col(n)
	}
	return strings.Join(names, ", ")
}

// All returns every table, in the order of the migrations that create them.
func All() []*Table {
	return []*Table{SchemaMigrations, Positions, Events, OfficerPositions, Rejects, Alerts, AlertChanges, ViolationsDaily,
		AlertActions, APIAudit, AlertFeed, VehicleKmDaily, AlertHandling, KPIRollups, HandlingDaily,
		VehicleViolationsDaily, VehicleExitsDaily, VehicleKmHourly}
}
