package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/pipeline"
)

func cmdBroker(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("broker", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:9092", "address to listen on")
	partitions := fl.Int("partitions", 8, "partitions per topic")
	dataDir := fl.String("data-dir", "", "persist the log in this folder (default: a temporary folder, removed when the broker stops)")
	configPath := fl.String("config", "", "config whose topic names to create (default: the embedded config)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	c, addr, err := broker.Start(broker.Options{Listen: *listen, Partitions: *partitions, Topics: cfg.Topics(), DataDir: *dataDir})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("muckwatch broker: Kafka protocol on %s, topics %v with %d partitions each\n", addr, cfg.Topics(), *partitions)
	fmt.Printf("  produce a fix:  echo '粤B12345|{\"vehicle_id\":\"粤B12345\",\"ts\":%s,\"lat\":22.5431,\"lon\":114.0579,\"speed_kmh\":35}' | kcat -P -b %s -t %s -K '|'\n",
		"$(date +%s%3N)", addr, cfg.Kafka.Topics.GPS)
	fmt.Printf("  run the pipeline against it:  muckwatch run   (the default config points at 127.0.0.1:9092)\n")
	<-ctx.Done()
	fmt.Println("muckwatch broker: stopped")
	return nil
}
