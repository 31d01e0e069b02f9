package queue_test

// TestCrash_Mixed is TestCrash with a mixed, concurrent workload: a child
// process runs several goroutines at once (so that group commit batches
// carry several callers' operations when the kill comes) over every kind of
// write: bulk Adds, FIFO claims, DequeueN and Settle batches, Remove,
// DuplicatePool and DeletePool, campaign pause/resume and attach/detach,
// and claims under a campaign's rule. The parent kills it with SIGKILL at a
// random moment, reopens the store and checks it against the child's log.
//
// The child is this test binary re-executed with
// -test.run=^TestCrash_Mixed$ and POOLQ_CRASH_MIXED_CHILD set to the store
// it opens; TestCrash_Mixed then runs the child's workload instead of its
// subtests. The child appends a JSON line to a log (one write each, so a
// kill leaves a whole line or a torn one, which the parent ignores):
// a "try" line before each call whose effect the log cannot otherwise tell
// (Remove, DuplicatePool, DeletePool, campaign changes), and an
// acknowledgement after every call that returned nil. After each kill the
// parent checks that:
//
//   - every acknowledged Add, dispatch (its token), settlement, Remove,
//     DeletePool and DuplicatePool is there; a try never acknowledged may
//     have happened or not;
//   - the campaign's status and attachment are the last acknowledged ones,
//     or those of a later try;
//   - no pool has more items in flight than its cap, no item more attempts
//     than its ceiling;
//   - the FIFO pool's first attempts went out in insertion order;
//   - no contact was called beyond the rule's max_total_calls or
//     max_calls_per_day across the campaign's two pools (by the items'
//     attempts and by the acknowledged dispatches, per day of the child's
//     clock);
//   - status_counts agree with a recount of every pool's items, and (on
//     SQLite) PRAGMA integrity_check says ok.
//
// Subtests: SQLite and PostgreSQL, each at Normal and Full durability; the
// PostgreSQL ones skip without POOLQ_TEST_POSTGRES. By default it runs 2
// kill rounds at Normal durability only, to keep `go test ./...` short;
// POOLQ_CRASH_ROUNDS sets the rounds of every subtest and runs the Full ones
// too:
//
//	POOLQ_CRASH_ROUNDS=20 go test -run '^TestCrash_Mixed$' -v ./queue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	crashMixedEnvChild  = "POOLQ_CRASH_MIXED_CHILD" // the store: one of crashMixedStores
	crashMixedEnvWhere  = "POOLQ_CRASH_MIXED_WHERE" // the SQLite file or the PostgreSQL schema
	crashMixedEnvLog    = "POOLQ_CRASH_MIXED_LOG"
	crashMixedEnvIDs    = "POOLQ_CRASH_MIXED_IDS" // crashMixedIDs as JSON
	crashMixedEnvOffset = "POOLQ_CRASH_MIXED_CLOCK_OFFSET"
	crashMixedEnvSeed   = "POOLQ_CRASH_MIXED_SEED"
	crashMixedEnvRound  = "POOLQ_CRASH_MIXED_ROUND"

	crashMixedRoundSpan  = 13 * time.Hour // clock offset between rounds: new days come
	crashMixedCapB       = 4              // max_parallel_items of pool B
	crashMixedCapCamp    = 3              // max_parallel_items of pools D and E
	crashMixedMaxRetries = 2              // ceiling 3 outside the campaign
	crashMixedTotalCalls = 2              // the rule's max_total_calls
	crashMixedPerDay     = 1              // the rule's max_calls_per_day
	crashMixedMaxWaiting = 60             // the adder adds to a pool with fewer waiting
)

// crashMixedStores are the subtests, and the stores the child opens.
var crashMixedStores = []struct {
	name     string
	postgres bool
	full     bool
}{
	{"SQLite_Normal", false, false},
	{"SQLite_Full", false, true},
	{"PostgreSQL_Normal", true, false},
	{"PostgreSQL_Full", true, true},
}

// crashMixedIDs are the pools and the campaign the child works on.
type crashMixedIDs struct {
	A uuid.UUID // FIFO
	B uuid.UUID // Parallel, claimed with DequeueN, settled with Settle
	C uuid.UUID // FIFO, never claimed: Remove, DuplicatePool (and DeletePool of the copies)
	D uuid.UUID // Parallel, in campaign K
	E uuid.UUID // Parallel, attached to and detached from K; shares contacts with D
	K uuid.UUID // the running campaign, under a rule with per-contact caps
}

// crashMixedEntry is one line of the child's log.
type crashMixedEntry struct {
	Seq      int64       `json:"seq"`           // a try and its acknowledgement share it
	Try      bool        `json:"try,omitempty"` // logged before the call
	Op       string      `json:"op"`            // start, add, dispatch, settle, remove, dup, delpool, camp
	Pool     uuid.UUID   `json:"pool,omitzero"`
	Contacts []uuid.UUID `json:"contacts,omitempty"`
	Token    int64       `json:"token,omitempty"`
	Attempt  int         `json:"attempt,omitempty"`
	ItemID   int64       `json:"item_id,omitempty"`
	Final    bool        `json:"final,omitempty"`    // settle: a final failure
	Complete bool        `json:"complete,omitempty"` // settle: a Complete
	At       time.Time   `json:"at,omitzero"`        // dispatch: the child's clock
	After    int64       `json:"after,omitempty"`    // dispatch under the campaign: the log's last line before the claim began
	Change   string      `json:"change,omitempty"`   // camp: pause, resume, attach or detach (of E)
	Status   string      `json:"status,omitempty"`   // camp: the campaign's status
	Attached bool        `json:"attached,omitempty"` // camp: E attached to K
	Count    int         `json:"count,omitempty"`    // dup: contacts copied
	Round    int         `json:"round"`
	Campaign bool        `json:"campaign,omitempty"` // dispatch, settle: claimed under the campaign
}

// crashMixedLog is the child's log. Its methods are safe for concurrent use.
type crashMixedLog struct {
	mu    sync.Mutex
	f     *os.File
	seq   int64
	round int
}

// write appends e, numbered unless it carries the number of its try, and
// returns its number. It panics on an error: it is called from the child's
// goroutines, and a panic ends the child, which the parent reports.
func (l *crashMixedLog) write(e crashMixedEntry) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Seq == 0 {
		l.seq++
		e.Seq = l.seq
	}
	e.Round = l.round
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil { // one write: a whole line or a torn one
		panic(err)
	}
	return e.Seq
}

// last returns the number of the log's last line.
func (l *crashMixedLog) last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// crashMixedOpen opens the store named kind (a crashMixedStores name) at
// where, with an engine whose clock is time.Now() + offset.
func crashMixedOpen(t *testing.T, kind, where string, offset time.Duration) (store.Store, *queue.Engine) {
	t.Helper()
	ctx := context.Background()
	var (
		st  store.Store
		err error
	)
	switch kind {
	case "SQLite_Normal", "SQLite_Full":
		d := sqlite.Normal
		if kind == "SQLite_Full" {
			d = sqlite.Full
		}
		st, err = sqlite.Open(ctx, where, sqlite.Options{Durability: d, CheckCache: true})
	case "PostgreSQL_Normal", "PostgreSQL_Full":
		d := postgres.Normal
		if kind == "PostgreSQL_Full" {
			d = postgres.Full
		}
		st, err = postgres.Open(ctx, os.Getenv(pgtest.EnvURL), postgres.Options{Schema: where, Durability: d, MaxConns: 6, LeaseGrace: -1})
	default:
		t.Fatalf("unknown store %q", kind)
	}
	require.NoError(t, err, "open %s %s", kind, where)
	eng, err := queue.New(st, queue.Options{
		LeaseTimeout: crashLease, RetryDelay: crashRetryDelay,
		Now: func() time.Time { return time.Now().Add(offset) },
	})
	require.NoError(t, err)
	return st, eng
}

func TestCrash_Mixed(t *testing.T) {
	if kind := os.Getenv(crashMixedEnvChild); kind != "" {
		crashMixedChild(t, kind)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	rounds, set := crashRounds(t, 2)
	for _, s := range crashMixedStores {
		t.Run(s.name, func(t *testing.T) {
			if s.full && !set {
				t.Skip("Full durability runs when " + crashEnvRounds + " is set")
			}
			crashMixedRun(t, s.name, s.postgres, rounds)
		})
	}
}

// crashMixedRun sets up the pools and the campaign, then kills a child
// working on them rounds times, checking the store after each kill.
func crashMixedRun(t *testing.T, kind string, onPostgres bool, rounds int) {
	ctx := context.Background()
	dir := t.TempDir()
	where := filepath.Join(dir, "crash.db")
	if onPostgres {
		where = pgtest.Schema(t, pgtest.URL(t))
	}
	logPath := filepath.Join(dir, "log.jsonl")
	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: seed %d, %d rounds", kind, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 99))

	st, eng := crashMixedOpen(t, kind, where, 0)
	create := func(name string, typ pool.Type, capacity int) uuid.UUID {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: name, Description: "killed mid-run", Type: typ,
			MaxParallelItems: pqPtr(capacity), MaxRetries: pqPtr(crashMixedMaxRetries)})
		require.NoError(t, err)
		return p.UUID
	}
	ids := crashMixedIDs{
		A: create("fifo A", pool.FIFO, 1), B: create("parallel B", pool.Parallel, crashMixedCapB),
		C: create("removals C", pool.FIFO, 1),
		D: create("campaign D", pool.Parallel, crashMixedCapCamp), E: create("campaign E", pool.Parallel, crashMixedCapCamp),
	}
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "crash rule", MaxTotalCalls: pqPtr(crashMixedTotalCalls),
		MaxCallsPerDay: pqPtr(crashMixedPerDay), RetryIntervalMinutes: pqPtr(1), StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
	require.NoError(t, err)
	k, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "crash campaign", RuleUUID: &r.UUID})
	require.NoError(t, err)
	ids.K = k.UUID
	_, err = eng.AttachPools(ctx, k.UUID, ids.D, ids.E)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, k.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	idsJSON, err := json.Marshal(ids)
	require.NoError(t, err)

	for round := range rounds {
		childOffset := time.Duration(round) * crashMixedRoundSpan
		before := countLines(t, logPath)
		crashKillChild(t, round, "^TestCrash_Mixed$", []string{
			crashMixedEnvChild + "=" + kind, crashMixedEnvWhere + "=" + where, crashMixedEnvLog + "=" + logPath,
			crashMixedEnvIDs + "=" + string(idsJSON), crashMixedEnvOffset + "=" + childOffset.String(),
			crashMixedEnvSeed + "=" + strconv.FormatUint(seed+uint64(round), 10),
			crashMixedEnvRound + "=" + strconv.Itoa(round+1),
		}, func() bool { return countLines(t, logPath) > before+50 },
			time.Duration(100+rng.IntN(900))*time.Millisecond)
		dropTornLine(t, logPath)

		if !onPostgres {
			crashIntegrity(t, where)
		}
		st, eng := crashMixedOpen(t, kind, where, childOffset+2*crashLease)
		summary := crashMixedCheck(t, eng, ids, readCrashMixedLog(t, logPath))
		t.Logf("round %d: %s", round, summary)
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
	}
}

// crashMixedChild is the child's workload; it runs until it is killed (or
// its parent is gone, or two minutes pass). An unexpected error panics,
// which ends the child and the round.
func crashMixedChild(t *testing.T, kind string) {
	ctx := context.Background()
	offset, err := time.ParseDuration(os.Getenv(crashMixedEnvOffset))
	require.NoError(t, err)
	seed, err := strconv.ParseUint(os.Getenv(crashMixedEnvSeed), 10, 64)
	require.NoError(t, err)
	round, err := strconv.Atoi(os.Getenv(crashMixedEnvRound))
	require.NoError(t, err)
	var ids crashMixedIDs
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(crashMixedEnvIDs)), &ids))
	_, eng := crashMixedOpen(t, kind, os.Getenv(crashMixedEnvWhere), offset)
	f, err := os.OpenFile(os.Getenv(crashMixedEnvLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	log := &crashMixedLog{f: f, seq: int64(round) * 1_000_000_000, round: round} // numbers unique across rounds
	now := func() time.Time { return time.Now().Add(offset) }
	log.write(crashMixedEntry{Op: "start"})

	parent, deadline := os.Getppid(), time.Now().Add(2*time.Minute)
	alive := func() bool { return time.Now().Before(deadline) && os.Getppid() == parent }
	must := func(err error, allowed ...error) {
		if err != nil && !isOneOf(err, allowed...) {
			panic(fmt.Sprintf("unexpected error: %v", err))
		}
	}
	waiting := func(id uuid.UUID) int {
		d, err := eng.Pool(ctx, id)
		must(err)
		c := d.StatusCounts
		return c[pool.StatusPending] + c[pool.StatusRetrying] + c[pool.StatusScheduled]
	}
	ackDispatch := func(l *queue.Lease, claimedAfter int64) {
		log.write(crashMixedEntry{Op: "dispatch", Pool: l.PoolUUID, Contacts: []uuid.UUID{l.ContactUUID}, Token: l.Token,
			Attempt: l.Attempt, ItemID: l.ItemID, At: l.ExpiresAt.Add(-crashLease), Campaign: claimedAfter > 0, After: claimedAfter})
	}
	ackSettle := func(l *queue.Lease, complete, final, underCampaign bool) {
		log.write(crashMixedEntry{Op: "settle", Pool: l.PoolUUID, Contacts: []uuid.UUID{l.ContactUUID}, Token: l.Token,
			Attempt: l.Attempt, ItemID: l.ItemID, Complete: complete, Final: final, Campaign: underCampaign})
	}

	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		addedC, addedD []uuid.UUID // acknowledged adds to C (not removed yet) and to D
	)

	// The adder: bulk Adds to every pool; E gets some of D's contacts (one
	// person in two pools of the campaign).
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 1))
		for alive() {
			targets := []uuid.UUID{ids.A, ids.B, ids.C, ids.D, ids.E}
			id := targets[rng.IntN(len(targets))]
			if waiting(id) > crashMixedMaxWaiting {
				time.Sleep(time.Millisecond)
				continue
			}
			n := 1 + rng.IntN(20)
			if rng.IntN(10) == 0 {
				n = 200 + rng.IntN(300) // a bulk add
			}
			batch := make([]pool.NewItem, 0, n+5)
			for range n {
				batch = append(batch, pool.NewItem{ContactUUID: uuid.New(), Priority: rng.IntN(3)})
			}
			if id == ids.E {
				mu.Lock()
				for k := 0; k < 5 && len(addedD) > 0; k++ {
					batch = append(batch, pool.NewItem{ContactUUID: addedD[rng.IntN(len(addedD))]})
				}
				mu.Unlock()
			}
			contacts := make([]uuid.UUID, len(batch))
			for i, it := range batch {
				contacts[i] = it.ContactUUID
			}
			_, err := eng.Add(ctx, id, batch...)
			must(err)
			log.write(crashMixedEntry{Op: "add", Pool: id, Contacts: contacts})
			mu.Lock()
			switch id {
			case ids.C:
				addedC = append(addedC, contacts...)
			case ids.D:
				addedD = append(addedD, contacts...)
			}
			mu.Unlock()
		}
	})

	// The FIFO worker on A: one at a time, Complete or Fail.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 2))
		for alive() {
			l, err := eng.TryDequeue(ctx, ids.A)
			must(err, queue.ErrEmpty, queue.ErrAtCapacity)
			if err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			ackDispatch(l, 0)
			if rng.IntN(4) == 0 {
				final := rng.IntN(3) == 0
				must(eng.Fail(ctx, l, queue.Failure{Final: final, Note: "busy"}))
				ackSettle(l, false, final, false)
			} else {
				must(eng.Complete(ctx, l, "answered"))
				ackSettle(l, true, false, false)
			}
		}
	})

	// Two batch workers on B: DequeueN, then Settle all they hold.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(10+w)))
			for alive() {
				held, err := queue.TryDequeueN(ctx, eng, ids.B, 1+rng.IntN(3))
				must(err, queue.ErrEmpty, queue.ErrAtCapacity)
				if len(held) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				outs := make([]queue.Outcome, len(held))
				for i, l := range held {
					ackDispatch(l, 0)
					outs[i] = queue.Outcome{Lease: l, Note: "answered"}
					if rng.IntN(3) == 0 {
						outs[i] = queue.Outcome{Lease: l, Failure: &queue.Failure{Final: rng.IntN(4) == 0, Note: "busy"}}
					}
				}
				res, err := eng.Settle(ctx, outs...)
				must(err)
				for i, o := range outs {
					must(res[i])
					ackSettle(o.Lease, o.Failure == nil, o.Failure != nil && o.Failure.Final, false)
				}
			}
		})
	}

	// Remove from C; DuplicatePool of C, DeletePool of the copies.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 3))
		var copies []uuid.UUID
		for alive() {
			mu.Lock()
			var rm []uuid.UUID
			for k := 0; k < 1+rng.IntN(8) && len(addedC) > 0; k++ {
				i := rng.IntN(len(addedC))
				rm = append(rm, addedC[i])
				addedC = slices.Delete(addedC, i, i+1)
			}
			mu.Unlock()
			if len(rm) > 0 {
				seq := log.write(crashMixedEntry{Try: true, Op: "remove", Pool: ids.C, Contacts: rm})
				_, err := eng.Remove(ctx, ids.C, rm...)
				must(err)
				log.write(crashMixedEntry{Seq: seq, Op: "remove", Pool: ids.C, Contacts: rm})
			}
			switch rng.IntN(4) {
			case 0:
				seq := log.write(crashMixedEntry{Try: true, Op: "dup"})
				d, err := eng.DuplicatePool(ctx, ids.C, pool.DuplicateParams{})
				must(err)
				log.write(crashMixedEntry{Seq: seq, Op: "dup", Pool: d.UUID, Count: d.ContactsCopied})
				copies = append(copies, d.UUID)
			case 1:
				if len(copies) > 0 {
					i := rng.IntN(len(copies))
					id := copies[i]
					copies = slices.Delete(copies, i, i+1)
					seq := log.write(crashMixedEntry{Try: true, Op: "delpool", Pool: id})
					must(eng.DeletePool(ctx, id))
					log.write(crashMixedEntry{Seq: seq, Op: "delpool", Pool: id})
				}
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	})

	// The campaign's controller: pauses and resumes K, detaches and
	// attaches E, one change at a time, while the campaign's workers claim.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 4))
		for alive() {
			c, err := eng.Campaign(ctx, ids.K)
			must(err)
			attached := slices.Contains(c.PoolUUIDs, ids.E)
			if rng.IntN(2) == 0 {
				next, change := campaign.Paused, "pause"
				if c.Status == campaign.Paused {
					next, change = campaign.InProcess, "resume"
				}
				seq := log.write(crashMixedEntry{Try: true, Op: "camp", Change: change, Status: string(next), Attached: attached})
				if next == campaign.Paused {
					_, err = eng.PauseCampaign(ctx, ids.K)
				} else {
					_, err = eng.ResumeCampaign(ctx, ids.K)
				}
				must(err)
				log.write(crashMixedEntry{Seq: seq, Op: "camp", Change: change, Status: string(next), Attached: attached})
			} else {
				change := "attach"
				if attached {
					change = "detach"
				}
				seq := log.write(crashMixedEntry{Try: true, Op: "camp", Change: change, Status: string(c.Status), Attached: !attached})
				if attached {
					_, err = eng.DetachPool(ctx, ids.K, ids.E)
					must(err, queue.ErrInFlight)
				} else {
					_, err = eng.AttachPools(ctx, ids.K, ids.E)
					must(err)
				}
				attachedNow := !attached
				if err != nil { // E has items in flight: refused, nothing changed
					attachedNow = attached
				}
				log.write(crashMixedEntry{Seq: seq, Op: "camp", Change: change, Status: string(c.Status), Attached: attachedNow})
			}
			time.Sleep(time.Duration(2+rng.IntN(10)) * time.Millisecond)
		}
	})

	// Two campaign workers: claims under the rule.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(20+w)))
			for alive() {
				after := log.last()
				l, err := queue.TryDequeueCampaign(ctx, eng, ids.K)
				must(err, queue.ErrEmpty, queue.ErrAtCapacity, queue.ErrHeld, campaign.ErrWrongStatus)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				ackDispatch(l, after)
				if rng.IntN(3) == 0 {
					must(eng.Complete(ctx, l, "answered"))
					ackSettle(l, true, false, true)
				} else {
					must(eng.Fail(ctx, l, queue.Failure{Note: "no answer", RetryAt: now().Add(time.Millisecond)}))
					ackSettle(l, false, false, true)
				}
			}
		})
	}
	wg.Wait()
	t.Log("the child lived too long or lost its parent; exiting")
}

// readCrashMixedLog parses the child's log (none yet: nil); a torn last
// line was never acknowledged and is ignored.
func readCrashMixedLog(t *testing.T, path string) []crashMixedEntry {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []crashMixedEntry
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return out
		}
		var e crashMixedEntry
		require.NoError(t, json.Unmarshal(line, &e), "log line %q", line)
		out = append(out, e)
	}
}

// crashMixedCheck checks the store against the log after a kill and returns
// a summary for the test's log.
func crashMixedCheck(t *testing.T, eng *queue.Engine, ids crashMixedIDs, log []crashMixedEntry) string {
	t.Helper()
	ctx := context.Background()

	// Every pool on its own: counts, caps, ceilings.
	items := map[uuid.UUID]map[uuid.UUID]pool.Item{} // pool → contact → item
	for _, id := range []uuid.UUID{ids.A, ids.B, ids.C, ids.D, ids.E} {
		list := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(list), d.StatusCounts, "pool %s: status_counts vs a recount", id)
		require.Equal(t, len(list), d.ContactsCount, "pool %s: contacts_count", id)
		byContact := map[uuid.UUID]pool.Item{}
		inFlight := 0
		for _, it := range list {
			byContact[it.ContactUUID] = it
			if it.Status.InFlight() {
				inFlight++
			}
			if id == ids.A || id == ids.B {
				require.LessOrEqual(t, it.Attempts, crashMixedMaxRetries+1, "pool %s contact %s: attempts beyond the ceiling", id, it.ContactUUID)
			}
		}
		capacity := map[uuid.UUID]int{ids.A: 1, ids.B: crashMixedCapB, ids.C: 1, ids.D: crashMixedCapCamp, ids.E: crashMixedCapCamp}[id]
		require.LessOrEqual(t, inFlight, capacity, "pool %s: in flight", id)
		items[id] = byContact
	}
	// The rule's caps are the contact's, across D and E.
	for c, it := range items[ids.D] {
		n := it.Attempts
		if o, inE := items[ids.E][c]; inE {
			n += o.Attempts
		}
		require.LessOrEqual(t, n, crashMixedTotalCalls, "contact %s: attempts in D and E beyond max_total_calls", c)
	}
	for c, it := range items[ids.E] {
		require.LessOrEqual(t, it.Attempts, crashMixedTotalCalls, "contact %s: attempts in E beyond max_total_calls", c)
	}

	// Tries never acknowledged: their call may have committed or not.
	acked := map[int64]bool{}
	for _, e := range log {
		if !e.Try {
			acked[e.Seq] = true
		}
	}
	removed := map[uuid.UUID]bool{} // C's contacts removed, or maybe removed
	deleted := map[uuid.UUID]bool{} // pools deleted, or maybe deleted
	openTries := 0
	for _, e := range log {
		if !e.Try || acked[e.Seq] {
			continue
		}
		openTries++
		switch e.Op {
		case "remove":
			for _, c := range e.Contacts {
				removed[c] = true
			}
		case "delpool":
			deleted[e.Pool] = true
		}
	}
	for _, e := range log {
		if e.Try {
			continue
		}
		switch e.Op {
		case "remove":
			for _, c := range e.Contacts {
				removed[c] = true
				_, there := items[ids.C][c]
				require.False(t, there, "contact %s: acknowledged Remove (seq %d), still in the pool", c, e.Seq)
			}
		case "delpool":
			deleted[e.Pool] = true
			_, err := eng.Pool(ctx, e.Pool)
			require.ErrorIs(t, err, store.ErrNotFound, "pool %s: acknowledged DeletePool, still there", e.Pool)
		}
	}

	// Where each detach of E may have committed: after its try's line and
	// before its acknowledgement's (if any).
	type span struct{ from, to int }
	var detaches []span
	introduced := map[int64]int{} // a number → the line that introduced it
	tryAt := map[int64]int{}      // a detach's number → its try's line
	for i, e := range log {
		if _, seen := introduced[e.Seq]; !seen {
			introduced[e.Seq] = i
		}
		if e.Op == "camp" && e.Change == "detach" {
			if e.Try {
				tryAt[e.Seq] = i
				detaches = append(detaches, span{i, len(log)})
			} else if from, ok := tryAt[e.Seq]; ok {
				d := &detaches[slices.Index(detaches, span{from, len(log)})]
				d.to = i
				if e.Attached { // refused (ErrInFlight): E stayed
					*d = span{-1, -1}
				}
			}
		}
	}
	type leaseKey struct {
		pool, contact uuid.UUID
		token         int64
	}
	dispatches := map[leaseKey]crashMixedEntry{}

	// Adds, dispatches, settlements, copies.
	calls := map[uuid.UUID]int{} // acknowledged campaign dispatches per contact
	daily := map[string]int{}    // per contact and day of the child's clock
	var lastFirst int64          // A: the item of the latest acknowledged first attempt
	mayDetached := 0             // E's calls failed when E may have left the campaign
	for i, e := range log {
		if e.Try {
			continue
		}
		switch e.Op {
		case "add":
			for _, c := range e.Contacts {
				if e.Pool == ids.C && removed[c] {
					continue
				}
				_, there := items[e.Pool][c]
				require.True(t, there, "contact %s: acknowledged Add to pool %s (seq %d, round %d) is lost", c, e.Pool, e.Seq, e.Round)
			}
		case "dispatch":
			c := e.Contacts[0]
			it, there := items[e.Pool][c]
			require.True(t, there, "contact %s: dispatched from %s, item gone", c, e.Pool)
			require.GreaterOrEqual(t, it.Token, e.Token, "contact %s: acknowledged dispatch token %d lost (item token %d)", c, e.Token, it.Token)
			dispatches[leaseKey{e.Pool, c, e.Token}] = e
			if e.Pool == ids.A && e.Attempt == 1 {
				require.Greater(t, e.ItemID, lastFirst, "FIFO: item %d first dispatched after item %d", e.ItemID, lastFirst)
				lastFirst = e.ItemID
			}
			if e.Campaign {
				calls[c]++
				require.LessOrEqual(t, calls[c], crashMixedTotalCalls, "contact %s: campaign dispatches acknowledged beyond max_total_calls\n%s",
					c, crashMixedHistory(log, c, ids))
				day := e.At.UTC().Format(time.DateOnly)
				daily[c.String()+day]++
				require.LessOrEqual(t, daily[c.String()+day], crashMixedPerDay, "contact %s: campaign dispatches acknowledged on %s beyond max_calls_per_day\n%s",
					c, day, crashMixedHistory(log, c, ids))
			}
		case "settle":
			c := e.Contacts[0]
			it, there := items[e.Pool][c]
			require.True(t, there, "contact %s: settled in %s, item gone", c, e.Pool)
			require.GreaterOrEqual(t, it.Token, e.Token, "contact %s: acknowledged settlement token %d lost (item token %d)", c, e.Token, it.Token)
			same := it.Token == e.Token // not dispatched since
			ceiling := crashMixedMaxRetries + 1
			if e.Campaign {
				ceiling = crashMixedTotalCalls
			}
			// A call claimed under the campaign from E, which left the
			// campaign before its settlement, is settled under E's own
			// settings (DetachPool refuses only while a contact E
			// shares with D is in a call): its last call under the
			// rule may fail with attempts left. E is claimed from only
			// under the campaign, which fails the item at its next
			// dispatch, so it is not dispatched again.
			if e.Campaign && e.Pool == ids.E && !e.Complete && !e.Final && e.Attempt >= ceiling {
				d, ok := dispatches[leaseKey{e.Pool, c, e.Token}]
				require.True(t, ok, "contact %s: settlement of token %d without its dispatch", c, e.Token)
				claimedFrom := introduced[d.After]
				if slices.ContainsFunc(detaches, func(s span) bool { return s.from < i && s.to > claimedFrom }) &&
					it.Status != pool.StatusFailed {
					require.True(t, same, "contact %s: failed (token %d, attempt %d) as E left the campaign, dispatched again (token %d)\n%s",
						c, e.Token, e.Attempt, it.Token, crashMixedHistory(log, c, ids))
					require.Contains(t, []pool.Status{pool.StatusRetrying, pool.StatusScheduled}, it.Status,
						"contact %s: acknowledged Fail as E left the campaign; the item: %+v", c, it)
					mayDetached++
					continue
				}
			}
			switch {
			case e.Complete:
				require.True(t, same, "contact %s: completed (token %d), dispatched again (token %d)", c, e.Token, it.Token)
				require.Equal(t, pool.StatusCompleted, it.Status, "contact %s: acknowledged Complete; the item: %+v", c, it)
			case e.Final || e.Attempt >= ceiling:
				require.True(t, same, "contact %s: failed for good (token %d, attempt %d), dispatched again (token %d)\n%s",
					c, e.Token, e.Attempt, it.Token, crashMixedHistory(log, c, ids))
				require.Equal(t, pool.StatusFailed, it.Status, "contact %s: acknowledged final Fail (attempt %d); the item: %+v\n%s",
					c, e.Attempt, it, crashMixedHistory(log, c, ids))
			case same:
				want := []pool.Status{pool.StatusRetrying, pool.StatusScheduled}
				if e.Campaign {
					want = append(want, pool.StatusFailed) // the contact's caps, met at dispatch
				}
				require.Contains(t, want, it.Status, "contact %s: acknowledged Fail with attempts left; the item: %+v\n%s",
					c, it, crashMixedHistory(log, c, ids))
			}
		case "dup":
			if deleted[e.Pool] {
				continue
			}
			d, err := eng.Pool(ctx, e.Pool)
			require.NoError(t, err, "pool %s: acknowledged DuplicatePool", e.Pool)
			require.Equal(t, e.Count, d.ContactsCount, "pool %s: contacts copied", e.Pool)
			require.Equal(t, e.Count, d.StatusCounts[pool.StatusPending], "pool %s: copies Pending", e.Pool)
		}
	}

	// The campaign: as the last acknowledged change left it, or as a later
	// try (not acknowledged) would.
	var last, try *crashMixedEntry
	for i := range log {
		e := &log[i]
		if e.Op != "camp" {
			continue
		}
		if e.Try {
			try = e
		} else {
			last = e
		}
	}
	c, err := eng.Campaign(ctx, ids.K)
	require.NoError(t, err)
	attached := slices.Contains(c.PoolUUIDs, ids.E)
	if last != nil {
		as := func(e *crashMixedEntry) bool { return string(c.Status) == e.Status && attached == e.Attached }
		require.True(t, as(last) || (try != nil && try.Seq > last.Seq && as(try)),
			"campaign: %s, E attached %v; last acknowledged %+v, last try %+v", c.Status, attached, *last, try)
	}
	return fmt.Sprintf("%d log lines, %d open tries, %d contacts called under the campaign, %d calls of E failed maybe after E left it",
		len(log), openTries, len(calls), mayDetached)
}

// crashMixedHistory is the log of one contact, and the campaign's changes,
// for a failure's message.
func crashMixedHistory(log []crashMixedEntry, c uuid.UUID, ids crashMixedIDs) string {
	name := map[uuid.UUID]string{ids.A: "A", ids.B: "B", ids.C: "C", ids.D: "D", ids.E: "E"}
	var b strings.Builder
	for _, e := range log {
		if e.Op != "camp" && !slices.Contains(e.Contacts, c) {
			continue
		}
		if e.Op == "add" {
			e.Contacts = nil
		}
		line, _ := json.Marshal(e)
		fmt.Fprintf(&b, "%s %s\n", name[e.Pool], line)
	}
	return b.String()
}

// countLines counts the whole lines of the file at path (none yet: 0).
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return bytes.Count(b, []byte{'\n'})
}
