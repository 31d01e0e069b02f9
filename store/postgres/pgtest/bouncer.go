package pgtest

import (
	"bytes"
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPgBouncer names the pgbouncer program that [NewBouncer] runs; without
// it, pgbouncer on the PATH, else /usr/sbin/pgbouncer (Debian's package).
const EnvPgBouncer = "POOLQ_TEST_PGBOUNCER"

// Bouncer is a PgBouncer of a test's own in front of the server of a URL:
// it listens on 127.0.0.1 at a free port, trusts every connection, and
// pools the connections of each user to the URL's database in its mode
// ("session", "transaction" or "statement"). It is stopped when the test
// ends, and when the test's process ends without its cleanups
// (Pdeathsig). As root, it runs as the OS user nobody (pgbouncer refuses
// to run as root).
type Bouncer struct {
	// URL is the URL given to NewBouncer, with the bouncer's host and
	// port in place of the server's.
	URL string

	t   ClusterTB
	cmd *exec.Cmd
	log *syncBuffer
}

// NewBouncer starts a PgBouncer in mode in front of url's server and
// database, for the users named (pgbouncer's auth_file lists them; url's
// user first), with settings (each "name = value", added to its
// [pgbouncer] section), and returns it once it accepts connections. It
// skips the test when pgbouncer is not installed, or on a system that is
// not Unix (Windows). pgbouncer is killed when the test ends and, on Linux
// and FreeBSD, when the test's process ends without its cleanups.
func NewBouncer(t ClusterTB, url, mode string, users []string, settings ...string) *Bouncer {
	t.Helper()
	if !unixSystem {
		t.Skipf("pgtest: PgBouncer tests need a Unix system, not %s", runtime.GOOS)
	}
	bin := os.Getenv(EnvPgBouncer)
	if bin == "" {
		bin, _ = exec.LookPath("pgbouncer")
	}
	if bin == "" {
		bin = "/usr/sbin/pgbouncer"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("pgtest: PgBouncer tests need pgbouncer (on the PATH, in /usr/sbin, or named by %s; apt-get install pgbouncer): %v", EnvPgBouncer, err)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("pgtest: bouncer: %v", err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgtest: bouncer: %v", err)
	}
	var cred *osUser
	if me, err := user.Current(); err == nil && me.Uid == "0" {
		// pgbouncer refuses to run as root. Its own -u would drop root
		// after the start, and with it the parent-death signal: a test
		// killed before its cleanups would leave it running.
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("pgtest: pgbouncer, as root, runs as the OS user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cred = &osUser{uid: uint32(uid), gid: uint32(gid)}
	}
	// Its own directory, which nobody may read: the testing package's
	// are 0700.
	dir, err := os.MkdirTemp("", "poolq-pgbouncer-")
	if err != nil {
		t.Fatalf("pgtest: bouncer: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("pgtest: bouncer: %v", err)
	}
	port := freePort(t)
	db := strings.TrimPrefix(u.Path, "/")
	var auth strings.Builder
	for _, name := range append([]string{cfg.User}, users...) {
		fmt.Fprintf(&auth, "%q \"\"\n", name)
	}
	ini := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
default_pool_size = 20
max_client_conn = 500
`, db, cfg.Host, cfg.Port, db, port, filepath.Join(dir, "users.txt"), mode)
	ini += strings.Join(settings, "\n") + "\n"
	for name, text := range map[string]string{"users.txt": auth.String(), "pgbouncer.ini": ini} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatalf("pgtest: bouncer: %v", err)
		}
	}
	b := &Bouncer{t: t, log: &syncBuffer{}}
	b.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	// Pdeathsig (Linux, FreeBSD), set after the credentials, is sent when
	// the thread that started pgbouncer ends, at the latest with the
	// test's process.
	b.cmd.SysProcAttr = sysProcAttr(cred, syscall.SIGKILL)
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("pgtest: bouncer: start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-done
	})
	u.Host = fmt.Sprintf("127.0.0.1:%d", port)
	b.URL = u.String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, b.URL)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return b
		}
		select {
		case <-done:
			t.Fatalf("pgtest: bouncer: pgbouncer exited at its start (%v):\n%s", b.cmd.ProcessState, b.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: bouncer: pgbouncer does not accept connections: %v\n%s", err, b.log)
		}
	}
}

// Log returns what pgbouncer logged so far.
func (b *Bouncer) Log() string { return b.log.String() }

// syncBuffer is a bytes.Buffer safe for a process's output and a test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
