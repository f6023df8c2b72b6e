package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/tables"
)

// ClickHouse writes batches of records into muckwatch's ClickHouse database. It is safe for
// concurrent use.
type ClickHouse struct {
	cfg     ClickHouseConfig
	conn    driver.Conn
	log     *slog.Logger
	m       *chMetrics
	version string

	positions *inserter[record.Fix]
	events    *inserter[record.Event]
	officers  *inserter[record.OfficerPosition]
	rejects   *inserter[record.Reject]
	alerts    *inserter[detectors.Change]
	changes   *inserter[detectors.Change]
}

// keptChangeRows: an insert of alerts or alert changes of up to this many rows leaves its columns
// for the next. In a bench run at --at 08:00 (14 % of the fleet in violation) the inserts had 106
// rows at the median, 1,990 at the 90th percentile and 5,804 at most.
const keptChangeRows = 4096

// sendBufferBytes is how much of an insert a connection encodes before it writes it out.
const sendBufferBytes = 512 << 10

// OpenClickHouse connects to ClickHouse over the native protocol, checks the connection with a
// ping and reads the server's version. It does not create or migrate the schema: see Migrate.
func OpenClickHouse(ctx context.Context, cfg ClickHouseConfig, log *slog.Logger, reg prometheus.Registerer) (*ClickHouse, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     cfg.Addr,
		Auth: clickhouse.Auth{
			// The database is created by Migrate, so log in to the server's default database and
			// name muckwatch's database in every statement.
			Username: cfg.Username,
		},
		DialTimeout:  cfg.DialTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		// Each connection encodes an insert's block into a buffer of its own, column by column,
		// and writes it out once it holds this much (the option's name notwithstanding, also
		// without compression). At clickhouse-go's default of 10 MiB every connection's buffer
		// grew to the largest insert it sent (a backlog's positions, several MB), a quarter at
		// a time: ~100 MB of garbage in a bench run, and the buffers kept.
		MaxCompressionBuffer: sendBufferBytes,
		ClientInfo: clickhouse.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "muckwatch", Version: "1"}},
		},
	}
	if cfg.PasswordEnv != "" {
		pw, ok := os.LookupEnv(cfg.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("cannot connect to ClickHouse: environment variable %s (password_env) is not set", cfg.PasswordEnv)
		}
		opts.Auth.Password = pw
	}
	tc, err := cfg.tlsSettings().Config()
	if err != nil {
		return nil, fmt.Errorf("cannot connect to ClickHouse: tls: %w", err)
	}
	opts.TLS = tc
	if cfg.Cluster != "" {
		// Into the Distributed tables synchronously: the insert returns once every shard has
		// its rows, not once they are queued on the server that took the insert.
		opts.Settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	if cfg.Compression {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to ClickHouse at %v: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot ping ClickHouse at %v: %w", cfg.Addr, err)
	}
	sv, err := conn.ServerVersion()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cannot read the ClickHouse server version at %v: %w", cfg.Addr, err)
	}
	// Registered only once connected, so that a caller may retry OpenClickHouse with the same
	// registry while ClickHouse starts.
	m := newMetrics(reg)
	m.up.Set(1)
	c := &ClickHouse{cfg: cfg, conn: conn, log: log, m: m, version: sv.Version.String()}
	c.positions = newInserter(c, tables.Positions.Name, positionColumns(), math.MaxInt)
	c.events = newInserter(c, tables.Events.Name, eventColumns(), math.MaxInt)
	c.officers = newInserter(c, tables.OfficerPositions.Name, officerColumns(), math.MaxInt)
	c.rejects = newInserter(c, tables.Rejects.Name, rejectColumns(), 0)
	// The alert changes come a second or a checkpoint apart, a few or a backlog's thousands with
	// their evidence: their columns are kept for the next insert only after an insert of up to
	// keptChangeRows, so that they are not sized for the largest.
	c.alerts = newInserter(c, tables.Alerts.Name, alertColumns(), keptChangeRows)
	c.changes = newInserter(c, tables.AlertChanges.Name, changeColumns(), keptChangeRows)
	log.Info("connected to ClickHouse", "addr", cfg.Addr, "database", cfg.Database, "server_version", c.version,
		"server", sv.DisplayName, "timezone", sv.Timezone)
	return c, nil
}

// Conn returns the underlying connection, for queries.
func (c *ClickHouse) Conn() driver.Conn { return c.conn }

// Database returns the name of muckwatch's database.
func (c *ClickHouse) Database() string { return c.cfg.Database }

// ServerVersion returns the server's version, e.g. "18.16.1".
func (c *ClickHouse) ServerVersion() string { return c.version }

// Ping checks that ClickHouse answers, and sets muckwatch_clickhouse_up accordingly.
func (c *ClickHouse) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		c.m.up.Set(0)
		return fmt.Errorf("cannot ping ClickHouse at %v: %w", c.cfg.Addr, err)
	}
	c.m.up.Set(1)
	return nil
}

// Close closes the connections.
func (c *ClickHouse) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("cannot close the ClickHouse connections: %w", err)
	}
	return nil
}

// Write inserts every non-empty part of b, one insert per table, and returns when ClickHouse
// acknowledged all of them. Each change goes to alert_changes and, as the alert's snapshot after
// it, to alerts. Each insert is attempted once (the caller retries: the pipeline holds back
// while ClickHouse fails); on error some tables may have been written, which is harmless because
// every insert is idempotent: write the whole batch again.
func (c *ClickHouse) Write(ctx context.Context, b *Batch) error {
	now := clampUnix(time.Now())
	if err := c.positions.insert(ctx, b.Fixes, now); err != nil {
		return err
	}
	if err := c.events.insert(ctx, b.Events, now); err != nil {
		return err
	}
	if err := c.officers.insert(ctx, b.Officers, now); err != nil {
		return err
	}
	if err := c.rejects.insert(ctx, b.Rejects, now); err != nil {
		return err
	}
	// The changes and the alerts' snapshots after them go side by side (each insert waits for its
	// part to be written, and the materialized view into violations_daily runs within the
	// alert_changes insert): a write is stored once both are, in whichever order they land.
	if len(b.Changes) == 0 {
		return nil
	}
	var snapshotsErr error
	var wg sync.WaitGroup
	wg.Go(func() { snapshotsErr = c.alerts.insert(ctx, b.Changes, now) })
	err := c.changes.insert(ctx, b.Changes, now)
	wg.Wait()
	return errors.Join(err, snapshotsErr)
}

// insertTables lists the tables Write inserts into, for metric labels.
func insertTables() []string {
	return []string{tables.Positions.Name, tables.Events.Name, tables.OfficerPositions.Name, tables.Rejects.Name,
		tables.AlertChanges.Name, tables.Alerts.Name}
}

// transient reports whether a failed insert may succeed if tried again: connection and network
// errors, and the server's overload and availability errors. Errors in the data or the schema
// (type mismatch, unknown column) are not transient.
func transient(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 3, // UNEXPECTED_END_OF_FILE
			159, // TIMEOUT_EXCEEDED
			164, // READONLY
			202, // TOO_MANY_SIMULTANEOUS_QUERIES
			203, // NO_FREE_CONNECTION
			209, // SOCKET_TIMEOUT
			210, // NETWORK_ERROR
			236, // ABORTED
			241, // MEMORY_LIMIT_EXCEEDED
			242, // TABLE_IS_READ_ONLY
			252, // TOO_MANY_PARTS
			285, // TOO_FEW_LIVE_REPLICAS
			319, // UNKNOWN_STATUS_OF_INSERT
			394, // QUERY_WAS_CANCELLED
			425, // SYSTEM_ERROR
			439, // CANNOT_SCHEDULE_TASK
			999: // KEEPER_EXCEPTION
			return true
		}
		return false
	}
	var conv *column.ColumnConverterError
	if errors.As(err, &conv) || errors.Is(err, clickhouse.ErrBatchInvalid) {
		return false
	}
	// Anything else comes from the connection: refused, reset, closed, timed out.
	return true
}

// FlushInterval is how often, at most, the pipeline should insert (ClickHouseConfig.FlushInterval).
func (c *ClickHouse) FlushInterval() time.Duration { return c.cfg.FlushInterval }
