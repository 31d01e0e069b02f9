package postgres_test

// Tests of the listener (listen.go) and of the channel its signals travel
// on, written in a mutation review (2026-12-07): each kills a plausible bug the other
// tests let through.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// signalOn commits a transaction on st that signals id.
func signalOn(t *testing.T, st *postgres.Store, id uuid.UUID) {
	t.Helper()
	require.NoError(t, st.Write(context.Background(), func(tx store.Tx) error {
		tx.(store.Signaler).Signal(id)
		return nil
	}))
}

// TestWatch_LooksAgainOnlyOnceListening: the listener calls its
// functions with uuid.Nil (look again) only once its LISTEN is in effect:
// a signal committed by another store while the function handles that
// uuid.Nil arrives. (A uuid.Nil given before the LISTEN leaves a window in
// which a waiter has looked and a signal is lost.)
func TestWatch_LooksAgainOnlyOnceListening(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	id := uuid.New()
	got := make(chan uuid.UUID, 16)
	wrote := make(chan error, 1)
	var once sync.Once
	stop := a.Watch(func(x uuid.UUID) {
		if x == uuid.Nil {
			// The waiter has looked; another node commits now, before
			// the listener goes on.
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				wrote <- b.Write(ctx, func(tx store.Tx) error { tx.(store.Signaler).Signal(id); return nil })
			})
		}
		got <- x
	})
	defer stop()
	listening(t, got)
	select {
	case err := <-wrote:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the other store's write did not end")
	}
	select {
	case x := <-got:
		require.Equal(t, id, x, "the signal committed while the listener said it listens")
	case <-time.After(5 * time.Second):
		t.Fatal("a signal committed after the listener said it listens was lost")
	}
}

// TestWatch_StopAndCloseWaitForTheListener: stop (of the last watcher)
// and Close return only once the listener is gone: not while it is
// calling a function (after they return, no function is called, see
// store.Watcher).
func TestWatch_StopAndCloseWaitForTheListener(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := pgtest.Open(t, url, postgres.Options{})
	for _, how := range []string{"stop", "Close"} {
		sig := uuid.New()
		got := make(chan uuid.UUID, 16)
		entered, release := make(chan struct{}), make(chan struct{})
		stop := st.Watch(func(x uuid.UUID) {
			if x == sig {
				close(entered)
				<-release // the function is slow
			}
			got <- x
		})
		listening(t, got)
		signalOn(t, st, sig)
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the signal did not arrive", how)
		}
		ended := make(chan struct{})
		go func() {
			if how == "stop" {
				stop()
			} else {
				_ = st.Close()
			}
			close(ended)
		}()
		select {
		case <-ended:
			close(release)
			t.Fatalf("%s returned while the listener was calling a function", how)
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return once the function had", how)
		}
		stop()
	}
}

// TestWatch_SchemasApart: the stores of two schemas on one database do
// not hear each other's signals: the channel is the schema's, short
// schema names and long ones (63 bytes, the most, with the same first 62)
// alike.
func TestWatch_SchemasApart(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	base := pgtest.Schema(t, url)
	long := base + strings.Repeat("x", 62-len(base))
	t.Cleanup(func() { pgtest.Drop(t, url, long+"a"); pgtest.Drop(t, url, long+"b") })
	for _, pair := range [][2]string{{base, pgtest.Schema(t, url)}, {long + "a", long + "b"}} {
		a := pgtest.OpenSchema(t, url, postgres.Options{Schema: pair[0]})
		b := pgtest.OpenSchema(t, url, postgres.Options{Schema: pair[1]})
		got := make(chan uuid.UUID, 16)
		stop := a.Watch(func(id uuid.UUID) { got <- id })
		listening(t, got)
		other, own := uuid.New(), uuid.New()
		signalOn(t, b, other)
		signalOn(t, a, own)
		require.Equal(t, []uuid.UUID{own}, watched(t, got), "schema %s hears only its own signals", pair[0])
		stop()
	}
}

// watched waits up to 5 s for a signal on got, then collects what else
// arrives in the next 300 ms, uuid.Nil included.
func watched(t *testing.T, got <-chan uuid.UUID) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	select {
	case id := <-got:
		ids = append(ids, id)
	case <-time.After(5 * time.Second):
		t.Fatal("no signal arrived")
	}
	more := time.After(300 * time.Millisecond)
	for {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-more:
			return ids
		}
	}
}

// TestWatch_QuietListenerKeepsItsConnection: a listener that hears
// nothing sends nothing until ListenerIdle (here 15 s): 13 s after it
// listens (past listenConnect, 10 s, the bound of its connect and LISTEN)
// its session's last statement is still the LISTEN; and at 15 s its ping,
// answered, keeps the connection: 20 s after, the same server process
// listens, its last statement the ping, no second uuid.Nil came (no
// reconnect), and a signal arrives.
func TestWatch_QuietListenerKeepsItsConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of quiet: -short leaves it out")
	}
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	const idle = 15 * time.Second
	st := pgtest.Open(t, url, postgres.Options{ListenerIdle: idle})
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	session := func() (pid int, query string) {
		t.Helper()
		require.NoError(t, conn.QueryRow(ctx, `SELECT pid, query FROM pg_stat_activity WHERE application_name = $1`,
			"poolq listener "+st.Schema()).Scan(&pid, &query))
		return pid, query
	}
	got := make(chan uuid.UUID, 1024)
	stop := st.Watch(func(id uuid.UUID) { got <- id })
	defer stop()
	listening(t, got)
	t0 := time.Now()
	pid, query := session()
	require.True(t, strings.HasPrefix(query, "LISTEN "), "the listener's last statement: %q", query)

	time.Sleep(13*time.Second - time.Since(t0))
	pid13, query13 := session()
	require.Equal(t, pid, pid13, "the listener's session at 13 s")
	require.True(t, strings.HasPrefix(query13, "LISTEN "), "the quiet listener sent %q before listenIdle", query13)

	time.Sleep(idle + 5*time.Second - time.Since(t0))
	pid20, query20 := session()
	require.Equal(t, pid, pid20, "the listener's session at 20 s: a ping answered keeps it")
	require.Equal(t, "-- ping", query20, "the quiet listener's last statement at 20 s")
	select {
	case id := <-got:
		t.Fatalf("the quiet listener was called with %s (a second uuid.Nil: it connected again)", id)
	default:
	}
	id := uuid.New()
	signalOn(t, st, id)
	select {
	case x := <-got:
		require.Equal(t, id, x)
	case <-time.After(5 * time.Second):
		t.Fatal("the signal did not arrive")
	}
}

// TestWatch_StopWaitsForACallUnderWay: a watcher's stop, when others
// remain, returns only once a delivery under way is over, which may call
// its function: after stop returns, its function is never called (see
// store.Watcher). Before, only the last watcher's stop waited (for the
// listener's end); another's returned at once, and the delivery that had
// taken the functions before it could call it afterwards.
func TestWatch_StopWaitsForACallUnderWay(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := pgtest.Open(t, url, postgres.Options{})
	id := uuid.New()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	gotA := make(chan uuid.UUID, 16)
	stopA := st.Watch(func(x uuid.UUID) {
		if x == id {
			once.Do(func() { close(entered); <-release }) // a slow function, called first or second
		}
		gotA <- x
	})
	defer stopA()
	releaseA := sync.OnceFunc(func() { close(release) })
	defer releaseA() // before stopA, on every way out: A's stop waits for the listener
	var stopped, calledAfter atomic.Bool
	gotB := make(chan uuid.UUID, 16)
	stopB := st.Watch(func(x uuid.UUID) {
		if stopped.Load() {
			calledAfter.Store(true)
		}
		gotB <- x
	})
	listening(t, gotA)

	signalOn(t, st, id)
	select {
	case <-entered: // the delivery of id is under way, held in A's function
	case <-time.After(10 * time.Second):
		t.Fatal("the signal was not delivered")
	}
	stopDone := make(chan struct{})
	go func() {
		stopB()
		stopped.Store(true)
		close(stopDone)
	}()
	select {
	case <-stopDone:
		t.Fatal("B's stop returned while a delivery that may call B's function was under way")
	case <-time.After(300 * time.Millisecond):
	}
	releaseA()
	select {
	case <-stopDone:
	case <-time.After(10 * time.Second):
		t.Fatal("B's stop did not return once the delivery was over")
	}
	signalOn(t, st, uuid.New()) // delivered to A alone
	for {
		select {
		case x := <-gotA:
			if x != id && x != uuid.Nil {
				require.False(t, calledAfter.Load(), "B's function was called after its stop returned")
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the second signal was not delivered")
		}
	}
}
