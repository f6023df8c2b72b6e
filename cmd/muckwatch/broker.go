package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerOptions configure the embedded Kafka-protocol broker (franz-go's kfake) used by the demo,
// the tests and `muckwatch broker`. It speaks the Kafka protocol over real TCP; muckwatch talks to
// it through kafka-go exactly as to a real cluster.
type brokerOptions struct {
	Listen     string   // host:port; port 0 picks a free one
	Partitions int      // partitions of each seeded topic
	Topics     []string // topics created at start
	DataDir    string   // persist the log here across restarts; empty: a temporary folder, removed at Close
}

// embeddedBroker is a running kfake cluster and the temporary folder of its log, if it made one.
type embeddedBroker struct {
	*kfake.Cluster
	tmp string
}

// Close stops the broker and removes its temporary log.
func (b *embeddedBroker) Close() {
	b.Cluster.Close()
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// startBroker starts a one-node broker and returns it with its address. Its log is always in
// files: kfake's in-memory log grows each segment by copying it (a quarter of the broker's CPU
// under load in `muckwatch bench`), where files append in the page cache.
func startBroker(o brokerOptions) (*embeddedBroker, string, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("cannot start the broker: listen address %q is not host:port", o.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, "", fmt.Errorf("cannot start the broker: port %q is not a port number", portStr)
	}
	if o.Partitions < 1 {
		return nil, "", fmt.Errorf("cannot start the broker: partitions must be at least 1, got %d", o.Partitions)
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.SeedTopics(int32(o.Partitions), o.Topics...),
	}
	b := &embeddedBroker{}
	dir := o.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "muckwatch-broker-"); err != nil {
			return nil, "", fmt.Errorf("cannot start the broker: no folder for its log: %w", err)
		}
		b.tmp = dir
	}
	opts = append(opts, kfake.DataDir(dir))
	if b.Cluster, err = kfake.NewCluster(opts...); err != nil {
		if b.tmp != "" {
			_ = os.RemoveAll(b.tmp)
		}
		return nil, "", fmt.Errorf("cannot start the broker on %s: %w", o.Listen, err)
	}
	return b, b.ListenAddrs()[0], nil
}

func defaultTopics(cfg Config) []string {
	return []string{cfg.Kafka.Topics.GPS, cfg.Kafka.Topics.Events, cfg.Kafka.Topics.Officers, cfg.Outputs.AlertsTopic, cfg.Outputs.DLQTopic, cfg.Outputs.StateTopic}
}

func cmdBroker(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("broker", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:9092", "address to listen on")
	partitions := fl.Int("partitions", 8, "partitions per topic")
	dataDir := fl.String("data-dir", "", "persist the log in this folder (default: a temporary folder, removed when the broker stops)")
	configPath := fl.String("config", "", "config whose topic names to create (default: the embedded config)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	c, addr, err := startBroker(brokerOptions{Listen: *listen, Partitions: *partitions, Topics: defaultTopics(cfg), DataDir: *dataDir})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("muckwatch broker: Kafka protocol on %s, topics %v with %d partitions each\n", addr, defaultTopics(cfg), *partitions)
	fmt.Printf("  produce a fix:  echo '粤B12345|{\"vehicle_id\":\"粤B12345\",\"ts\":%s,\"lat\":22.5431,\"lon\":114.0579,\"speed_kmh\":35}' | kcat -P -b %s -t %s -K '|'\n",
		"$(date +%s%3N)", addr, cfg.Kafka.Topics.GPS)
	fmt.Printf("  run the pipeline against it:  muckwatch run   (the default config points at 127.0.0.1:9092)\n")
	<-ctx.Done()
	fmt.Println("muckwatch broker: stopped")
	return nil
}
