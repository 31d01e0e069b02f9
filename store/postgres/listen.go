package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The listener carries the signals of every process's write transactions
// (NOTIFY on the schema's channel, sent with the commit, see txn.Signal) to
// the functions registered with Watch.
//
// One goroutine per Store runs it, while at least one function is
// registered: it holds a connection of its own (outside the pool, with
// idle_session_timeout off: see idleSessionOff), LISTENs,
// and calls every function with the pool of each notification. When the
// connection fails (the server restarted, the backend was terminated) it
// connects again, with a growing pause of at most reconnectMax. Signals
// sent while it was not listening are lost: each time it begins to listen
// it calls every function with uuid.Nil, so that every waiter looks again
// (the first time too: Open returns before the first LISTEN). A connection
// gone silent (no FIN, no RST: a NAT or firewall that dropped it) is found
// by a ping after Options.ListenerIdle without a notification, answered
// within listenPing, else the listener connects again.
//
// Invariant: running is true exactly while the goroutine runs; it is
// started by the Watch that registers the first function and stopped (and
// waited for) by the stop that removes the last one, or by Close.
type listener struct {
	s *Store

	// calling is held by deliver while it calls the functions: a stop
	// takes it after removing its function, so that it returns only once
	// a delivery that took the functions before is over.
	calling sync.Mutex

	mu      sync.Mutex
	fns     map[int]func(uuid.UUID)
	next    int
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// reconnectMax bounds the pause between two attempts to connect again;
// listenConnect bounds an attempt (connect and LISTEN); listenPing bounds
// the answer to the ping that checks a connection quiet for
// Options.ListenerIdle.
const (
	reconnectMax  = 2 * time.Second
	listenConnect = 10 * time.Second
	listenPing    = 5 * time.Second
)

func (l *listener) init(s *Store) { l.s = s }

// Watch calls fn with the pool of every committed signal of any process
// sharing the store's schema (this one included), until stop is called
// (see [store.Watcher]): stop returns once no call of fn is under way, and
// none comes after; it must not be called from a function of Watch. fn must be quick and safe for concurrent use: it
// runs on the listener's goroutine. Signals may be lost while the
// listener's connection is down; fn is called with uuid.Nil each time the
// listener begins to listen, first and again. After Close, Watch registers
// nothing.
func (s *Store) Watch(fn func(poolID uuid.UUID)) (stop func()) {
	l := &s.lis
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return func() {}
	}
	if l.fns == nil {
		l.fns = make(map[int]func(uuid.UUID))
	}
	id := l.next
	l.next++
	l.fns[id] = fn
	if !l.running {
		l.start()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.fns, id)
			var done chan struct{}
			if len(l.fns) == 0 && l.running {
				done = l.stop()
			}
			l.mu.Unlock()
			if done != nil {
				<-done // the listener is gone, and its deliveries
				return
			}
			// Others remain: a delivery under way may have taken fn
			// before it was removed.
			l.calling.Lock()
			l.calling.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
		})
	}
}

// start starts the goroutine; l.mu is held.
func (l *listener) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.running, l.cancel, l.done = true, cancel, make(chan struct{})
	go l.run(ctx, l.done)
}

// stop stops the goroutine and returns the channel closed when it is gone;
// l.mu is held.
func (l *listener) stop() chan struct{} {
	l.running = false
	l.cancel()
	return l.done
}

// close stops the listener for good (Store.Close).
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	var done chan struct{}
	if l.running {
		done = l.stop()
	}
	l.mu.Unlock()
	if done != nil {
		<-done
	}
}

// run listens until ctx ends, connecting again after every failure.
func (l *listener) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	pause := 10 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		_ = l.listen(ctx)
		if time.Since(start) > 2*l.s.opts.ListenerIdle {
			pause = 10 * time.Millisecond // it had been up: try again at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, reconnectMax)
	}
}

// listenerAppName is the application_name of the listener's connection,
// so that it can be told apart in pg_stat_activity.
func (l *listener) appName() string { return "poolq listener " + l.s.opts.Schema }

// listen runs one connection: LISTEN, then deliver notifications until the
// connection fails or ctx ends.
func (l *listener) listen(ctx context.Context) error {
	cfg := l.s.connCfg.Copy()
	cfg.RuntimeParams["application_name"] = l.appName()
	cctx, cancel := context.WithTimeout(ctx, listenConnect)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Idle between notifications by design: a role's idle_session_timeout
	// must not end it (see idleSessionOff). One round trip: LISTEN first,
	// as pg_stat_activity shows the session's last query.
	sql := "LISTEN " + pgx.Identifier{l.s.channel}.Sanitize()
	if off := idleSessionOff(conn.PgConn().ParameterStatus("server_version")); off != "" {
		sql += "; " + off
	}
	if _, err := conn.Exec(cctx, sql); err != nil {
		return err
	}
	l.deliver(uuid.Nil) // listening: what was sent before may have been missed
	for {
		wctx, cancel := context.WithTimeout(ctx, l.s.opts.ListenerIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && wctx.Err() != nil {
			// Quiet for ListenerIdle: is anyone still there?
			pctx, cancel := context.WithTimeout(ctx, listenPing)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if id, err := uuid.Parse(n.Payload); err == nil && id != uuid.Nil { // else not poolq's
			l.deliver(id)
		}
	}
}

// deliver calls every registered function with id.
func (l *listener) deliver(id uuid.UUID) {
	l.calling.Lock()
	defer l.calling.Unlock()
	l.mu.Lock()
	fns := make([]func(uuid.UUID), 0, len(l.fns))
	for _, fn := range l.fns {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(id)
	}
}
