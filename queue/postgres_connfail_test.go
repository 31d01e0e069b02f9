package queue_test

// The PostgreSQL store under connection failures, through a TCP proxy in
// front of the server (faultProxy): a commit whose reply is lost, a
// connection that goes silent.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// faultProxy is a TCP proxy in front of PostgreSQL that fails on demand:
//
//   - cutCommit: the first server reply that carries a COMMIT command tag
//     (the server has committed) is swallowed and both sides of that
//     connection are closed, as on a network cut at that moment;
//   - holdCommit: the same reply is swallowed and that connection forwards
//     nothing more either way, but stays open (no FIN, no RST);
//   - downOnCut: at cutCommit's cut, every connection is closed and new
//     ones are refused from then on (the server unreachable);
//   - fatalCommit: the first server reply that carries a COMMIT command tag
//     is forwarded up to that tag, followed by the FATAL error of a
//     terminated backend (57P01) instead of the rest (ReadyForQuery), and
//     the connection is closed: what the server sends when its backend is
//     terminated (pg_terminate_backend) after it committed and before it
//     read the batch's Sync (it checks for that after each message);
//   - frozen: nothing is forwarded either way on any connection and nothing
//     is closed, and new connections are accepted and never answered, as a
//     partition or a database host that lost power.
//
// Its cleanup closes everything and waits for its goroutines.
type faultProxy struct {
	ln                    net.Listener
	dst                   string
	cutCommit, holdCommit atomic.Bool
	fatalCommit           atomic.Bool
	downOnCut, frozen     atomic.Bool
	refuse                atomic.Bool // set by downOnCut
	cuts                  atomic.Int32
	refused               atomic.Int32 // connections refused while refuse is set

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFaultProxy(t *testing.T, dst string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{ln: ln, dst: dst}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// close closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *faultProxy) close() {
	p.ln.Close()
	p.closeConns()
	p.wg.Wait()
}

func (p *faultProxy) closeConns() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *faultProxy) track(c ...net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c...)
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			p.refused.Add(1)
			c.Close()
			continue
		}
		p.track(c)
		if p.frozen.Load() {
			continue // accepted, never answered
		}
		s, err := net.Dial("tcp", p.dst)
		if err != nil {
			c.Close()
			continue
		}
		p.track(s)
		held := new(atomic.Bool) // this connection's reply to COMMIT was held
		p.wg.Add(2)
		go p.pipe(s, c, held, false)
		go p.pipe(c, s, held, true)
	}
}

// pipe copies src to dst until either fails; fromServer marks the
// server's replies, which the commit faults watch.
func (p *faultProxy) pipe(dst, src net.Conn, held *atomic.Bool, fromServer bool) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && fromServer && !held.Load() && bytes.Contains(buf[:n], []byte("COMMIT\x00")) {
			switch {
			case p.cutCommit.CompareAndSwap(true, false):
				p.cuts.Add(1)
				src.Close()
				if p.downOnCut.Load() {
					p.refuse.Store(true)
					p.closeConns()
				}
				return
			case p.holdCommit.CompareAndSwap(true, false):
				p.cuts.Add(1)
				held.Store(true)
			case p.fatalCommit.CompareAndSwap(true, false):
				p.cuts.Add(1)
				end := bytes.Index(buf[:n], []byte("COMMIT\x00")) + len("COMMIT\x00")
				_, _ = dst.Write(append(buf[:end:end], fatalTerminated()...))
				src.Close()
				return
			}
		}
		if n > 0 && !held.Load() && !p.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fatalTerminated is the ErrorResponse message of a backend that
// pg_terminate_backend ended.
func fatalTerminated() []byte {
	var body []byte
	for _, f := range [][2]string{{"S", "FATAL"}, {"V", "FATAL"}, {"C", "57P01"}, {"M", "terminating connection due to administrator command"}} {
		body = append(append(append(body, f[0]...), f[1]...), 0)
	}
	body = append(body, 0)
	n := len(body) + 4
	return append([]byte{'E', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// proxiedStore opens a store through a new faultProxy, in a schema made
// and dropped over the direct URL (the proxy may be failing by then).
func proxiedStore(t *testing.T, opts postgres.Options) (*faultProxy, *postgres.Store) {
	t.Helper()
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	px := newFaultProxy(t, u.Host)
	opts.Schema = pgtest.Schema(t, raw)
	u.Host = px.ln.Addr().String()
	st := pgtest.OpenSchema(t, u.String(), opts)
	// Close the proxy before the store: closing a connection waits for the
	// server's goodbye, which a silenced one never sends (pgxpool gives up
	// after 15 s); a closed one answers at once.
	t.Cleanup(px.close)
	return px, st
}

// proxiedFIFO opens an engine with opts over a proxied store, and a FIFO
// pool (max_retries maxRetries, nil for the default) holding one contact:
// the set-up of the tests whose commit replies go missing. It returns the
// proxy, the engine, the pool and the contact.
func proxiedFIFO(t *testing.T, opts queue.Options, maxRetries *int) (*faultProxy, *queue.Engine, pool.Pool, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	px, st := proxiedStore(t, connFailOptions)
	eng, err := queue.New(st, opts)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "lost", Description: "commit reply lost", Type: pool.FIFO, MaxRetries: maxRetries})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)
	return px, eng, p, c
}

// connFailOptions has a short LockTimeout, so that a round trip's bound
// (LockTimeout and a margin of 5 s) is short.
var connFailOptions = postgres.Options{MaxConns: 2, LockTimeout: 500 * time.Millisecond}

// connFailWait is how long a test waits for a call that a failure must
// not hang: the round trip's bound, then the outcome's asking (5 s), with
// room for a loaded machine.
const connFailWait = 30 * time.Second

// within runs f and returns its error, or fails the test when f has not
// returned after connFailWait; release then unblocks it (so that the test
// ends).
func within(t *testing.T, what string, release func(), f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Logf("%s returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(connFailWait):
		release()
		<-done
		t.Fatalf("%s still blocked %v after the failure", what, connFailWait)
		return nil
	}
}

// TestPostgres_CommitReplyLost: the reply to a write's COMMIT is lost
// after the server committed: the connection is cut (EOF), or goes silent
// (the round trip's bound ends it). The store asks another connection
// what became of the transaction, finds it committed, and the call
// succeeds with its real result: the claim's lease is handed out (learned
// seconds late, after a silence, it is given back and the item claimed
// again: see TestPostgres_LateClaimGivesItsLeasesBack; a claim
// failing here would leave the item Processing under a lease nobody holds,
// to end Failed without a call), the Complete returns nil (else its caller
// could never learn it went through: trying again gets ErrLeaseLost).
func TestPostgres_CommitReplyLost(t *testing.T) {
	for _, silent := range []bool{false, true} {
		name := map[bool]string{false: "Cut", true: "Silent"}[silent]
		arm := func(px *faultProxy) {
			if silent {
				px.holdCommit.Store(true)
			} else {
				px.cutCommit.Store(true)
			}
		}
		t.Run(name+"/Claim", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, new(0))

			arm(px)
			var l *queue.Lease
			err := within(t, "TryDequeue", px.close, func() (err error) { l, err = eng.TryDequeue(ctx, p.UUID); return err })
			require.EqualValues(t, 1, px.cuts.Load(), "the proxy lost the claim's commit reply")
			require.NoError(t, err, "the claim committed: its caller gets the lease")
			require.Equal(t, c, l.ContactUUID)
			it, err := eng.Item(ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, pool.StatusProcessing, it.Status)
			require.Equal(t, 1, it.Attempts)
			require.NoError(t, eng.Complete(ctx, l, "answered"), "the lease handed out is the item's")
		})
		t.Run(name+"/Complete", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, nil)
			l, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)

			arm(px)
			err = within(t, "Complete", px.close, func() error { return eng.Complete(ctx, l, "answered") })
			require.EqualValues(t, 1, px.cuts.Load(), "the proxy lost the settlement's commit reply")
			require.NoError(t, err, "the Complete committed: its caller learns so")
			it, err := eng.Item(ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, pool.StatusCompleted, it.Status)
		})
	}
}

// TestPostgres_CommitOutcomeUnknown: the reply to a Complete's COMMIT is
// lost and the database is unreachable from then on: the store cannot
// learn the outcome, and says so (store.ErrCommitUnknown) rather than
// return an error that reads as nothing done.
func TestPostgres_CommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, eng, p, _ := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, nil)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	px.downOnCut.Store(true)
	px.cutCommit.Store(true)
	err = within(t, "Complete", px.close, func() error { return eng.Complete(ctx, l, "answered") })
	require.EqualValues(t, 1, px.cuts.Load())
	require.ErrorIs(t, err, store.ErrCommitUnknown)
	require.NoError(t, within(t, "Close", px.close, func() error { eng.Close(); return nil }))
}

// TestPostgres_ClaimOutcomeUnknown: the reply to a claim's COMMIT is lost
// (the server committed) and the database is unreachable from then on, so
// TryDequeue returns store.ErrCommitUnknown and hands out no lease. The
// engine gives the claim's lease back once the database answers again:
// the item is due at once, unattempted, rather than Processing under a
// lease nobody holds until its end, then Failed (max_retries 0) without a
// call.
func TestPostgres_ClaimOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, new(0))

	px.downOnCut.Store(true)
	px.cutCommit.Store(true)
	err := within(t, "TryDequeue", px.close, func() error { _, err := eng.TryDequeue(ctx, p.UUID); return err })
	require.EqualValues(t, 1, px.cuts.Load(), "the proxy lost the claim's commit reply")
	require.ErrorIs(t, err, store.ErrCommitUnknown)

	// While the database is down, the give-back asks it ever less often,
	// not every 250 ms for the lease's length: in 6 s, 5 tries (250 ms,
	// 500 ms, 1 s, 2 s apart) rather than 24. Measured: 16 connections
	// refused (6 of them the listener's, once a second), 54 with a fixed
	// pause.
	before := px.refused.Load()
	time.Sleep(6 * time.Second)
	refused := px.refused.Load() - before
	t.Logf("%d connections refused in 6 s", refused)
	require.Less(t, refused, int32(30), "the give-back asked a database that is down too often")

	px.refuse.Store(false) // the database answers again, long before the lease ends
	var it pool.Item
	require.Eventually(t, func() bool {
		it, err = eng.Item(ctx, p.UUID, c)
		return err == nil && it.Status != pool.StatusProcessing
	}, 10*time.Second, 20*time.Millisecond, "the claim's lease was not given back")
	require.Equal(t, pool.StatusPending, it.Status, "given back, due at once")
	require.Zero(t, it.Attempts, "given back unattempted")
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, c, l.ContactUUID)
	require.Equal(t, 1, l.Attempt, "the first call of the contact")
}

// TestPostgres_SilentConnection: the database goes silent (no FIN, no RST:
// a partition, a host that lost power) while this node writes. A Complete
// whose caller gives it a second returns within the round trip's bound,
// not after TCP gives up (many minutes, the engine's one write goroutine
// stuck meanwhile, every write of the node behind it, Close too), with an
// error; once the database answers again, the same Complete goes through.
func TestPostgres_SilentConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, st := proxiedStore(t, connFailOptions)
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "silent connection", Type: pool.Parallel})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	px.frozen.Store(true)
	err = within(t, "Complete", px.close, func() error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return eng.Complete(cctx, l, "answered")
	})
	require.Error(t, err, "nothing reached the database")
	require.NotErrorIs(t, err, store.ErrCommitUnknown, "the commit was never sent")

	px.frozen.Store(false) // new connections pass again; the frozen ones stay dead
	require.NoError(t, within(t, "Complete again", px.close, func() error { return eng.Complete(ctx, l, "answered") }))
	it, err := eng.Item(ctx, p.UUID, l.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status)

	px.frozen.Store(true)
	require.NoError(t, within(t, "Close while silent", px.close, func() error { eng.Close(); return st.Close() }))
}

// TestPostgres_LateClaimGivesItsLeasesBack: a claim whose COMMIT's answer
// is withheld (a silent connection) is learned committed only after the
// round trip's bound and the outcome check, seconds after it was judged.
// Its leases are not handed out then: one may have ended meanwhile (its
// item expired and called again), or the calling window it was judged in
// may have closed. They are given back, and the pool looked at again.
func TestPostgres_LateClaimGivesItsLeasesBack(t *testing.T) {
	t.Parallel()

	t.Run("EndedLease", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: 2 * time.Second, RetryDelay: time.Hour, PollInterval: 20 * time.Millisecond}, nil)

		px.holdCommit.Store(true)
		var l *queue.Lease
		err := within(t, "TryDequeue", px.close, func() (err error) { l, err = eng.TryDequeue(ctx, p.UUID); return err })
		require.EqualValues(t, 1, px.cuts.Load())
		require.ErrorIs(t, err, queue.ErrEmpty, "no lease handed out (got %v)", l)
		it, err := eng.Item(ctx, p.UUID, c)
		require.NoError(t, err)
		require.Equal(t, pool.StatusRetrying, it.Status, "the lease ended before it was learned: its expiry counts")
	})

	t.Run("WindowClosed", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		px, st := proxiedStore(t, connFailOptions)
		// The engine's clock runs from 11:00 UTC; the claim starts at
		// 12:29:58, two seconds before the rule's window closes.
		var off atomic.Int64
		off.Store(int64(time.Date(2026, 6, 10, 11, 0, 0, 0, time.UTC).Sub(time.Now())))
		now := func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
		eng, err := queue.New(st, queue.Options{PollInterval: 20 * time.Millisecond, Now: now})
		require.NoError(t, err)
		t.Cleanup(func() { eng.Close() })
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "window", Description: "late claim", Type: pool.FIFO})
		require.NoError(t, err)
		r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "noon", StartTime: new("12:00"), EndTime: new("12:30")})
		require.NoError(t, err)
		cp, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "window campaign", RuleUUID: &r.UUID, TimeZone: "UTC"})
		require.NoError(t, err)
		_, err = eng.AttachPools(ctx, cp.UUID, p.UUID)
		require.NoError(t, err)
		_, err = eng.StartCampaign(ctx, cp.UUID)
		require.NoError(t, err)
		c := uuid.New()
		_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
		require.NoError(t, err)

		end := time.Date(2026, 6, 10, 12, 30, 0, 0, time.UTC)
		off.Store(int64(end.Add(-2 * time.Second).Sub(time.Now())))
		px.holdCommit.Store(true)
		var l *queue.Lease
		err = within(t, "TryDequeue", px.close, func() (err error) { l, err = eng.TryDequeue(ctx, p.UUID); return err })
		require.EqualValues(t, 1, px.cuts.Load())
		require.True(t, now().After(end), "the claim was learned after the window closed")
		require.ErrorIs(t, err, queue.ErrEmpty, "no lease handed out after the window closed (got %v)", l)
		it, err := eng.Item(ctx, p.UUID, c)
		require.NoError(t, err)
		require.Equal(t, pool.StatusScheduled, it.Status, "given back, then met outside the window")
		require.Zero(t, it.Attempts, "given back unattempted")
		require.Equal(t, time.Date(2026, 6, 11, 12, 0, 0, 0, time.UTC), *it.NextRetryAt)
	})
}

// TestPostgres_TerminatedAfterCommit: the backend of a write is
// terminated (pg_terminate_backend) after its COMMIT, before the end of
// the round trip: the reply carries the COMMIT's tag, then the FATAL error
// of the terminated backend. The transaction committed, so the call
// succeeds: the claim hands out its lease (else the item stays Processing
// under a lease nobody holds, to come back at its end as a failed attempt
// without a call), the Complete returns nil (else trying again gets
// ErrLeaseLost, for a call that was written).
func TestPostgres_TerminatedAfterCommit(t *testing.T) {
	t.Parallel()
	t.Run("Claim", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, new(0))
		px.fatalCommit.Store(true)
		var l *queue.Lease
		err := within(t, "TryDequeue", px.close, func() (err error) { l, err = eng.TryDequeue(ctx, p.UUID); return err })
		require.EqualValues(t, 1, px.cuts.Load(), "the proxy ended the claim's connection after its COMMIT")
		require.NoError(t, err, "the claim committed: its caller gets the lease")
		require.Equal(t, c, l.ContactUUID)
		require.NoError(t, eng.Complete(ctx, l, "answered"), "the lease handed out is the item's")
	})
	t.Run("Complete", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		px, eng, p, c := proxiedFIFO(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}, nil)
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		px.fatalCommit.Store(true)
		err = within(t, "Complete", px.close, func() error { return eng.Complete(ctx, l, "answered") })
		require.EqualValues(t, 1, px.cuts.Load(), "the proxy ended the settlement's connection after its COMMIT")
		require.NoError(t, err, "the Complete committed: its caller learns so")
		it, err := eng.Item(ctx, p.UUID, c)
		require.NoError(t, err)
		require.Equal(t, pool.StatusCompleted, it.Status)
	})
}

// TestPostgres_SilentAtRollback: the connection goes silent after a
// transaction's last statement, before its ROLLBACK. The call still ends
// when its caller stops waiting, as its statements would: a Read when its
// context ends (reads are bounded by their caller's context only), a
// Write of one caller with a wait bound 100 ms after that bound. The
// ROLLBACK's round trip was bounded by neither: a Read's by nothing (TCP
// gives up after many minutes), a Write's by the round trip's bound (5.5
// s here, 60 s by default). Cutting it costs only the connection, whose
// end ends the transaction on the server.
func TestPostgres_SilentAtRollback(t *testing.T) {
	t.Parallel()

	t.Run("Read", func(t *testing.T) {
		t.Parallel()
		px, st := proxiedStore(t, connFailOptions)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := within(t, "Read", px.close, func() error {
			return st.Read(ctx, func(tx store.Tx) error {
				if _, err := tx.Pool(ctx, uuid.New()); !errors.Is(err, store.ErrNotFound) {
					return err
				}
				px.frozen.Store(true) // silent from here: the ROLLBACK gets no answer
				return nil
			})
		})
		require.NoError(t, err, "fn's own result")
		d, _ := ctx.Deadline()
		require.Less(t, time.Since(d), time.Second, "held by the silent connection past its context's end")
	})

	t.Run("Write", func(t *testing.T) {
		t.Parallel()
		px, st := proxiedStore(t, connFailOptions)
		bound := time.Now().Add(time.Second)
		ctx := store.WithWaitBound(context.Background(), bound)
		err := within(t, "Write", px.close, func() error {
			return st.Write(ctx, func(tx store.Tx) error {
				_, err := tx.Pool(ctx, uuid.New()) // answered: the transaction has begun
				px.frozen.Store(true)              // silent from here: the ROLLBACK gets no answer
				return err
			})
		})
		require.ErrorIs(t, err, store.ErrNotFound, "fn's own error")
		require.Less(t, time.Since(bound), time.Second, "held by the silent connection past the caller's bound")
	})
}
