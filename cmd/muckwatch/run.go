package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sink"
)

func cmdRun(ctx context.Context, args []string) error {
	cfg, err := parseConfigFlags("run", args)
	if err != nil {
		return err
	}
	log := pipeline.NewLogger(cfg.Log)
	defer cfg.Runtime.ApplyMemoryLimit(log)()
	reg := pipeline.NewRegistry()
	return pipeline.Run(ctx, cfg, log, reg, nil)
}

func cmdMigrate(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("migrate", flag.ContinueOnError)
	configPath := fl.String("config", "", "config file (default: the embedded configs/muckwatch.yaml)")
	clusterDDL := fl.String("cluster-ddl", "", "print the schema for the ClickHouse cluster of this name (Replicated local tables, Distributed tables, ON CLUSTER) instead of migrating")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *clusterDDL != "" {
		stmts, err := sink.ClusterDDL(cfg.ClickHouse.Database, *clusterDDL)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			fmt.Printf("%s;\n\n", s)
		}
		return nil
	}
	log := pipeline.NewLogger(cfg.Log)
	ch, err := sink.OpenClickHouse(ctx, cfg.ClickHouse, log, nil)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Migrate(ctx); err != nil {
		return err
	}
	if cfg.ClickHouse.Cluster != "" {
		fmt.Printf("database %s has the schema of ClickHouse cluster %s (checked on ClickHouse %s)\n", ch.Database(), cfg.ClickHouse.Cluster, ch.ServerVersion())
		return nil
	}
	applied, err := ch.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("schema of database %s is up to date on ClickHouse %s; migrations applied: %v\n", ch.Database(), ch.ServerVersion(), applied)
	return nil
}

// parseConfigFlags parses a command whose only flag is --config and loads that config.
func parseConfigFlags(name string, args []string) (pipeline.Config, error) {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	configPath := fl.String("config", "", "config file (default: the embedded configs/muckwatch.yaml)")
	if err := fl.Parse(args); err != nil {
		return pipeline.Config{}, err
	}
	return pipeline.LoadConfig(*configPath)
}
