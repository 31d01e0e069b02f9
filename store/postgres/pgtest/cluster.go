package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBin names the directory of the PostgreSQL server's programs (initdb,
// postgres) that [NewCluster] runs; without it, the last of
// /usr/lib/postgresql/*/bin.
const EnvBin = "POOLQ_TEST_PG_BIN"

// Cluster is a PostgreSQL server of a test's own, which the test may stop
// and start again (a server restart or crash under running nodes) without
// touching the server of POOLQ_TEST_POSTGRES that other tests share. Its
// data directory is in the test's temporary directory; it listens on
// 127.0.0.1 at a free port and trusts every connection. It is stopped
// (immediately) when the test ends, failed or not, and, on Linux and
// FreeBSD, when the test's process ends without its cleanups (a panic, a
// timeout, a kill): the postmaster is a child of the test's process, which
// the kernel tells to shut down at once when its parent goes (Pdeathsig).
// Other systems have no such signal: there a test killed before its
// cleanups leaves its server running. A Cluster needs a Unix system: on
// another (Windows), NewCluster skips the test.
//
// The server's programs refuse to run as root: as root, a Cluster runs
// them as the OS user postgres.
type Cluster struct {
	// URL is the server's database postgres, as its superuser postgres.
	URL string

	t     ClusterTB
	bin   string
	data  string
	log   string
	args  []string       // the postmaster's
	cred  *osUser        // the server's user, when not this process's
	start chan *exec.Cmd // to the thread that starts the postmaster
	err   chan error     // its answer
	up    *exec.Cmd      // the postmaster, while it runs
	done  chan struct{}  // closed when up has exited
}

// ClusterTB is what NewCluster needs of a test.
type ClusterTB interface {
	Skipper
	TempDir() string
}

// NewCluster makes a server with initdb, starts it with settings (each
// "name=value", added to the postmaster's command line) and returns it.
// It skips the test when the server's programs are not there, or when the
// test runs as another user than root (the programs then run as the OS
// user postgres) or postgres.
//
// The server runs with fsync off: a Cluster's crash is its processes'
// (Stop with "immediate"), after which the operating system still has
// every byte they wrote, as it would after a crash of the server alone;
// what they had not written (the write-ahead log still in the server's
// memory) is lost, as then.
func NewCluster(t ClusterTB, settings ...string) *Cluster {
	t.Helper()
	if !unixSystem {
		t.Skipf("pgtest: a private PostgreSQL server needs a Unix system, not %s", runtime.GOOS)
	}
	bin := os.Getenv(EnvBin)
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		if len(dirs) > 0 {
			bin = dirs[len(dirs)-1]
		}
	}
	for _, prog := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			t.Skipf("pgtest: a private PostgreSQL server needs its programs (initdb, postgres) in %s or /usr/lib/postgresql/*/bin: %v", EnvBin, err)
		}
	}
	c := &Cluster{t: t, bin: bin}
	me, err := user.Current()
	if err != nil {
		t.Skipf("pgtest: a private PostgreSQL server: who am I: %v", err)
	}
	switch me.Username {
	case "postgres":
	case "root":
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("pgtest: a private PostgreSQL server, as root, runs its programs as the OS user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		c.cred = &osUser{uid: uint32(uid), gid: uint32(gid)}
	default:
		t.Skipf("pgtest: a private PostgreSQL server runs as root (its programs then as postgres) or as postgres, not as %s", me.Username)
	}
	dir := c.dir()
	initdb := c.command("initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: cluster: initdb: %v\n%s", err, out)
	}
	c.listen(dir, settings)
	c.Start()
	return c
}

// dir makes the directory of c's data and log, which the server's user
// owns, and returns it.
func (c *Cluster) dir() string {
	t := c.t
	dir := t.TempDir()
	c.data, c.log = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	if c.cred != nil {
		// The server's user must reach dir, which this process's user
		// owns, mode 0700, as its parent (made by the testing package).
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatalf("pgtest: cluster: %v", err)
			}
		}
		if err := os.Chown(dir, int(c.cred.uid), int(c.cred.gid)); err != nil {
			t.Fatalf("pgtest: cluster: %v", err)
		}
	}
	return dir
}

// listen sets c's postmaster's command line (a free port, settings added)
// and URL, and its thread that starts the postmaster, and stops the
// server at the test's end.
func (c *Cluster) listen(dir string, settings []string) {
	port := freePort(c.t)
	c.args = []string{"-D", c.data, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "max_connections=60"}
	for _, s := range settings {
		c.args = append(c.args, "-c", s)
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	// Pdeathsig is sent when the thread that started the child ends, not
	// the process: the postmaster is started on a thread that stays to
	// the process's end.
	c.start, c.err = make(chan *exec.Cmd), make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		for cmd := range c.start {
			c.err <- cmd.Start()
		}
		select {}
	}()
	c.t.Cleanup(func() {
		if c.up != nil {
			_ = c.up.Process.Signal(syscall.SIGQUIT) // an immediate shutdown
			<-c.done
			c.up = nil
		}
	})
}

// Standby makes a streaming replica of c, which must be running: a copy
// of its data directory (pg_basebackup -R: a standby of c, connecting as
// application_name "standby"), with settings, started at a free port and
// returned once it accepts connections (read-only: a hot standby). It is
// asynchronous unless c's synchronous_standby_names names it. It skips
// the test when pg_basebackup is not among the server's programs.
//
// Stop c (immediate: a crash) and [Cluster.Promote] the standby for a
// failover. Its commits are its own: after a failover, what c committed
// and had not sent it is not there.
func (c *Cluster) Standby(settings ...string) *Cluster {
	c.t.Helper()
	if _, err := os.Stat(filepath.Join(c.bin, "pg_basebackup")); err != nil {
		c.t.Skipf("pgtest: a standby needs pg_basebackup among the server's programs (%s): %v", c.bin, err)
	}
	s := &Cluster{t: c.t, bin: c.bin, cred: c.cred}
	dir := s.dir()
	src := strings.Replace(c.URL, "sslmode=disable", "sslmode=disable&application_name=standby", 1)
	backup := s.command("pg_basebackup", "-d", src, "-D", s.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if out, err := backup.CombinedOutput(); err != nil {
		c.t.Fatalf("pgtest: standby: pg_basebackup: %v\n%s", err, out)
	}
	s.listen(dir, settings)
	s.Start()
	return s
}

// Promote ends a standby's recovery (pg_promote, which waits until it is
// done): it becomes a primary, which takes writes, and follows c no more.
func (c *Cluster) Promote() {
	c.t.Helper()
	c.Exec(`SELECT pg_promote(true, 60)`)
}

// CaughtUp waits until standby, a Standby of c, has replayed everything c
// has written so far.
func (c *Cluster) CaughtUp(standby *Cluster) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lsn string
	conn, err := pgx.Connect(ctx, c.URL)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn)
		_ = conn.Close(ctx)
	}
	if err != nil {
		c.t.Fatalf("pgtest: cluster: the primary's log position: %v", err)
	}
	conn, err = pgx.Connect(ctx, standby.URL)
	if err != nil {
		c.t.Fatalf("pgtest: cluster: %v", err)
	}
	defer conn.Close(context.Background())
	for {
		var done bool
		if err := conn.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			c.t.Fatalf("pgtest: cluster: the standby does not replay the primary's log (at %s): %v", lsn, err)
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FailoverURL returns a URL naming the servers of c and standby, in that
// order, with target_session_attrs=read-write: pgx connects to the first
// that takes writes, c, and after a failover to standby, promoted.
func (c *Cluster) FailoverURL(standby *Cluster) string {
	host := func(u string) string {
		return strings.TrimSuffix(strings.TrimPrefix(u, "postgres://postgres@"), "/postgres?sslmode=disable")
	}
	return fmt.Sprintf("postgres://postgres@%s,%s/postgres?sslmode=disable&target_session_attrs=read-write", host(c.URL), host(standby.URL))
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

// command returns a command running a server program as the server's
// user.
func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.SysProcAttr = sysProcAttr(c.cred, 0)
	return cmd
}

// Start starts the server and returns once it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	if c.up != nil {
		c.t.Fatalf("pgtest: cluster: started twice")
	}
	log, err := os.OpenFile(c.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatalf("pgtest: cluster: %v", err)
	}
	defer log.Close()
	cmd := c.command("postgres", c.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr(c.cred, syscall.SIGQUIT) // an immediate shutdown
	c.start <- cmd
	if err := <-c.err; err != nil {
		c.t.Fatalf("pgtest: cluster: start the postmaster: %v", err)
	}
	c.up, c.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(c.done)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.URL)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return
		}
		select {
		case <-c.done:
			c.up = nil
			c.t.Fatalf("pgtest: cluster: the postmaster exited at its start (%v):\n%s", cmd.ProcessState, c.serverLog())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("pgtest: cluster: the server does not accept connections: %v\n%s", err, c.serverLog())
		}
	}
}

// Stop stops the server in mode: "fast" (every session ended, the server
// shut down cleanly: a restart, as an operator's or a failover's) or
// "immediate" (every process of the server ended at once, a crash: the
// next Start recovers from the write-ahead log, and what the server had
// not written of it is lost). It returns once the server is down.
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	sig := map[string]syscall.Signal{"fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if sig == 0 || c.up == nil {
		c.t.Fatalf("pgtest: cluster: stop %q: %v", mode, errors.New("not running, or no such mode"))
	}
	if err := c.up.Process.Signal(sig); err != nil {
		c.t.Fatalf("pgtest: cluster: stop: %v", err)
	}
	select {
	case <-c.done:
		c.up = nil
	case <-time.After(time.Minute):
		c.t.Fatalf("pgtest: cluster: the server did not stop (%s):\n%s", mode, c.serverLog())
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
