package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBin names the directory of the PostgreSQL server's programs (initdb,
// pg_ctl) that [NewCluster] runs; without it, the newest
// /usr/lib/postgresql/*/bin.
const EnvBin = "POOLQ_TEST_PG_BIN"

// Cluster is a PostgreSQL server of a test's own, which the test may stop
// and start again (a server restart or crash under running nodes) without
// touching the server of POOLQ_TEST_POSTGRES that other tests share. Its
// data directory is in the test's temporary directory; it listens on
// 127.0.0.1 at a free port, trusts every local connection, and is stopped
// (immediately) when the test ends, failed or not.
//
// The server's programs refuse to run as root: as root, a Cluster runs
// them as the OS user postgres, with runuser.
type Cluster struct {
	// URL is the server's database postgres, as its superuser postgres.
	URL string

	t    ClusterTB
	bin  string
	data string
	log  string
	opts string   // the server's options, for pg_ctl -o
	as   []string // the command prefix that runs a program as postgres; nil: as this process
}

// ClusterTB is what NewCluster needs of a test.
type ClusterTB interface {
	Skipper
	TempDir() string
	Logf(format string, args ...any)
}

// NewCluster makes a server with initdb, starts it with settings (each
// "name=value", added to the server's command line) and returns it. It
// skips the test when the server's programs are not there, or when it
// runs as root without runuser or an OS user postgres, or as another user
// than root or postgres (whom the programs, or the data directory's
// owner, would not suit).
//
// The server runs with fsync off: a Cluster's crash is its processes'
// (Stop with "immediate"), after which the operating system still has
// every byte they wrote, as it would after a crash of the server alone;
// what it had not written (the write-ahead log still in the server's
// memory) is lost, as then.
func NewCluster(t ClusterTB, settings ...string) *Cluster {
	t.Helper()
	bin := os.Getenv(EnvBin)
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		if len(dirs) > 0 {
			bin = dirs[len(dirs)-1]
		}
	}
	for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			t.Skipf("pgtest: a private PostgreSQL server needs its programs (initdb, pg_ctl, postgres) in %s or /usr/lib/postgresql/*/bin: %v", EnvBin, err)
		}
	}
	c := &Cluster{t: t, bin: bin}
	var pg *user.User // the server's OS user, when it is not this process's
	me, err := user.Current()
	if err != nil {
		t.Skipf("pgtest: a private PostgreSQL server: who am I: %v", err)
	}
	switch me.Username {
	case "postgres":
	case "root":
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			t.Skipf("pgtest: a private PostgreSQL server, as root, runs its programs as postgres with runuser: %v", err)
		}
		if pg, err = user.Lookup("postgres"); err != nil {
			t.Skipf("pgtest: a private PostgreSQL server, as root, runs its programs as the OS user postgres: %v", err)
		}
		c.as = []string{runuser, "-u", "postgres", "--"}
	default:
		t.Skipf("pgtest: a private PostgreSQL server runs as root (its programs then as postgres) or as postgres, not as %s", me.Username)
	}
	dir := t.TempDir()
	c.data, c.log = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	// The server's user must reach dir, which the test's user owns, mode
	// 0700, and its parent (made by the testing package, the same).
	if pg != nil {
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatalf("pgtest: cluster: %v", err)
			}
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("pgtest: cluster: %v", err)
		}
	}
	c.run("initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync")
	port := freePort(t)
	c.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=60", port, dir)
	for _, s := range settings {
		c.opts += " -c " + s
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	t.Cleanup(func() {
		if c.running() {
			_ = c.pgctl("stop", "-m", "immediate")
		}
	})
	c.Start()
	return c
}

// freePort returns a port of 127.0.0.1 that nothing listens on now.
func freePort(t ClusterTB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: cluster: a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs a server program as the server's user, and fails the test when
// it fails.
func (c *Cluster) run(prog string, args ...string) {
	c.t.Helper()
	if out, err := c.command(prog, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("pgtest: cluster: %s %s: %v\n%s\n%s", prog, strings.Join(args, " "), err, out, c.serverLog())
	}
}

func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.as...), filepath.Join(c.bin, prog)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// pgctl runs pg_ctl on the cluster, waiting for what it does.
func (c *Cluster) pgctl(args ...string) error {
	args = append([]string{"-D", c.data, "-w", "-t", "60"}, args...)
	out, err := c.command("pg_ctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// running reports whether the server's postmaster runs.
func (c *Cluster) running() bool { return c.command("pg_ctl", "-D", c.data, "status").Run() == nil }

// Start starts the server and returns once it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	if err := c.pgctl("-l", c.log, "-o", c.opts, "start"); err != nil {
		c.t.Fatalf("pgtest: cluster: %v\n%s", err, c.serverLog())
	}
}

// Stop stops the server in mode: "fast" (every session ended, the server
// shut down cleanly: a restart, as an operator's or a failover's) or
// "immediate" (every process of the server ended at once, a crash: the
// next Start recovers from the write-ahead log, and what the server had
// not written of it is lost). It returns once the server is down.
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	if err := c.pgctl("stop", "-m", mode); err != nil {
		c.t.Fatalf("pgtest: cluster: %v\n%s", err, c.serverLog())
	}
}

// Exec runs sql on a connection of its own, and fails the test when it
// fails.
func (c *Cluster) Exec(sql string, args ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		c.t.Fatalf("pgtest: cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		c.t.Fatalf("pgtest: cluster: %s: %v", sql, err)
	}
}

// serverLog returns the end of the server's log, for a failure's message.
func (c *Cluster) serverLog() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
