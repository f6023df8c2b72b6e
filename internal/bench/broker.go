package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
)

// brokerAddrPrefix precedes the address in the line the broker's process prints once it listens.
const brokerAddrPrefix = "Kafka protocol on "

// Broker is the bench's broker process (`muckbench broker`): the embedded broker with the topics
// and partitions args give (--listen, --topics, --partitions, --data-dir) until ctx is done. It
// writes "muckbench broker: Kafka protocol on ADDR, …" to out once it listens.
func Broker(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("broker", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:0", "address to listen on")
	topics := fl.String("topics", "", "topics to create, comma-separated")
	partitions := fl.Int("partitions", 4, "partitions per topic")
	dataDir := fl.String("data-dir", "", "persist the log in this folder (default: a temporary folder, removed when the broker stops)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *topics == "" {
		return errors.New("--topics is required")
	}
	names := strings.Split(*topics, ",")
	c, addr, err := broker.Start(broker.Options{Listen: *listen, Partitions: *partitions, Topics: names, DataDir: *dataDir})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(out, "muckbench broker: %s%s, topics %v with %d partitions each\n", brokerAddrPrefix, addr, names, *partitions); err != nil {
		return fmt.Errorf("cannot write the broker's address: %w", err)
	}
	<-ctx.Done()
	return nil
}

// startBroker starts the embedded broker with topics in this process or as a child process
// (`muckbench broker`), and returns its address, the child's pid (0 in process) and how to stop it.
func startBroker(ctx context.Context, o *Options, topics []string, dataDir string) (string, int, func() error, error) {
	if o.BrokerInProcess {
		c, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: o.Partitions, Topics: topics, DataDir: dataDir})
		if err != nil {
			return "", 0, nil, err
		}
		return addr, 0, func() error { c.Close(); return nil }, nil
	}
	cmd, err := o.child("broker", "--listen", "127.0.0.1:0", "--topics", strings.Join(topics, ","),
		"--partitions", strconv.Itoa(o.Partitions), "--data-dir", dataDir)
	if err != nil {
		return "", 0, nil, err
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, fmt.Errorf("cannot start the broker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("cannot start the broker (%s): %w", cmd, err)
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
			return nil
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
			return fmt.Errorf("the broker (pid %d) did not stop within 10s and was killed", cmd.Process.Pid)
		}
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), brokerAddrPrefix); ok {
				addr, _, _ := strings.Cut(rest, ",")
				found <- strings.TrimSpace(addr)
				break
			}
		}
		close(found)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr, ok := <-found:
		if !ok || addr == "" {
			_ = stop()
			return "", 0, nil, errors.New("the broker child process exited without printing its address")
		}
		o.logf("broker: child process %d on %s", cmd.Process.Pid, addr)
		return addr, cmd.Process.Pid, stop, nil
	case <-time.After(30 * time.Second):
		_ = stop()
		return "", 0, nil, errors.New("the broker child process did not print its address within 30s")
	case <-ctx.Done():
		_ = stop()
		return "", 0, nil, ctx.Err()
	}
}
