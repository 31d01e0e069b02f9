// Command dialer is poolq embedded in a (simulated) outbound dialer.
//
// It opens or creates an SQLite file, makes a FIFO, a LIFO and a Parallel
// pool, adds contacts with priorities and a JSON payload (the phone number;
// -contacts counts the items, and every tenth item of a pool is one person
// in all three pools), attaches the pools to a campaign whose contact rule
// allows two calls per contact (the pools' own max_retries 2 would allow
// three: the rule's ceiling takes precedence), starts the campaign, and
// dials its pools through queue.Engine.Work: calls are answered, busy, not
// answered (both retried) or wrong numbers (failed for good), with short
// random durations. It prints live progress per pool and ends with the
// status counts, the most calls any contact got, and the throughput.
//
// The rule's other checks are exercised too: two demo contacts are put on
// the do-not-call list before dialling (dispatch skips them), a third opts
// out just after the first call (its waiting item is skipped at once), and
// the rule escalates an item after two failed calls, which the demo follows
// with queue.Engine.WatchEscalations. The summary counts each.
//
// The rule's retry interval is in minutes, the API's unit; the demo runs in
// seconds, so its handler names each callback's time itself
// (queue.RetryAt), which the rule's ceiling still caps.
//
// Run it twice: the second run finds the pools and contacts in the file
// (contact UUIDs derive from the seed) and resumes instead of duplicating
// them.
//
//	go run ./examples/dialer                 # poolq-dialer.db, 3000 items (2800 contacts)
//	go run ./examples/dialer -contacts 300 -workers 8 -seed 7 -db /tmp/d.db
//	go run ./examples/dialer -db 'postgres://user:pw@host:5432/calls?schema=dialer'   # on PostgreSQL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
)

func main() {
	// Ctrl-C, or the SIGTERM of a service manager (systemd, Kubernetes):
	// stop dialling, let the calls in progress end (Grace), then cut the rest
	// short: a call that had not connected is given back, one that had is a
	// failed attempt, to be made again later. A second signal quits at once:
	// the calls under way then come back as after a kill, when their leases
	// end.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the default action again: the next signal ends the process
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var bad badFlags
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h: the usage is printed, and asking for it is no failure.
	case errors.As(err, &bad):
		os.Exit(2) // the flag package printed the error and the usage
	case err != nil:
		fmt.Fprintln(os.Stderr, "dialer:", err)
		os.Exit(1)
	}
}

// badFlags is the error of arguments the flag package refused: it has said
// why, with the usage, on stderr.
type badFlags struct{ error }

func (e badFlags) Unwrap() error { return e.error }

// maxContacts bounds -contacts: the demo builds each pool's items in
// memory (about 150 bytes each) before it adds them.
const maxContacts = 1_000_000

type config struct {
	db       string
	contacts int
	workers  int
	seed     uint64
	timeout  time.Duration
}

// parse reads the flags. The flag package writes its errors and the usage
// (-h) to errOut, stderr in main, as its default does.
func parse(args []string, errOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("dialer", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&c.db, "db", "poolq-dialer.db", "SQLite file (created if missing), or a PostgreSQL URL postgres://…")
	fs.IntVar(&c.contacts, "contacts", 3000, "items to load, split over the three pools; every tenth item of a pool is a contact in all three (3000 items: 2800 contacts)")
	fs.IntVar(&c.workers, "workers", 16, "dialer goroutines")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the contacts and of the simulated call outcomes")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, badFlags{err}
	}
	if c.contacts < 3 || c.contacts > maxContacts {
		return c, fmt.Errorf("-contacts must be 3 to %d (got %d)", maxContacts, c.contacts)
	}
	if c.workers < 1 || c.workers > queue.MaxWorkers {
		return c, fmt.Errorf("-workers must be 1 to %d (got %d)", queue.MaxWorkers, c.workers)
	}
	if c.timeout <= 0 {
		return c, fmt.Errorf("-timeout must be more than 0 (got %v)", c.timeout)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (the database is -db's)", fs.Arg(0))
	}
	return c, nil
}

// The pools the dialer keeps, by name.
var pools = []struct {
	name string
	typ  pool.Type
}{
	{"Renewals (FIFO)", pool.FIFO},
	{"Hot leads (LIFO)", pool.LIFO},
	{"Campaign blast (Parallel)", pool.Parallel},
}

// openStore opens the database; a test's seam (a store that fails some
// reads).
var openStore = opendb.Open

// progressPatience is how long the progress reads may fail in a row before
// the dialer gives up: a database that blinks (a PostgreSQL failover, a
// dropped connection) does not stop the calls, which Work goes on making.
const progressPatience = 10 * time.Second

// run is the dialer with the command line args: its progress and summary
// go to out, the flag package's errors and usage to errOut.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	cfg, err := parse(args, errOut)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	// A stop (signal or -timeout) before the dialling began (waiting for
	// another dialer's setup, or for the database) did not finish either.
	notFinished := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("not finished: %w", ctx.Err())
		}
		return err
	}

	st, err := openStore(ctx, cfg.db)
	if err != nil {
		return notFinished(err)
	}
	defer st.Close()
	eng, err := queue.New(st, queue.Options{
		// The calls of a dialer killed mid-run come back this long after
		// they began, as failed attempts (the runner extends a live
		// call's lease while it lasts); on PostgreSQL, the store's
		// LeaseGrace later (60 s by default: other nodes' clocks may
		// be behind this one's).
		LeaseTimeout: 10 * time.Second,
		// For pools no rule governs: a real dialer waits hours; the demo
		// waits a blink. Under the campaign's rule, its
		// retry_interval_minutes decides instead, expiries included.
		RetryDelay: 150 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer eng.Close()

	ids, dnc, camp, err := setup(ctx, eng, cfg, out)
	if err != nil {
		return notFinished(err)
	}
	escs, err := watchEscalations(ctx, eng, ids)
	if err != nil {
		return notFinished(err)
	}
	defer func() { _ = escs.close() }() // drained before the summary; this is for early returns

	var (
		mu     sync.Mutex
		rng    = rand.New(rand.NewPCG(cfg.seed, 0xd1a1))
		calls  atomic.Int64
		byKind sync.Map // queue.EventKind -> *atomic.Int64

		firstCall     = make(chan struct{}) // closed by the first call
		firstCallOnce sync.Once
		optOut        = optOutContact(cfg)
		optedOut      = -1 // items the opt-out skipped; -1: no opt-out this run
	)
	outcome := func() (float64, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64(), time.Duration(1+rng.IntN(6)) * time.Millisecond
	}
	dial := func(ctx context.Context, l *queue.Lease) error {
		calls.Add(1)
		firstCallOnce.Do(func() { close(firstCall) })
		roll, ring := outcome()
		if err := sleep(ctx, ring); err != nil {
			return err
		}
		switch {
		case roll < 0.05:
			return queue.Final(errors.New("wrong number"))
		case roll < 0.20:
			return queue.RetryAt(time.Now().Add(150*time.Millisecond), errors.New("busy"))
		case roll < 0.35:
			return queue.RetryAt(time.Now().Add(300*time.Millisecond), errors.New("no answer, call back later"))
		}
		// The contact picked up: recorded even if the dialer is stopping
		// this very moment (ctx cancelled), since a call that connected is
		// an attempt, and Work gives back only the calls that did not.
		if err := eng.MarkInCall(context.WithoutCancel(ctx), l); err != nil {
			return err
		}
		return sleep(ctx, 2*ring) // talking
	}
	onEvent := func(ev queue.Event) {
		v, _ := byKind.LoadOrStore(ev.Kind, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	workErr := make(chan error, 1)
	start := time.Now()
	go func() {
		workErr <- eng.Work(workCtx, dial, queue.WorkOptions{
			Campaigns: []uuid.UUID{camp}, Workers: cfg.workers, Grace: 5 * time.Second, OnEvent: onEvent,
		})
	}()

	optOutNow := (<-chan struct{})(firstCall) // nil once done
	prog := newProgress(out)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// stop stops Work and waits for it (its calls under way end and are
	// written) before the dialer returns err, or says it did not finish
	// when it was stopped (a signal may end a read of the loop too).
	stop := func(err error) error {
		stopWork()
		<-workErr
		if ctx.Err() != nil {
			return fmt.Errorf("not finished: %w", ctx.Err())
		}
		return err
	}
	var (
		details      []pool.Detail // the last read that succeeded
		failingSince time.Time     // the first of the reads failing in a row
	)
	for {
		switch d, err := snapshot(ctx, eng, ids); {
		case err == nil:
			failingSince = time.Time{}
			details = d
			prog.draw(details)
		case ctx.Err() != nil:
			return stop(nil)
		case failingSince.IsZero():
			failingSince = time.Now()
			prog.say("reading the progress failed, trying again: %v", err)
		case time.Since(failingSince) > progressPatience:
			return stop(fmt.Errorf("reading the progress failed for %v: %w", progressPatience, err))
		}
		if details != nil && allDone(details) && failingSince.IsZero() {
			break
		}
		select {
		case <-tick.C:
		case <-optOutNow:
			// A contact phones in to opt out while the dialer runs.
			optOutNow = nil
			if optedOut, err = eng.OptOut(ctx, optOut); err != nil {
				return stop(err)
			}
		case err := <-workErr:
			if err == nil {
				return errors.New("work stopped early")
			}
			return fmt.Errorf("work stopped early: %w", err)
		case <-ctx.Done():
			return stop(nil)
		}
	}
	stopWork()
	if err := <-workErr; err != nil {
		return err
	}
	elapsed := time.Since(start)
	prog.finish()
	// A stop (signal or -timeout) while the summary is read: every call
	// was made and written, only the reading stopped.
	cutShort := func(err error) error {
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("the dialling finished, its summary was cut short: %w", ctx.Err())
		}
		return err
	}
	most, err := mostAttempts(ctx, eng, ids)
	if err != nil {
		return cutShort(err)
	}
	rule, err := findRule(ctx, eng, ruleName) // as the database has it now
	if err != nil {
		return cutShort(err)
	}
	if rule == nil {
		return fmt.Errorf("rule %q: %w", ruleName, store.ErrNotFound)
	}
	report(out, details, calls.Load(), elapsed, &byKind)
	fmt.Fprintf(out, "most calls to one contact: %d (the rule's max_total_calls: %d)\n", most, rule.MaxTotalCalls)
	return cutShort(reportRules(ctx, out, eng, ids, dnc, optOut, optedOut, escs))
}

// The campaign and its rule, by name.
const (
	campaignName = "Dialer demo"
	ruleName     = "Two calls a contact"
	ruleCalls    = 2 // max_total_calls: below the pools' max_retries + 1

	// escalateAfter is the rule's escalation_after_failed_attempts: an
	// item whose two calls both failed is handed to a person.
	escalateAfter    = ruleCalls
	escalationType   = "callback"
	escalationTarget = "supervisor queue"
)

// setup finds or makes the pools, the do-not-call entries and the
// campaign, under a lock that every dialer on the database shares: each is
// found by name, then created if missing, in two transactions, so two
// dialers starting at once would each create their own (two pools of the
// same contacts in one campaign: every contact called by both).
func setup(ctx context.Context, eng *queue.Engine, cfg config, out io.Writer) (ids []uuid.UUID, dnc dncSetup, camp uuid.UUID, err error) {
	unlock, err := opendb.Lock(ctx, cfg.db, "dialer-setup")
	if err != nil {
		return nil, dncSetup{}, uuid.Nil, err
	}
	defer unlock()
	if ids, err = setupPools(ctx, eng, cfg, out); err != nil {
		return nil, dncSetup{}, uuid.Nil, err
	}
	if dnc, err = setupDNC(ctx, eng, cfg, out); err != nil {
		return nil, dncSetup{}, uuid.Nil, err
	}
	if camp, err = setupCampaign(ctx, eng, ids, out); err != nil {
		return nil, dncSetup{}, uuid.Nil, err
	}
	return ids, dnc, camp, nil
}

// setupCampaign finds the campaign (creating it, with its rule, if
// missing), attaches the pools (idempotent) and starts it (or resumes it),
// and returns its UUID.
func setupCampaign(ctx context.Context, eng *queue.Engine, pools []uuid.UUID, out io.Writer) (uuid.UUID, error) {
	rule, err := findRule(ctx, eng, ruleName)
	if err != nil {
		return uuid.Nil, err
	}
	if rule == nil {
		r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{
			// As much of the day as a window holds, so that the demo dials
			// whenever it is run. Windows do not cross midnight and end_time
			// cannot be 24:00, so 23:59 is the latest end: the last minute of
			// the day, 23:59–24:00 in the contact's zone (UTC here), is
			// outside the window, and a run started in it waits for 00:00.
			Name: ruleName, MaxTotalCalls: new(ruleCalls), StartTime: new("00:00"), EndTime: new("23:59"),
		})
		if err != nil {
			return uuid.Nil, err
		}
		rule = &r
	}
	// The ceiling and the checks the demo shows, set on a rule found by
	// name too (an older demo's, or one edited since: the summary must not
	// claim a ceiling the rule does not have; an update that changes
	// nothing leaves the rule as it is). A
	// retry waits the least a rule allows, a minute (a real rule waits
	// hours): the calls of a dialer killed mid-run are retried by the
	// next run within its default -timeout (5 minutes: on PostgreSQL they
	// come back 70 s after the kill, its LeaseGrace after the lease's
	// end, and a retry due in the minute the window leaves out waits a
	// minute more).
	r, err := eng.UpdateRule(ctx, rule.UUID, campaign.UpdateRuleParams{
		MaxTotalCalls: new(ruleCalls), RetryIntervalMinutes: new(1), DNCCheck: new(true), RemoveOnOptOut: new(true),
		EscalationAfterFailedAttempts: new(escalateAfter),
		EscalationType:                new(escalationType), EscalationTarget: new(escalationTarget),
	})
	if err != nil {
		return uuid.Nil, err
	}
	c, err := findCampaign(ctx, eng, campaignName)
	if err != nil {
		return uuid.Nil, err
	}
	if c == nil {
		made, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: campaignName, RuleUUID: &r.UUID})
		if err != nil {
			return uuid.Nil, err
		}
		c = &made
	} else if c.RuleUUID == nil || *c.RuleUUID != r.UUID {
		return uuid.Nil, fmt.Errorf("campaign %q is governed by another rule than %q: rename one", campaignName, ruleName)
	}
	if _, err := eng.AttachPools(ctx, c.UUID, pools...); err != nil {
		return uuid.Nil, err
	}
	status := c.Status
	switch c.Status {
	case campaign.Draft:
		_, err = eng.StartCampaign(ctx, c.UUID)
		status = campaign.InProcess
	case campaign.Paused:
		_, err = eng.ResumeCampaign(ctx, c.UUID)
		status = campaign.InProcess
	}
	if err != nil {
		return uuid.Nil, err
	}
	fmt.Fprintf(out, "campaign %q is %s, rule %q: at most %d calls per contact, %s–%s\n",
		c.Name, status, r.Name, r.MaxTotalCalls, r.StartTime, clockOrNone(r.EndTime))
	return c.UUID, nil
}

// findRule returns the rule named name, nil if there is none. A search
// matches parts of names: only an exact name is the demo's rule.
func findRule(ctx context.Context, eng *queue.Engine, name string) (*campaign.Rule, error) {
	for page := 1; ; page++ {
		pg, err := eng.Rules(ctx, campaign.RuleQuery{Search: name, Page: page, PerPage: 100})
		if err != nil {
			return nil, err
		}
		for _, r := range pg.Data {
			if r.Name == name {
				return &r, nil
			}
		}
		if page >= pg.LastPage {
			return nil, nil
		}
	}
}

// findCampaign returns the campaign named name that may still dial (not
// Completed nor Archived), nil if there is none.
func findCampaign(ctx context.Context, eng *queue.Engine, name string) (*campaign.Campaign, error) {
	for page := 1; ; page++ {
		pg, err := eng.Campaigns(ctx, campaign.Query{Search: name, Page: page, PerPage: 100})
		if err != nil {
			return nil, err
		}
		for _, c := range pg.Data {
			if c.Name == name && !c.Status.Finished() {
				return &c, nil
			}
		}
		if page >= pg.LastPage {
			return nil, nil
		}
	}
}

func clockOrNone(c *campaign.Clock) string {
	if c == nil {
		return "no end"
	}
	return c.String()
}

// mostAttempts returns the most attempts any contact had over the pools.
func mostAttempts(ctx context.Context, eng *queue.Engine, ids []uuid.UUID) (int, error) {
	most, calls := 0, map[uuid.UUID]int{}
	for _, id := range ids {
		err := eachItem(ctx, eng, id, "", func(it pool.Item) {
			calls[it.ContactUUID] += it.Attempts // over the campaign's pools: the cap is the contact's
			most = max(most, calls[it.ContactUUID])
		})
		if err != nil {
			return 0, err
		}
	}
	return most, nil
}

// eachItem calls fn with every item of pool id in the status (every
// status when empty), in insertion order, a page of 100 at a time by
// keyset (ItemQuery.After): each page an index seek, so a walk of a
// million items costs what it reads, where page numbers would cost what
// their offsets skip.
func eachItem(ctx context.Context, eng *queue.Engine, id uuid.UUID, status pool.Status, fn func(pool.Item)) error {
	var after int64
	for {
		pg, err := eng.Items(ctx, id, pool.ItemQuery{Status: status, After: after, PerPage: pool.MaxPerPage})
		if err != nil {
			return err
		}
		for _, it := range pg.Data {
			fn(it)
		}
		if len(pg.Data) < pool.MaxPerPage {
			return nil
		}
		after = pg.Data[len(pg.Data)-1].ID
	}
}

// setupPools finds the three pools by name, creating those that are missing,
// and adds this seed's contacts to them (contacts already there are skipped).
func setupPools(ctx context.Context, eng *queue.Engine, cfg config, out io.Writer) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, len(pools))
	rng := rand.New(rand.NewPCG(cfg.seed, 42))
	for i, spec := range pools {
		p, err := findPool(ctx, eng, spec.name)
		if err != nil {
			return nil, err
		}
		if p == nil {
			np, err := eng.CreatePool(ctx, pool.CreateParams{
				Name: spec.name, Description: "created by examples/dialer", Type: spec.typ,
				MaxParallelItems: new(12), MaxRetries: new(2),
			})
			if err != nil {
				return nil, err
			}
			p = &np
		}
		ids[i] = p.UUID

		n := cfg.contacts / len(pools)
		if i < cfg.contacts%len(pools) {
			n++
		}
		batch := make([]pool.NewItem, n)
		for k := range batch {
			batch[k] = pool.NewItem{
				ContactUUID: poolContact(cfg.seed, i, k),
				Priority:    rng.IntN(10),
				Payload:     fmt.Appendf(nil, `{"phone":"+1555%07d"}`, rng.IntN(10_000_000)),
			}
		}
		res, err := eng.Add(ctx, p.UUID, batch...)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "%-26s %-8s contacts added %5d, already there %5d\n", spec.name, spec.typ, res.ContactsAdded, res.ContactsSkipped)
	}
	return ids, nil
}

// poolContact is the k-th contact of the i-th pool: every tenth is one
// person in all three pools, whom the rule's max_total_calls caps across
// them (the report's "most calls to one contact" sums over the pools).
func poolContact(seed uint64, i, k int) uuid.UUID {
	if k%10 == 9 {
		i = 0
	}
	return contactID(seed, i, k)
}

// contactID is the UUID of the k-th contact of the i-th pool: the same
// for a seed from one run to the next.
func contactID(seed uint64, i, k int) uuid.UUID {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "poolq-dialer/%d", seed))
	return uuid.NewSHA1(ns, fmt.Appendf(nil, "%d/%d", i, k))
}

func findPool(ctx context.Context, eng *queue.Engine, name string) (*pool.Pool, error) {
	for page := 1; ; page++ {
		pg, err := eng.Pools(ctx, pool.PoolQuery{Search: name, Page: page, PerPage: 100})
		if err != nil {
			return nil, err
		}
		for _, p := range pg.Data {
			if p.Name == name {
				return &p, nil
			}
		}
		if page >= pg.LastPage {
			return nil, nil
		}
	}
}

func snapshot(ctx context.Context, eng *queue.Engine, ids []uuid.UUID) ([]pool.Detail, error) {
	out := make([]pool.Detail, len(ids))
	for i, id := range ids {
		d, err := eng.Pool(ctx, id)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func finished(d pool.Detail) int {
	return d.StatusCounts[pool.StatusCompleted] + d.StatusCounts[pool.StatusFailed] + d.StatusCounts[pool.StatusSkipped]
}

func allDone(ds []pool.Detail) bool {
	for _, d := range ds {
		if finished(d) != d.ContactsCount {
			return false
		}
	}
	return true
}

// progress draws one bar per pool, redrawn in place on a terminal and
// printed once a second otherwise.
type progress struct {
	out   io.Writer
	tty   bool
	lines int
	last  time.Time
}

func newProgress(out io.Writer) *progress {
	tty := false
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{out: out, tty: tty}
}

func (p *progress) draw(ds []pool.Detail) {
	if !p.tty && time.Since(p.last) < time.Second && !allDone(ds) {
		return
	}
	p.last = time.Now()
	var b strings.Builder
	if p.tty && p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines)
	}
	for _, d := range ds {
		done := finished(d)
		const width = 30
		fill := 0
		if d.ContactsCount > 0 {
			fill = done * width / d.ContactsCount
		}
		c := d.StatusCounts
		fmt.Fprintf(&b, "%-26s [%s%s] %5d/%-5d in call %2d  waiting retry %4d\x1b[K\n",
			d.Name, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, d.ContactsCount,
			c[pool.StatusProcessing]+c[pool.StatusInCall], c[pool.StatusRetrying]+c[pool.StatusScheduled])
	}
	out := b.String()
	if !p.tty {
		out = strings.ReplaceAll(out, "\x1b[K", "")
	}
	fmt.Fprint(p.out, out)
	p.lines = len(ds)
}

// say prints a line of its own under the bars; the next draw starts below
// it (on a terminal, it does not draw over it).
func (p *progress) say(format string, args ...any) {
	fmt.Fprintf(p.out, format+"\n", args...)
	p.lines = 0
}

func (p *progress) finish() { fmt.Fprintln(p.out) }

func report(out io.Writer, ds []pool.Detail, calls int64, elapsed time.Duration, byKind *sync.Map) {
	cols := []pool.Status{pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped,
		pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled, pool.StatusProcessing, pool.StatusInCall}
	fmt.Fprintf(out, "%-26s %-8s", "pool", "type")
	for _, s := range cols {
		fmt.Fprintf(out, " %10s", s)
	}
	fmt.Fprintln(out)
	for _, d := range ds {
		fmt.Fprintf(out, "%-26s %-8s", d.Name, d.Type)
		for _, s := range cols {
			fmt.Fprintf(out, " %10d", d.StatusCounts[s])
		}
		fmt.Fprintln(out)
	}
	count := func(k queue.EventKind) int64 {
		if v, ok := byKind.Load(k); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	fmt.Fprintf(out, "\n%d calls in %v: %.0f calls/s (completed %d, retried %d, failed %d, lost %d)\n",
		calls, elapsed.Round(time.Millisecond), float64(calls)/elapsed.Seconds(),
		count(queue.EventCompleted), count(queue.EventRetried), count(queue.EventFailed), count(queue.EventExpired))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
