package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/stretchr/testify/require"
)

// TestRun_TimeoutWhileWaitingForSetup: a dialer whose -timeout ends while
// it waits for the setup lock (another dialer on the database setting up)
// stops before it has dialled anything, and says so as the README's
// "Supervisors" documents: "not finished: context deadline exceeded".
func TestRun_TimeoutWhileWaitingForSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dialer.db")
	unlock, err := opendb.Lock(ctx, db, "dialer-setup") // another dialer, setting up
	require.NoError(t, err)
	defer unlock()

	var out bytes.Buffer
	start := time.Now()
	err = run(ctx, []string{"-db", db, "-contacts", "30", "-workers", "2", "-timeout", "300ms"}, &out, &out)
	require.Less(t, time.Since(start), 30*time.Second, "-timeout is not honoured while waiting for the lock")
	require.EqualError(t, err, "not finished: context deadline exceeded", "output: %s", out.String())
}

// TestParse_RejectsBadFlags: flags the dialer cannot run with are refused
// by parse, with an error naming the flag, before it opens the database:
// a -timeout of zero or less (it would fail at once, inside the store's
// open, with "context deadline exceeded"), more workers than Work takes
// (refused only after setup had created the pools, added the contacts
// and started the campaign), and a stray argument (`dialer my.db` dialled
// poolq-dialer.db).
func TestParse_RejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-timeout", "0"},
		{"-timeout", "-5s"},
		{"-workers", "10001"},
		{"-contacts", "2"},
		{"-contacts", "1000001"},
		{"-contacts", "9000000000000000000"}, // panicked in make, after the first pool was written
		{"my.db"},
	} {
		var out bytes.Buffer
		_, err := parse(args, &out)
		require.Error(t, err, "%q", args)
		flag := args[0]
		if flag[0] != '-' {
			flag = "argument"
		}
		require.ErrorContains(t, err, flag, "%q", args)
	}
	_, err := parse([]string{"-workers", "10000", "-timeout", "1s"}, &bytes.Buffer{})
	require.NoError(t, err)
}

// TestMain_Help: -h prints the usage and exits 0, as a Go program's flags
// do by default (a supervisor's or a script's `dialer -h` is no failure);
// a bad flag exits 2, with its usage, and no "dialer:" error line repeated.
// Both go to stderr, as the flag package's default does, and stdout stays
// empty: stdout is the dialer's report, which a script may read.
func TestMain_Help(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args string
		code int
	}{
		{"-h", 0},
		{"-help", 0},
		{"-no-such-flag", 2},
		{"-workers x", 2},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "POOLQ_DIALER_ARGS="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tc.code, code, "%s: stdout: %s\nstderr: %s", tc.args, &stdout, &stderr)
		require.Empty(t, stdout.String(), "%s: stdout", tc.args)
		require.Contains(t, stderr.String(), "Usage of dialer", tc.args)
		require.NotContains(t, stderr.String(), "dialer: flag", tc.args)
	}
}
