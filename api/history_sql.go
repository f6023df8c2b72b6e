package api

// SQL text built in pieces for the history queries, with its arguments kept in step: every value
// is a parameter.

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// sqlText is an SQL statement built in pieces, with its positional arguments kept in step.
type sqlText struct {
	b    strings.Builder
	args []any
}

// add appends sql, whose '?' placeholders take args in order.
func (q *sqlText) add(sql string, args ...any) {
	if n := strings.Count(sql, "?"); n != len(args) {
		panic(fmt.Sprintf("api: SQL fragment %q has %d placeholders and %d arguments", sql, n, len(args)))
	}
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
}

func (q *sqlText) String() string { return q.b.String() }

// conditions are ANDed SQL conditions with their arguments.
type conditions struct {
	parts []string
	args  []any
}

func (c *conditions) add(cond string, args ...any) {
	c.parts = append(c.parts, cond)
	c.args = append(c.args, args...)
}

// in adds "col IN (?, …)" when vals is not empty.
func (c *conditions) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	c.add(col+" IN ("+ph+")", args...)
}

// appendTo appends " WHERE …" (or nothing) to q.
func (c *conditions) appendTo(q *sqlText) {
	if len(c.parts) == 0 {
		return
	}
	q.add(" WHERE "+strings.Join(c.parts, " AND "), c.args...)
}

// unixSeconds is t as a DateTime parameter (Unix seconds, clamped to DateTime's range) for
// toDateTime(?): a number binds the same whatever the server's time zone.
func unixSeconds(t time.Time) int64 {
	return min(max(t.Unix(), 0), math.MaxUint32)
}

// fromLatestAlerts appends to q " FROM (the newest version of every alert q selects) WHERE …",
