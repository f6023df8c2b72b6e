// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake) that the demo, the
// tests, the bench and `muckwatch broker` use. It speaks the Kafka protocol over real TCP;
// muckwatch talks to it through kafka-go exactly as to a real cluster.
package broker

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure the embedded broker.
type Options struct {
	Listen     string   // host:port; port 0 picks a free one
	Partitions int      // partitions of each seeded topic
	Topics     []string // topics created at start
	DataDir    string   // persist the log here across restarts; empty: a temporary folder, removed at Close
}

// Broker is a running kfake cluster and the temporary folder of its log, if it made one.
type Broker struct {
	*kfake.Cluster
	tmp string
}

// Close stops the broker and removes its temporary log.
func (b *Broker) Close() {
	b.Cluster.Close()
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// Start starts a one-node broker and returns it with its address. Its log is always in
// files: kfake's in-memory log grows each segment by copying it (a quarter of the broker's CPU
// under load in `muckwatch bench`), where files append in the page cache.
func Start(o Options) (*Broker, string, error) {
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
	b := &Broker{}
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
