// Package sink owns where muckwatch's records end up: the ClickHouse schema (versioned, embedded
// migrations under schema/ that run on ClickHouse 18.16 and on current releases alike), the
// idempotent inserts of fixes, events, officer positions, alert changes and rejects into it, and
// the Kafka outputs: the live alert feed (muck.alerts) and the dead-letter topic (muck.dlq).
//
// Every write is synchronous: [ClickHouse.Write] and [KafkaOutput.Write] return only when the
// server or broker acknowledged, so the caller may commit the input offsets that the written
// records came from. Writes are idempotent: every table is a ReplacingMergeTree keyed by the
// record's identity, so a batch replayed after a crash collapses into the rows it already wrote.
// Until ClickHouse merges the parts in the background, a plain count() can see such a replay
// twice; exact queries use FINAL, argMax(…, version) or uniqExact, as schema/*.sql shows.
//
// The package keeps no global state: metrics are registered on the prometheus.Registerer and
// logs go to the *slog.Logger that the constructors are given.
package sink
