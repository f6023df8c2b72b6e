// Package chcluster starts a throwaway ClickHouse cluster on this machine for the tests: one
// ZooKeeper (Debian's zookeeper package, installed by deploy/zookeeper-local.sh; started here
// with a config and data folder of its own on a free port, never the system service) and
// Shards × Replicas ClickHouse servers (internal/chlocal) whose config names them all in one
// remote_servers cluster, points them at that ZooKeeper for replication and ON CLUSTER DDL, and
// gives each its {shard} and {replica} macros. Everything listens on 127.0.0.1 and is stopped and
// removed by Destroy. A missing part is an error, never a skip.
package chcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// Options shape the cluster.
type Options struct {
	// Name is the cluster's name in remote_servers (what ON CLUSTER and Distributed name).
	// Default "muckwatch".
	Name string
	// Shards and Replicas (per shard) count the servers: Shards × Replicas. Defaults 2 and 1.
	Shards, Replicas int
	// Ready bounds the wait for ZooKeeper and every server to answer. Default 60s.
	Ready time.Duration
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Node is one ClickHouse server of the cluster.
type Node struct {
	*chlocal.Server
	Shard, Replica int // from 1
}

// Cluster is a running ZooKeeper and its ClickHouse servers.
type Cluster struct {
	Name      string
	Dir       string
	ZooKeeper string // host:port of the ZooKeeper clients' port
	Nodes     []Node // shard by shard, replica by replica

	zk     *exec.Cmd
	zkDone chan error
}

// ZooKeeperScript returns the path of deploy/zookeeper-local.sh in this checkout.
func ZooKeeperScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "zookeeper-local.sh")
}

// Start starts a cluster with its data under dir (created when missing). On error everything it
// started is stopped again.
func Start(dir string, opt Options) (c *Cluster, err error) {
	if opt.Name == "" {
		opt.Name = "muckwatch"
	}
	if opt.Shards == 0 {
		opt.Shards = 2
	}
	if opt.Replicas == 0 {
		opt.Replicas = 1
	}
	if opt.Ready == 0 {
		opt.Ready = 60 * time.Second
	}
	if !nameRE.MatchString(opt.Name) {
		return nil, fmt.Errorf("cannot start a ClickHouse cluster named %q: the name must match %s", opt.Name, nameRE)
	}
	if opt.Shards < 1 || opt.Replicas < 1 {
		return nil, fmt.Errorf("cannot start a ClickHouse cluster of %d shards × %d replicas", opt.Shards, opt.Replicas)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the cluster's folder: %w", err)
	}
	c = &Cluster{Name: opt.Name, Dir: dir}
	defer func() {
		if err != nil {
			_ = c.Destroy()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), opt.Ready)
	defer cancel()
	if err := c.startZooKeeper(ctx); err != nil {
		return c, err
	}
	// The servers name each other's ports in their config before they start: pick them all, and
	// pick again when another process took one meanwhile.
	for attempt := 1; ; attempt++ {
		err = c.startServers(opt)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "is taken") {
			break
		}
		c.stopServers()
	}
	if err != nil {
		return c, err
	}
	for _, n := range c.Nodes {
		if err := waitNode(ctx, n, opt); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Addrs returns every server's native-protocol address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.TCPAddr
	}
	return out
}

// Destroy stops the servers and ZooKeeper and removes the cluster's folder.
func (c *Cluster) Destroy() error {
	err := c.stopServers()
	if c.zk != nil {
		_ = c.zk.Process.Kill()
		<-c.zkDone
		c.zk = nil
	}
	if rmErr := os.RemoveAll(c.Dir); err == nil && rmErr != nil {
		err = fmt.Errorf("cannot remove the cluster's folder: %w", rmErr)
	}
	return err
}

// stopServers stops the servers all at once (each may take seconds to shut down).
func (c *Cluster) stopServers() error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = n.Stop() })
	}
	wg.Wait()
	c.Nodes = nil
	return errors.Join(errs...)
}

// startZooKeeper starts a standalone ZooKeeper on a free port and waits until it answers ruok.
func (c *Cluster) startZooKeeper(ctx context.Context) error {
	script := ZooKeeperScript()
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script, "classpath")
	cmd.Stderr = &stderr
	cp, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("cannot find ZooKeeper (%s classpath; `make deps` installs it): %w\n%s", script, err, stderr.String())
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return fmt.Errorf("cannot start ZooKeeper: no java on PATH (`make deps` installs Debian's zookeeper and its JRE): %w", err)
	}
	port, err := freePorts(1)
	if err != nil {
		return err
	}
	zkDir := filepath.Join(c.Dir, "zookeeper")
	if err := os.MkdirAll(filepath.Join(zkDir, "data"), 0o755); err != nil {
		return fmt.Errorf("cannot create ZooKeeper's folder: %w", err)
	}
	cfg := fmt.Sprintf("tickTime=1000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n", filepath.Join(zkDir, "data"), port[0])
	cfgFile := filepath.Join(zkDir, "zoo.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("cannot write ZooKeeper's config: %w", err)
	}
	logFile, err := os.Create(filepath.Join(zkDir, "zookeeper.log"))
	if err != nil {
		return fmt.Errorf("cannot create ZooKeeper's log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	zk := exec.Command(java, "-Xmx256m", "-XX:+UseSerialGC", "-cp", strings.TrimSpace(string(cp)),
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgFile)
	zk.Stdout, zk.Stderr = logFile, logFile
	if err := zk.Start(); err != nil {
		return fmt.Errorf("cannot start ZooKeeper: %w", err)
	}
	c.zk, c.zkDone = zk, make(chan error, 1)
	go func() { c.zkDone <- zk.Wait() }()
	c.ZooKeeper = fmt.Sprintf("127.0.0.1:%d", port[0])
	for {
		if zkOK(c.ZooKeeper) {
			return nil
		}
		select {
		case err := <-c.zkDone:
			c.zkDone <- err
			log, _ := os.ReadFile(logFile.Name())
			return fmt.Errorf("ZooKeeper exited during start (%v):\n%s", err, log)
		case <-ctx.Done():
			return fmt.Errorf("ZooKeeper did not answer on %s: %w", c.ZooKeeper, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// zkOK asks ZooKeeper "ruok" (a four-letter command) and reports whether it said "imok".
func zkOK(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return false
	}
	b, _ := io.ReadAll(conn)
	return string(b) == "imok"
}

// startServers writes every server's config.d and starts them all.
func (c *Cluster) startServers(opt Options) error {
	n := opt.Shards * opt.Replicas
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	type planned struct {
		dir            string
		shard, replica int
		ports          chlocal.Ports
	}
	var plan []planned
	var shards strings.Builder
	for s := 1; s <= opt.Shards; s++ {
		shards.WriteString("<shard><internal_replication>true</internal_replication>")
		for r := 1; r <= opt.Replicas; r++ {
			i := len(plan)
			p := chlocal.Ports{TCP: ports[3*i], HTTP: ports[3*i+1], Interserver: ports[3*i+2]}
			plan = append(plan, planned{dir: filepath.Join(c.Dir, fmt.Sprintf("s%dr%d", s, r)), shard: s, replica: r, ports: p})
			fmt.Fprintf(&shards, "<replica><host>127.0.0.1</host><port>%d</port></replica>", p.TCP)
		}
		shards.WriteString("</shard>")
	}
	zkHost, zkPort, _ := net.SplitHostPort(c.ZooKeeper)
	for _, p := range plan {
		conf := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <remote_servers><%[1]s>%[2]s</%[1]s></remote_servers>
  <zookeeper><node><host>%[3]s</host><port>%[4]s</port></node><session_timeout_ms>30000</session_timeout_ms></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <macros><shard>%[5]d</shard><replica>s%[5]dr%[6]d</replica></macros>
</yandex>
`, c.Name, shards.String(), zkHost, zkPort, p.shard, p.replica)
		if err := os.MkdirAll(filepath.Join(p.dir, "config.d"), 0o755); err != nil {
			return fmt.Errorf("cannot create a server's config.d: %w", err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, "config.d", "cluster.xml"), []byte(conf), 0o644); err != nil {
			return fmt.Errorf("cannot write a server's cluster config: %w", err)
		}
	}
	nodes := make([]Node, len(plan))
	errs := make([]error, len(plan))
	var wg sync.WaitGroup
	for i, p := range plan {
		wg.Go(func() {
			srv, err := chlocal.StartOn(p.dir, p.ports)
			if err != nil {
				errs[i] = fmt.Errorf("shard %d replica %d: %w", p.shard, p.replica, err)
				return
			}
			nodes[i] = Node{Server: srv, Shard: p.shard, Replica: p.replica}
		})
	}
	wg.Wait()
	for _, n := range nodes {
		if n.Server != nil {
			c.Nodes = append(c.Nodes, n)
		}
	}
	return errors.Join(errs...)
}

// waitNode waits until the server sees the whole cluster and reaches ZooKeeper.
func waitNode(ctx context.Context, n Node, opt Options) error {
	q := fmt.Sprintf("SELECT (SELECT count() FROM system.clusters WHERE cluster = '%s') = %d AND (SELECT count() > 0 FROM system.zookeeper WHERE path = '/')",
		opt.Name, opt.Shards*opt.Replicas)
	var last string
	for {
		out, err := n.Query(ctx, q, nil)
		if err == nil && out == "1" {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "answered " + out
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shard %d replica %d (%s) is not ready: %s: %w", n.Shard, n.Replica, n.TCPAddr, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Query runs sql on the server's HTTP interface with the settings given, and returns its answer
// (TabSeparated), trimmed. A SETTINGS clause at the end of INSERT … SELECT belongs to the SELECT:
// settings of the insert go here.
func (n Node) Query(ctx context.Context, sql string, settings map[string]string) (string, error) {
	return httpQuery(ctx, n.HTTPAddr, sql, settings)
}

func httpQuery(ctx context.Context, addr, q string, settings map[string]string) (string, error) {
	params := url.Values{"query": {q}}
	for k, v := range settings {
		params.Set(k, v)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/?"+params.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("cannot query the ClickHouse server at %s: %w", addr, err)
	}
	// No idle connection is kept: a server shutting down waits for its open ones.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot query the ClickHouse server at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("cannot read the answer of the ClickHouse server at %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the ClickHouse server at %s answered %d: %s", addr, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// freePorts returns n distinct ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cannot find a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
