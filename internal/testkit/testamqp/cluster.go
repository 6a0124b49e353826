package testamqp

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/ports"
)

// rabbitmqBin holds Debian's unwrapped scripts: /usr/sbin's wrappers switch
// to the shared broker's directory and cookie.
const rabbitmqBin = "/usr/lib/rabbitmq/bin"

// Cluster is a RabbitMQ cluster of its own, next to the shared broker: own
// node names, ports, data and log directories and Erlang cookie, no plugins.
type Cluster struct {
	Nodes []*Node
	dir   string
	env   []string // shared by the nodes and the CLI: HOME with the cookie
	cred  *syscall.Credential
}

// Node is one node of a Cluster.
type Node struct {
	Name     string // e.g. rabbit-t1a2b3c@localhost
	AMQPPort int
	distPort int
	dir      string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// StartCluster starts n nodes in parallel and joins the others to the first
// (rabbitmqctl join_cluster); they are stopped and their files removed when
// t ends. The nodes run as the user rabbitmq when the test runs as root, as
// Debian's broker does.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(rabbitmqBin, "rabbitmq-server")); err != nil {
		t.Fatalf("testamqp: RabbitMQ is not installed (%v): apt-get install rabbitmq-server", err)
	}
	dir, err := os.MkdirTemp("", "rabbit-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir}
	t.Cleanup(c.stop)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	cookie := make([]byte, 20)
	_, _ = rand.Read(cookie)
	home := filepath.Join(dir, "home")
	must(t, os.MkdirAll(home, 0o755))
	must(t, os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(strings.ToUpper(hex.EncodeToString(cookie))), 0o400))
	envFile := filepath.Join(dir, "rabbitmq-env.conf")
	plugins := filepath.Join(dir, "enabled_plugins")
	must(t, os.WriteFile(envFile, nil, 0o600))
	must(t, os.WriteFile(plugins, nil, 0o600))
	c.env = append(os.Environ(), "HOME="+home,
		// Not /etc/rabbitmq/rabbitmq-env.conf: it names the shared node.
		"RABBITMQ_CONF_ENV_FILE="+envFile,
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins)
	for i := range n {
		node := &Node{Name: fmt.Sprintf("rabbit-t%s%d@localhost", id, i+1), AMQPPort: ports.Free(t), distPort: ports.Free(t),
			dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), exited: make(chan struct{})}
		must(t, os.MkdirAll(filepath.Join(node.dir, "mnesia"), 0o755))
		must(t, os.MkdirAll(filepath.Join(node.dir, "log"), 0o755))
		must(t, os.WriteFile(filepath.Join(node.dir, "rabbitmq.conf"),
			fmt.Appendf(nil, "listeners.tcp.1 = 127.0.0.1:%d\n", node.AMQPPort), 0o600))
		c.Nodes = append(c.Nodes, node)
	}
	if os.Geteuid() == 0 {
		c.cred = rabbitmqUser(t)
		must(t, chownAll(dir, int(c.cred.Uid), int(c.cred.Gid)))
	}

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, node := range c.Nodes {
		wg.Go(func() { errs[i] = c.boot(node) })
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	for _, node := range c.Nodes[1:] {
		c.Ctl(t, node, "stop_app")
		c.Ctl(t, node, "join_cluster", c.Nodes[0].Name)
		c.Start(t, node)
	}
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("testamqp: cluster: %v", err)
	}
}

func rabbitmqUser(t testing.TB) *syscall.Credential {
	u, err := user.Lookup("rabbitmq")
	must(t, err)
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	must(t, err)
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	must(t, err)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// chownAll hands the cluster's files to the nodes' user: the directory
// tree is ours, made just now, so a walk meets no one else's links.
func chownAll(dir string, uid, gid int) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return fs.WalkDir(root.FS(), ".", func(path string, _ fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		return root.Lchown(path, uid, gid)
	})
}

// boot starts node's Erlang VM and broker in the foreground and waits for
// its AMQP listener.
func (c *Cluster) boot(node *Node) error {
	cmd := exec.Command(filepath.Join(rabbitmqBin, "rabbitmq-server")) //nolint:noctx // stopped through rabbitmqctl, then killed
	cmd.Env = append(c.env[:len(c.env):len(c.env)],
		"RABBITMQ_NODENAME="+node.Name,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(node.AMQPPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(node.distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(node.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(node.dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(node.dir, "rabbitmq.conf"),
		"RABBITMQ_PID_FILE="+filepath.Join(node.dir, "pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	out, err := os.Create(filepath.Join(node.dir, "stdout.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", node.Name, err)
	}
	node.cmd = cmd
	go func() { _ = cmd.Wait(); _ = out.Close(); close(node.exited) }()
	return node.waitUp(120 * time.Second)
}

// URL is the node's AMQP URL.
func (n *Node) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.AMQPPort) }

func (n *Node) waitUp(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := amqp091.Dial(n.URL())
		if err == nil {
			return conn.Close()
		}
		select {
		case <-n.exited:
			log, _ := os.ReadFile(filepath.Join(n.dir, "stdout.log"))
			return fmt.Errorf("%s exited while starting:\n%s", n.Name, tail(string(log), 3000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no AMQP listener on port %d after %s: %w", n.Name, n.AMQPPort, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// URL lists every node, comma-separated: AMQP_URL for a cluster.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Namespace returns a fresh topology on the cluster with quorum queues.
func (c *Cluster) Namespace() messaging.Topology {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return messaging.Topology{Namespace: "test_" + hex.EncodeToString(b), URL: c.URL(), QueueType: messaging.QuorumQueues}
}

// Ctl runs rabbitmqctl against node and returns its output.
func (c *Cluster) Ctl(t testing.TB, node *Node, args ...string) string {
	t.Helper()
	out, err := c.ctl(node, args...)
	if err != nil {
		t.Fatalf("testamqp: rabbitmqctl -n %s %v: %v\n%s", node.Name, args, err, out)
	}
	return string(out)
}

func (c *Cluster) ctl(node *Node, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(rabbitmqBin, "rabbitmqctl"), append([]string{"-n", node.Name}, args...)...) //nolint:noctx,gosec // a short admin command on our own node
	cmd.Env = c.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.CombinedOutput()
}

// Stop stops the broker on node (rabbitmqctl stop_app); its Erlang VM stays.
func (c *Cluster) Stop(t testing.TB, node *Node) { c.Ctl(t, node, "stop_app") }

// Start starts the broker on node again and waits for its AMQP listener.
func (c *Cluster) Start(t testing.TB, node *Node) {
	t.Helper()
	c.Ctl(t, node, "start_app")
	must(t, node.waitUp(60*time.Second))
}

// Leader is the node leading quorum queue, asked of a running node other
// than except (nil: any).
func (c *Cluster) Leader(t testing.TB, queue string, except *Node) *Node {
	t.Helper()
	for _, asked := range c.Nodes {
		if asked == except {
			continue
		}
		var rows []struct{ Name, Leader string }
		out := c.Ctl(t, asked, "list_queues", "--formatter", "json", "name", "leader")
		must(t, json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows))
		for _, r := range rows {
			if r.Name != queue {
				continue
			}
			for _, n := range c.Nodes {
				if n.Name == r.Leader {
					return n
				}
			}
			t.Fatalf("testamqp: queue %s is led by %q, not a node of the cluster", queue, r.Leader)
		}
		t.Fatalf("testamqp: no queue %s on %s", queue, asked.Name)
	}
	t.Fatalf("testamqp: no node to ask")
	return nil
}

// stop stops every node (rabbitmqctl stop, then a kill of what is left) and
// removes the cluster's files.
func (c *Cluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		wg.Go(func() {
			_, _ = c.ctl(n, "stop")
			select {
			case <-n.exited:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
				<-n.exited
			}
		})
	}
	wg.Wait()
	_ = os.RemoveAll(c.dir)
}
