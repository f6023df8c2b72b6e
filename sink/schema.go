package sink

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/tables"
)

// schemaFiles are the migrations, schema/NNN_name.sql, in the order of NNN. Each file is a list
// of ';'-separated statements in which {db} stands for the database name. A statement must be
// safe to run again (IF NOT EXISTS), because a crash can come between a migration's DDL and its
// row in schema_migrations.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// Migration is one version of the schema: the statements that bring the database from the
// previous version to this one.
type Migration struct {
	Version    int
	Name       string   // from the file name, e.g. "raw_history"
	Statements []string // ready to run: {db} replaced, comments removed
}

// bootstrapStatements create the database and the table that records the applied migrations.
func bootstrapStatements(db string) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations (\n" +
			"    version    UInt32,\n" +
			"    name       String,\n" +
			"    applied_at DateTime\n" +
			") ENGINE = ReplacingMergeTree()\nORDER BY version",
	}
}

// Migrations returns the embedded migrations in version order, with their statements rendered
// for database db (which must be a valid identifier). The first element creates the database
// and schema_migrations, as version 0; it is not recorded.
func Migrations(db string) ([]Migration, error) {
	if !identRE.MatchString(db) {
		return nil, fmt.Errorf("cannot render migrations: database %q must match %s", db, identRE)
	}
	names, err := fs.Glob(schemaFiles, "schema/*.sql")
	if err != nil {
		return nil, fmt.Errorf("cannot list the embedded migrations: %w", err)
	}
	ms := []Migration{{Version: 0, Name: "bootstrap", Statements: bootstrapStatements(db)}}
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 3 {
			return nil, fmt.Errorf("cannot read migration %s: the name must be NNN_name.sql with NNN from 001", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("cannot read migration %s: version %d is also %s", name, v, prev)
		}
		seen[v] = name
		text, err := schemaFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %s: %w", name, err)
		}
		stmts := splitStatements(strings.ReplaceAll(string(text), "{db}", db))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("cannot read migration %s: it has no statement", name)
		}
		ms = append(ms, Migration{Version: v, Name: label, Statements: stmts})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// splitStatements splits SQL text on ';' outside quotes, dropping '--' comments and empty
// statements.
func splitStatements(text string) []string {
	var (
		stmts []string
		cur   strings.Builder
		quote byte
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(text) {
				i++
				cur.WriteByte(text[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			cur.WriteByte(c)
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return stmts
}

// Migrate brings the database up to the newest embedded migration: it creates the database and
// schema_migrations if needed, then runs every migration whose version is not recorded there, in
// order, recording each after its statements succeeded. Running it again changes nothing; two
// instances running it at once only repeat IF NOT EXISTS statements.
//
// On a cluster (ClickHouseConfig.Cluster) it migrates nothing: it checks the schema an operator
// created from ClusterDDL instead (CheckClusterSchema).
func (c *ClickHouse) Migrate(ctx context.Context) error {
	if c.cfg.Cluster != "" {
		return c.CheckClusterSchema(ctx)
	}
	ms, err := Migrations(c.cfg.Database)
	if err != nil {
		return err
	}
	for _, st := range ms[0].Statements {
		if err := c.conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("cannot create the database %s and its schema_migrations table: %w", c.cfg.Database, err)
		}
	}
	applied, err := c.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range ms[1:] {
		if done[m.Version] {
			continue
		}
		start := time.Now()
		for i, st := range m.Statements {
			if err := c.conn.Exec(ctx, st); err != nil {
				return fmt.Errorf("cannot apply migration %03d_%s (statement %d of %d): %w", m.Version, m.Name, i+1, len(m.Statements), err)
			}
		}
		bt, err := c.conn.PrepareBatch(ctx, tables.SchemaMigrations.Insert(c.cfg.Database))
		if err == nil {
			err = bt.Append(uint32(m.Version), m.Name, time.Now())
			if err == nil {
				err = bt.Send()
			}
			_ = bt.Close()
		}
		if err != nil {
			return fmt.Errorf("cannot record migration %03d_%s in schema_migrations: %w", m.Version, m.Name, err)
		}
		c.log.Info("applied ClickHouse migration", "database", c.cfg.Database, "version", m.Version, "name", m.Name,
			"statements", len(m.Statements), "duration", time.Since(start))
	}
	return nil
}

// AppliedMigrations returns the versions recorded in schema_migrations, ascending.
func (c *ClickHouse) AppliedMigrations(ctx context.Context) ([]int, error) {
	t := tables.SchemaMigrations
	rows, err := c.conn.Query(ctx, "SELECT DISTINCT "+t.Col("version")+" FROM "+t.In(c.cfg.Database)+" ORDER BY "+t.Col("version"))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", c.cfg.Database, err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", c.cfg.Database, err)
		}
		vs = append(vs, int(v))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", c.cfg.Database, err)
	}
	return vs, nil
}
