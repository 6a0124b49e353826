package orders

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
)

var (
	redisNodes    = []string{"redis", "redis-2", "redis-3"}
	rabbitMQNodes = []string{"rabbitmq", "rabbitmq-2", "rabbitmq-3"}
	clusterApps   = []string{"api", "workers"}
)

// loadComposeCluster loads compose.yaml with compose.cluster.yaml on top,
// as `docker compose -f compose.yaml -f compose.cluster.yaml` does.
func loadComposeCluster(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml", "compose.cluster.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv([]string{"JWT_SECRET=" + composeJWTSecret, "RABBITMQ_ERLANG_COOKIE=compose-test-cookie"}),
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	return p
}

// publishedHostPorts expands a service's published ports (ranges included).
func publishedHostPorts(t *testing.T, s types.ServiceConfig) []int {
	t.Helper()
	var out []int
	for _, p := range s.Ports {
		first, last, isRange := strings.Cut(p.Published, "-")
		lo, err := strconv.Atoi(first)
		require.NoError(t, err, "%s publishes %q", s.Name, p.Published)
		hi := lo
		if isRange {
			hi, err = strconv.Atoi(last)
			require.NoError(t, err, "%s publishes %q", s.Name, p.Published)
		}
		for port := lo; port <= hi; port++ {
			out = append(out, port)
		}
	}
	return out
}

// TestComposeCluster: compose.cluster.yaml puts the system on a 3-master
// Redis Cluster, a 3-node RabbitMQ cluster with quorum queues and PgBouncer
// in transaction pooling, with two replicas of the api and of the workers;
// each process is pointed at every node, and takes the configuration.
func TestComposeCluster(t *testing.T) {
	t.Parallel()
	p := loadComposeCluster(t)
	require.Subset(t, p.ServiceNames(), slices.Concat(redisNodes, rabbitMQNodes,
		[]string{"redis-cluster-init", "pgbouncer", "postgres", "migrate", "api", "workers"}))

	t.Run("redis cluster", func(t *testing.T) {
		for _, name := range redisNodes {
			require.Contains(t, strings.Join(service(t, p, name).Command, " "), "--cluster-enabled yes", name)
		}
		initJob := service(t, p, "redis-cluster-init")
		cmd := strings.Join(initJob.Command, " ")
		require.Contains(t, cmd, "--cluster create")
		require.Contains(t, cmd, "--cluster-replicas 0")
		for _, name := range redisNodes {
			require.Contains(t, cmd, "getent hosts "+name+" ", "the cluster is made of %s", name)
			require.Equal(t, types.ServiceConditionHealthy, initJob.DependsOn[name].Condition)
		}
		require.Equal(t, "no", initJob.Restart, "a one-shot job")
		for _, svc := range clusterApps {
			u, err := url.Parse(environment(t, p, svc)["REDIS_URL"])
			require.NoError(t, err)
			seeds := append([]string{u.Host}, u.Query()["addr"]...)
			want := make([]string, 0, len(redisNodes))
			for _, n := range redisNodes {
				want = append(want, n+":6379")
			}
			require.ElementsMatch(t, want, seeds, "%s knows every Redis node", svc)
		}
	})

	t.Run("rabbitmq cluster with quorum queues", func(t *testing.T) {
		confMount := ""
		cookie := ""
		dataVolumes := map[string]bool{}
		for _, name := range rabbitMQNodes {
			s := service(t, p, name)
			require.Equal(t, name, s.Hostname, "the node name rabbit@%s is its host name", name)
			for _, v := range s.Volumes {
				switch v.Target {
				case "/var/lib/rabbitmq":
					require.Equal(t, types.VolumeTypeVolume, v.Type)
					require.Contains(t, p.Volumes, v.Source, "%s mounts an undeclared volume", name)
					require.False(t, dataVolumes[v.Source], "%s shares its data volume", name)
					dataVolumes[v.Source] = true
				case "/etc/rabbitmq/conf.d/20-cluster.conf":
					confMount = v.Source
				}
			}
			env := environment(t, p, name)
			require.Contains(t, env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"], "-setcookie compose-test-cookie", name)
			require.Equal(t, env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"], env["RABBITMQ_CTL_ERL_ARGS"], "%s: the CLI tools share the cookie", name)
			if cookie == "" {
				cookie = env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
			}
			require.Equal(t, cookie, env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"], "one cookie for every node")
		}
		require.NotEmpty(t, confMount, "the cluster configuration is mounted")
		conf, err := os.ReadFile(confMount)
		require.NoError(t, err)
		require.Contains(t, string(conf), "cluster_formation.peer_discovery_backend = classic_config")
		for i, name := range rabbitMQNodes {
			require.Contains(t, string(conf), "cluster_formation.classic_config.nodes."+strconv.Itoa(i+1)+" = rabbit@"+name)
		}

		env := environment(t, p, "workers")
		require.Equal(t, "quorum", env["AMQP_QUEUE_TYPE"])
		var hosts []string
		for raw := range strings.SplitSeq(env["AMQP_URL"], ",") {
			u, err := url.Parse(raw)
			require.NoError(t, err)
			require.Equal(t, "amqp", u.Scheme)
			hosts = append(hosts, u.Hostname())
		}
		require.ElementsMatch(t, rabbitMQNodes, hosts, "AMQP_URL lists every broker")
	})

	t.Run("pgbouncer in transaction pooling", func(t *testing.T) {
		pgb := environment(t, p, "pgbouncer")
		require.Equal(t, "transaction", pgb["POOL_MODE"])
		require.Equal(t, "postgres", pgb["DB_HOST"])
		for _, svc := range slices.Concat(clusterApps, []string{"migrate"}) {
			env := environment(t, p, svc)
			pooled, err := url.Parse(env["DATABASE_URL"])
			require.NoError(t, err)
			require.Equal(t, "pgbouncer", pooled.Hostname(), "%s goes through PgBouncer", svc)
			require.Equal(t, "cache_describe", pooled.Query().Get("default_query_exec_mode"),
				"%s: pgx must not use named prepared statements behind a transaction pooler", svc)
			direct, err := url.Parse(env["MIGRATION_DATABASE_URL"])
			require.NoError(t, err)
			require.Equal(t, "postgres", direct.Hostname(), "%s migrates on a direct connection", svc)
			require.Equal(t, pooled.Path, direct.Path, "%s: the same database", svc)
		}
	})

	t.Run("replicas", func(t *testing.T) {
		seen := map[int]string{}
		for _, s := range p.Services {
			for _, port := range publishedHostPorts(t, s) {
				require.Empty(t, seen[port], "%s and %s both publish host port %d", seen[port], s.Name, port)
				seen[port] = s.Name
			}
		}
		for _, svc := range clusterApps {
			s := service(t, p, svc)
			require.NotNil(t, s.Deploy)
			require.NotNil(t, s.Deploy.Replicas)
			require.Equal(t, 2, *s.Deploy.Replicas, svc)
			require.Len(t, publishedHostPorts(t, s), *s.Deploy.Replicas, "%s: one host port per replica", svc)
			got := map[string]string{}
			for dep, cfg := range s.DependsOn {
				got[dep] = cfg.Condition
			}
			want := map[string]string{
				"migrate":            types.ServiceConditionCompletedSuccessfully,
				"redis-cluster-init": types.ServiceConditionCompletedSuccessfully,
				"pgbouncer":          types.ServiceConditionHealthy,
			}
			for _, n := range rabbitMQNodes {
				want[n] = types.ServiceConditionHealthy
			}
			require.Equal(t, want, got, "depends_on of %s", svc)
			for _, v := range s.Volumes {
				require.NotEqual(t, types.VolumeTypeVolume, v.Type, "%s replicas are stateless", svc)
			}
		}
	})

	t.Run("the processes take the configuration", func(t *testing.T) {
		declared := map[string]bool{}
		for _, v := range config.Vars {
			declared[v.Name] = true
		}
		for _, svc := range slices.Concat(clusterApps, []string{"migrate"}) {
			env := environment(t, p, svc)
			for name := range env {
				require.True(t, declared[name], "%s sets %s, which config.Vars does not declare", svc, name)
			}
		}
		getenv := func(svc string) func(string) string {
			env := environment(t, p, svc)
			return func(k string) string { return env[k] }
		}
		_, err := config.LoadAPI(getenv("api"))
		require.NoError(t, err, "config.LoadAPI refuses the environment of api")
		_, err = config.LoadWorkers(getenv("workers"))
		require.NoError(t, err, "config.LoadWorkers refuses the environment of workers")
	})

	t.Run("the overlay's files exist", func(t *testing.T) {
		root, err := filepath.Abs(".")
		require.NoError(t, err)
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Source, root) {
					require.FileExists(t, v.Source, "%s mounts a missing file", s.Name)
				}
			}
		}
	})
}
