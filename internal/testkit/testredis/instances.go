package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/ordersvc/orders/internal/cache/pin"
	"github.com/ordersvc/orders/internal/testkit/ports"
)

// Node is a redis-server (or sentinel) process of a test's own, on a free
// local port with its own data directory, killed when the test ends.
type Node struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// Kill ends the node with SIGKILL, as a crash would, and waits until it is gone.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	_ = n.cmd.Process.Kill()
	<-n.done
}

// Do runs one command on this node alone, with a short deadline.
func (n *Node) Do(t testing.TB, args ...string) (rueidis.RedisMessage, error) {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{n.Addr()}, ForceSingleClient: true, DisableCache: true, DisableRetry: true,
		Dialer: net.Dialer{Timeout: time.Second},
	})
	if err != nil {
		return rueidis.RedisMessage{}, err
	}
	c = pin.Client(c)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Arbitrary(args...).Build()).ToMessage()
}

// info returns the value of field in INFO section, or "" when the node
// does not answer.
func (n *Node) info(t testing.TB, section, field string) string {
	t.Helper()
	m, err := n.Do(t, "INFO", section)
	if err != nil {
		return ""
	}
	s, _ := m.ToString()
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// startNode starts redis-server with args (given the node's data directory;
// they come first, so a configuration file may lead), then the port and
// directory settings, on a free port whose cluster bus port (+10000) is
// free too, and waits until it accepts connections. A port taken meanwhile by someone
// else makes redis-server exit: another port is tried.
func startNode(t testing.TB, sentinel bool, args func(dir string) []string) *Node {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := ports.Free(t, 10000) // and its cluster bus port, +10000
		dir := t.TempDir()
		n := &Node{Port: port, Dir: dir, done: make(chan struct{})}
		all := append([]string{}, args(dir)...)
		all = append(all, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"), "--save", "", "--appendonly", "no")
		if sentinel {
			all = append(all, "--sentinel")
		}
		n.cmd = exec.Command("redis-server", all...) //nolint:noctx // lives until Kill or the test's end
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("testredis: redis-server: %v (is redis-server installed?)", err)
		}
		go func() { _ = n.cmd.Wait(); close(n.done) }()
		t.Cleanup(func() { _ = n.cmd.Process.Kill(); <-n.done })
		if n.waitUp(10 * time.Second) {
			return n
		}
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		if attempt == 2 {
			t.Fatalf("testredis: redis-server on port %d did not start:\n%s", port, log)
		}
		n.Kill(t)
	}
}

func (n *Node) waitUp(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return false
		default:
		}
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		conn, err := d.DialContext(context.Background(), "tcp", n.Addr())
		if err == nil {
			_ = conn.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitFor polls cond every 50 ms until it holds, failing t after 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testredis: %s not within 30s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of the test's own.
type Cluster struct {
	Masters  []*Node
	Replicas []*Node // Replicas[i] replicates Masters[i] at start
	// NodeTimeout is cluster-node-timeout: how long a master may be
	// unreachable before its replica takes over.
	NodeTimeout time.Duration
}

// URL is REDIS_URL for the cluster: every master as a seed address.
func (c *Cluster) URL() string {
	u := "redis://" + c.Masters[0].Addr()
	for i, n := range c.Masters[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr()
	}
	return u
}

// StartCluster starts a Redis Cluster of masters masters, each with
// replicas replicas, joined by redis-cli --cluster create, and waits until
// every node reports cluster_state:ok and every replica has synced. It is
// stopped when t ends.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	c := &Cluster{NodeTimeout: time.Second}
	var all []*Node
	for i := range masters * (1 + replicas) {
		n := startNode(t, false, func(dir string) []string {
			return []string{
				"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.FormatInt(c.NodeTimeout.Milliseconds(), 10),
			}
		})
		all = append(all, n)
		if i < masters {
			c.Masters = append(c.Masters, n)
		} else {
			c.Replicas = append(c.Replicas, n)
		}
	}
	// redis-cli makes the first `masters` addresses masters and assigns the
	// rest as replicas, in order.
	args := []string{"--cluster", "create"}
	for _, n := range all {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil { //nolint:noctx // a short admin command
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, "cluster_state:ok on every node", func() bool {
		for _, n := range all {
			if n.info(t, "cluster", "cluster_enabled") != "1" {
				return false
			}
			m, err := n.Do(t, "CLUSTER", "INFO")
			if s, _ := m.ToString(); err != nil || !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, fmt.Sprintf("cluster_known_nodes:%d", len(all))) {
				return false
			}
		}
		return true
	})
	c.Replicas = nil
	for _, n := range all {
		if n.info(t, "replication", "role") == "slave" {
			c.Replicas = append(c.Replicas, n)
		}
	}
	waitFor(t, "every replica synced", func() bool {
		for _, n := range c.Replicas {
			if n.info(t, "replication", "master_link_status") != "up" {
				return false
			}
		}
		return true
	})
	return c
}

// MasterOf returns the master serving key's slot: the one that answers a
// command on key instead of redirecting it (MOVED).
func (c *Cluster) MasterOf(t testing.TB, key string) *Node {
	t.Helper()
	for _, n := range c.Masters {
		if _, err := n.Do(t, "EXISTS", key); err == nil {
			return n
		}
	}
	t.Fatalf("testredis: no master serves %q", key)
	return nil
}

// PromotedReplicas counts the replicas of the cluster's start that are
// masters now (ROLE): one per master that failed over.
func (c *Cluster) PromotedReplicas(t testing.TB) int {
	t.Helper()
	promoted := 0
	for _, n := range c.Replicas {
		if m, err := n.Do(t, "ROLE"); err == nil {
			if role, _ := m.ToArray(); len(role) > 0 {
				if s, _ := role[0].ToString(); s == "master" {
					promoted++
				}
			}
		}
	}
	return promoted
}

// Sentinel is a master, one replica and three sentinels of a test's own.
type Sentinel struct {
	Master, Replica *Node
	Sentinels       []*Node
	MasterSet       string
	// DownAfter is down-after-milliseconds: how long the master may be
	// unreachable before the sentinels agree it is down.
	DownAfter time.Duration
}

// URL is REDIS_URL for the set: the sentinels' addresses and the master set.
func (s *Sentinel) URL() string {
	u := "redis://" + s.Sentinels[0].Addr() + "?"
	for _, n := range s.Sentinels[1:] {
		u += "addr=" + n.Addr() + "&"
	}
	return u + "master_set=" + s.MasterSet
}

// StartSentinel starts a master, a replica of it and three sentinels
// watching it (quorum 2), and waits until the replica has synced and every
// sentinel knows the replica and the other sentinels. It is stopped when t
// ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{MasterSet: "testmaster", DownAfter: time.Second}
	s.Master = startNode(t, false, func(string) []string { return nil })
	s.Replica = startNode(t, false, func(string) []string {
		return []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port)}
	})
	waitFor(t, "the replica synced", func() bool {
		return s.Replica.info(t, "replication", "master_link_status") == "up"
	})
	for range 3 {
		n := startNode(t, true, func(dir string) []string {
			// A sentinel rewrites its configuration file: it gets its own.
			conf := filepath.Join(dir, "sentinel.conf")
			body := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s 10000\n", s.MasterSet, s.Master.Port, s.MasterSet, s.DownAfter.Milliseconds(), s.MasterSet)
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				t.Fatalf("testredis: %v", err)
			}
			return []string{conf}
		})
		s.Sentinels = append(s.Sentinels, n)
	}
	waitFor(t, "the sentinels know the replica and each other", func() bool {
		for _, n := range s.Sentinels {
			m, err := n.Do(t, "SENTINEL", "MASTER", s.MasterSet)
			if err != nil {
				return false
			}
			fields, _ := m.AsStrMap()
			if fields["num-slaves"] != "1" || fields["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})
	return s
}

// CurrentMaster returns the port of the master the sentinels name now.
func (s *Sentinel) CurrentMaster(t testing.TB) int {
	t.Helper()
	for _, n := range s.Sentinels {
		m, err := n.Do(t, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterSet)
		if err != nil {
			continue
		}
		addr, _ := m.AsStrSlice()
		if len(addr) == 2 {
			port, _ := strconv.Atoi(addr[1])
			return port
		}
	}
	return 0
}
