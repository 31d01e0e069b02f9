package queue_test

// TestCrash_Campaign kills, with SIGKILL, a real process that dials a
// running campaign's pools under a contact rule, round after round, and
// checks after each kill that the rule held across the kills (the killed
// child's leases expire in the next round's child, as failed attempts):
//
//   - no contact was called more than max_total_calls times in all across
//     the campaign's pools (by the calls the children logged, removed and
//     re-added items included, and by the items' attempts), nor more than
//     max_calls_per_day on a local date of its zone;
//   - no call started outside the calling window, in the contact's zone;
//   - no contact was in two calls at once (across the pools);
//   - every item has at most one escalation, and every item whose failed
//     attempts reached the threshold has one (a failure's or an expiry's);
//   - no claim that began after an acknowledged AddDNC or OptOut
//     dispatched the contact, and an opted-out contact has no waiting item;
//   - each item's count of the calls of its latest calling day is at least
//     the calls logged on that day, and at most the cap;
//   - status_counts agree with a recount, no pool is over its cap.
//
// The child is this test binary re-executed with
// -test.run=^TestCrash_Campaign$ and POOLQ_CRASH_CAMP_CHILD set to the
// store; it runs Work over the campaign (WorkOptions.Campaigns) beside a
// goroutine claiming with DequeueCampaign, one adding contacts to the
// do-not-call list or opting them out, and one removing contacts from a
// pool and adding them back. Each child's clock is 13 hours after the
// previous one's, so that new local days come and the windows of other
// zones open. By default 2 rounds on SQLite and 2 on PostgreSQL (skipped
// without POOLQ_TEST_POSTGRES); POOLQ_CRASH_ROUNDS sets the rounds.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

const (
	crashCampEnvChild = "POOLQ_CRASH_CAMP_CHILD" // a crashMixedStores name
	crashCampEnvWhere = "POOLQ_CRASH_CAMP_WHERE"
	crashCampEnvLog   = "POOLQ_CRASH_CAMP_LOG"
	crashCampEnvIDs   = "POOLQ_CRASH_CAMP_IDS"
	crashCampEnvRound = "POOLQ_CRASH_CAMP_ROUND"

	crashCampSpan      = 13 * time.Hour // clock offset between rounds
	crashCampTotal     = 3              // max_total_calls
	crashCampPerDay    = 2              // max_calls_per_day
	crashCampEscalate  = 2              // escalation_after_failed_attempts
	crashCampStartHour = 8              // window 08:00–20:00
	crashCampEndHour   = 20
	crashCampDefZone   = "America/Chicago" // the campaign's zone
	crashCampContacts  = 48
)

// crashCampZones are the contacts' zones, in turn ("" takes the campaign's).
var crashCampZones = []string{"America/New_York", "Asia/Tokyo", "", "Europe/Berlin", "Pacific/Auckland", "UTC"}

// crashCampIDs is what the parent sets up for the children.
type crashCampIDs struct {
	Pools    []uuid.UUID // P0 Parallel (every contact), P1 Parallel (even), P2 FIFO (every third)
	K        uuid.UUID
	Contacts []uuid.UUID
}

// crashCampZone is the zone of contact i.
func crashCampZone(i int) string { return crashCampZones[i%len(crashCampZones)] }

// crashCampInPool reports whether contact i is in pool p at the start.
func crashCampInPool(i, p int) bool { return p == 0 || (p == 1 && i%2 == 0) || (p == 2 && i%3 == 0) }

// crashCampEntry is one line of the children's log.
type crashCampEntry struct {
	Seq     int64     `json:"seq"`
	Try     bool      `json:"try,omitempty"`
	Op      string    `json:"op"` // start, call, end, dnc, optout, remove, add
	Pool    uuid.UUID `json:"pool,omitzero"`
	Contact int       `json:"contact"` // index in crashCampIDs.Contacts
	Token   int64     `json:"token,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	ItemID  int64     `json:"item_id,omitempty"`
	At      time.Time `json:"at,omitzero"`     // call: the dispatch's instant
	After   int64     `json:"after,omitempty"` // call by DequeueCampaign: the log's last line before its claim began
	Refused bool      `json:"refused,omitempty"`
	Round   int       `json:"round"`
}

func TestCrash_Campaign(t *testing.T) {
	if kind := os.Getenv(crashCampEnvChild); kind != "" {
		crashCampChild(t, kind)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	rounds, _ := crashRounds(t, 2)
	for _, s := range crashMixedStores {
		if s.full {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			crashCampRun(t, s.name, s.postgres, rounds)
		})
	}
}

func crashCampRun(t *testing.T, kind string, onPostgres bool, rounds int) {
	ctx := context.Background()
	dir := t.TempDir()
	where := filepath.Join(dir, "crash.db")
	if onPostgres {
		where = pgtest.Schema(t, pgtest.URL(t))
	}
	logPath := filepath.Join(dir, "log.jsonl")
	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: seed %d, %d rounds", kind, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 7))

	st, eng := crashMixedOpen(t, kind, where, 0)
	var ids crashCampIDs
	for p, typ := range []pool.Type{pool.Parallel, pool.Parallel, pool.FIFO} {
		pl, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("campaign pool %d", p), Description: "killed mid-campaign",
			Type: typ, MaxParallelItems: pqPtr(3), MaxRetries: pqPtr(9)})
		require.NoError(t, err)
		ids.Pools = append(ids.Pools, pl.UUID)
	}
	for range crashCampContacts {
		ids.Contacts = append(ids.Contacts, uuid.New())
	}
	for p, id := range ids.Pools {
		var batch []pool.NewItem
		for i, c := range ids.Contacts {
			if crashCampInPool(i, p) {
				batch = append(batch, pool.NewItem{ContactUUID: c, Contact: pool.Contact{TimeZone: crashCampZone(i)}})
			}
		}
		_, err := eng.Add(ctx, id, batch...)
		require.NoError(t, err)
	}
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "crash rule", MaxTotalCalls: pqPtr(crashCampTotal),
		MaxCallsPerDay: pqPtr(crashCampPerDay), RetryIntervalMinutes: pqPtr(1),
		StartTime: pqPtr(fmt.Sprintf("%02d:00", crashCampStartHour)), EndTime: pqPtr(fmt.Sprintf("%02d:00", crashCampEndHour)),
		DNCCheck: pqPtr(true), RemoveOnOptOut: pqPtr(true), EscalationAfterFailedAttempts: pqPtr(crashCampEscalate),
		EscalationType: pqPtr("supervisor"), EscalationTarget: pqPtr("ops@example.com")})
	require.NoError(t, err)
	k, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "crash campaign", RuleUUID: &r.UUID, TimeZone: crashCampDefZone})
	require.NoError(t, err)
	ids.K = k.UUID
	_, err = eng.AttachPools(ctx, k.UUID, ids.Pools...)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, k.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	idsJSON, err := json.Marshal(ids)
	require.NoError(t, err)

	for round := range rounds {
		before := countLines(t, logPath)
		crashKillChild(t, round, "^TestCrash_Campaign$", []string{
			crashCampEnvChild + "=" + kind, crashCampEnvWhere + "=" + where, crashCampEnvLog + "=" + logPath,
			crashCampEnvIDs + "=" + string(idsJSON), crashCampEnvRound + "=" + strconv.Itoa(round+1),
		}, func() bool { return countLines(t, logPath) > before+20 },
			time.Duration(100+rng.IntN(300))*time.Millisecond)
		dropTornLine(t, logPath)
		if !onPostgres {
			crashIntegrity(t, where)
		}
		offset := time.Duration(round) * crashCampSpan
		st, eng := crashMixedOpen(t, kind, where, offset+2*crashLease)
		summary := crashCampCheck(t, eng, ids, readCrashCampLog(t, logPath))
		t.Logf("round %d: %s", round, summary)
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
	}
}

// crashCampChild is the child's workload; it runs until it is killed (or
// its parent is gone, or two minutes pass).
func crashCampChild(t *testing.T, kind string) {
	ctx := context.Background()
	round, err := strconv.Atoi(os.Getenv(crashCampEnvRound))
	require.NoError(t, err)
	offset := time.Duration(round-1) * crashCampSpan
	var ids crashCampIDs
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(crashCampEnvIDs)), &ids))
	index := map[uuid.UUID]int{}
	for i, c := range ids.Contacts {
		index[c] = i
	}
	_, eng := crashMixedOpen(t, kind, os.Getenv(crashCampEnvWhere), offset)
	f, err := os.OpenFile(os.Getenv(crashCampEnvLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	var (
		mu  sync.Mutex
		seq = int64(round) * 1_000_000_000
	)
	write := func(e crashCampEntry) int64 {
		mu.Lock()
		defer mu.Unlock()
		if e.Seq == 0 {
			seq++
			e.Seq = seq
		}
		e.Round = round
		b, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			panic(err)
		}
		return e.Seq
	}
	last := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return seq
	}
	now := func() time.Time { return time.Now().Add(offset) }
	must := func(err error, allowed ...error) {
		if err != nil && !isOneOf(err, allowed...) {
			panic(fmt.Sprintf("unexpected error: %v", err))
		}
	}
	call := func(l *queue.Lease, after int64) {
		write(crashCampEntry{Op: "call", Pool: l.PoolUUID, Contact: index[l.ContactUUID], Token: l.Token, Attempt: l.Attempt,
			ItemID: l.ItemID, At: l.ExpiresAt.Add(-crashLease), After: after})
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		write(crashCampEntry{Op: "end", Pool: l.PoolUUID, Contact: index[l.ContactUUID], Token: l.Token})
	}
	write(crashCampEntry{Op: "start"})
	parent, deadline := os.Getppid(), time.Now().Add(2*time.Minute)
	alive := func() bool { return time.Now().Before(deadline) && os.Getppid() == parent }

	var wg sync.WaitGroup
	wg.Go(func() { // Work over the campaign
		err := eng.Work(ctx, func(_ context.Context, l *queue.Lease) error {
			call(l, 0)
			if rand.IntN(4) == 0 {
				return nil
			}
			return queue.RetryAt(now().Add(time.Millisecond), errors.New("no answer"))
		}, queue.WorkOptions{Campaigns: []uuid.UUID{ids.K}, Workers: 4})
		panic(fmt.Sprintf("Work returned: %v", err))
	})
	wg.Go(func() { // DequeueCampaign, settled by hand
		for alive() {
			after := last()
			l, err := queue.TryDequeueCampaign(ctx, eng, ids.K)
			must(err, queue.ErrEmpty, queue.ErrAtCapacity, queue.ErrHeld)
			if err != nil {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			call(l, after)
			if rand.IntN(4) == 0 {
				must(eng.Complete(ctx, l, "answered"))
			} else {
				must(eng.Fail(ctx, l, queue.Failure{Note: "busy", RetryAt: now().Add(time.Millisecond)}))
			}
		}
	})
	wg.Go(func() { // do-not-call and opt-outs, of contacts 40..47
		for alive() {
			time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
			i := 40 + rand.IntN(crashCampContacts-40)
			op := "dnc"
			if rand.IntN(2) == 0 {
				op = "optout"
			}
			s := write(crashCampEntry{Try: true, Op: op, Contact: i})
			var err error
			if op == "dnc" {
				_, err = eng.AddDNC(ctx, ids.Contacts[i])
			} else {
				_, err = eng.OptOut(ctx, ids.Contacts[i])
			}
			must(err)
			write(crashCampEntry{Seq: s, Op: op, Contact: i})
		}
	})
	wg.Go(func() { // Remove and Add back, of contacts 0..11 in P0
		for alive() {
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
			i := rand.IntN(12)
			s := write(crashCampEntry{Try: true, Op: "remove", Pool: ids.Pools[0], Contact: i})
			_, err := eng.Remove(ctx, ids.Pools[0], ids.Contacts[i])
			must(err, queue.ErrInFlight)
			write(crashCampEntry{Seq: s, Op: "remove", Pool: ids.Pools[0], Contact: i, Refused: err != nil})
			s = write(crashCampEntry{Try: true, Op: "add", Pool: ids.Pools[0], Contact: i})
			_, err = eng.Add(ctx, ids.Pools[0], pool.NewItem{ContactUUID: ids.Contacts[i], Contact: pool.Contact{TimeZone: crashCampZone(i)}})
			must(err)
			write(crashCampEntry{Seq: s, Op: "add", Pool: ids.Pools[0], Contact: i})
		}
	})
	wg.Wait()
}

func readCrashCampLog(t *testing.T, path string) []crashCampEntry {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []crashCampEntry
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return out
		}
		var e crashCampEntry
		require.NoError(t, json.Unmarshal(line, &e), "log line %q", line)
		out = append(out, e)
	}
}

// crashCampLoc is contact i's zone.
func crashCampLoc(t *testing.T, i int) *time.Location {
	name := crashCampZone(i)
	if name == "" {
		name = crashCampDefZone
	}
	loc, err := pool.LoadZone(name)
	require.NoError(t, err)
	return loc
}

func crashCampCheck(t *testing.T, eng *queue.Engine, ids crashCampIDs, log []crashCampEntry) string {
	t.Helper()
	ctx := context.Background()
	index := map[uuid.UUID]int{}
	for i, c := range ids.Contacts {
		index[c] = i
	}
	history := func(i int) string {
		var b strings.Builder
		for _, e := range log {
			if e.Op != "start" && e.Contact == i {
				line, _ := json.Marshal(e)
				fmt.Fprintf(&b, "  P%d %s\n", slices.Index(ids.Pools, e.Pool), line)
			}
		}
		return b.String()
	}

	// The items.
	attempts := map[int]int{}
	byID := map[int64]pool.Item{}
	for p, id := range ids.Pools {
		list := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(list), d.StatusCounts, "P%d: status_counts vs a recount", p)
		inFlight := 0
		for _, it := range list {
			if it.Status.InFlight() {
				inFlight++
			}
			attempts[index[it.ContactUUID]] += it.Attempts
			byID[it.ID] = it
		}
		limit := 3
		if p == 2 {
			limit = 1
		}
		require.LessOrEqual(t, inFlight, limit, "P%d: items in flight", p)
	}
	for i, n := range attempts {
		require.LessOrEqual(t, n, crashCampTotal, "contact %d: attempts of its items beyond max_total_calls\n%s", i, history(i))
	}

	// The calls logged: totals, days, window, one at a time, lists.
	type key struct {
		pool  uuid.UUID
		token int64
	}
	acked := map[int64]bool{}
	for _, e := range log {
		if !e.Try {
			acked[e.Seq] = true
		}
	}
	calls := map[int]int{}
	daily := map[string]int{}
	itemDay := map[string]int{} // item and local date → calls logged
	open := map[int]key{}       // contact → its call under way
	listed := map[int]int64{}   // contact → the first acknowledged AddDNC or OptOut
	optedOut := map[int]bool{}
	seen := map[key]bool{}
	for _, e := range log {
		switch {
		case e.Op == "start":
			clear(open) // the killed child's calls ended before this child's clock began (crashCampSpan > crashLease)
		case e.Try:
		case e.Op == "dnc" || e.Op == "optout":
			if _, ok := listed[e.Contact]; !ok {
				listed[e.Contact] = e.Seq
			}
			if e.Op == "optout" {
				optedOut[e.Contact] = true
			}
		case e.Op == "call":
			i, k := e.Contact, key{e.Pool, e.Token}
			require.False(t, seen[k], "contact %d: token %d logged twice", i, e.Token)
			seen[k] = true
			if o, busy := open[i]; busy {
				t.Fatalf("contact %d: called from P%d (token %d) while its call from P%d (token %d) was under way\n%s",
					i, slices.Index(ids.Pools, e.Pool), e.Token, slices.Index(ids.Pools, o.pool), o.token, history(i))
			}
			open[i] = k
			calls[i]++
			require.LessOrEqual(t, calls[i], crashCampTotal, "contact %d: calls beyond max_total_calls\n%s", i, history(i))
			local := e.At.In(crashCampLoc(t, i))
			require.True(t, local.Hour() >= crashCampStartHour && local.Hour() < crashCampEndHour,
				"contact %d: call at %s, outside the window\n%s", i, local, history(i))
			day := local.Format(time.DateOnly)
			daily[fmt.Sprint(i, day)]++
			itemDay[fmt.Sprint(e.ItemID, day)]++
			require.LessOrEqual(t, daily[fmt.Sprint(i, day)], crashCampPerDay, "contact %d: calls on %s beyond max_calls_per_day\n%s", i, day, history(i))
			if s, ok := listed[i]; ok && e.After > s {
				t.Fatalf("contact %d: claimed after its acknowledged do-not-call or opt-out (seq %d)\n%s", i, s, history(i))
			}
		case e.Op == "end":
			if open[e.Contact] == (key{e.Pool, e.Token}) {
				delete(open, e.Contact)
			}
		}
	}
	for i := range optedOut {
		for p, id := range ids.Pools {
			for _, it := range allItems(ctx, t, eng, id, 100) {
				if it.ContactUUID == ids.Contacts[i] {
					require.False(t, it.Status.Waiting(), "contact %d opted out: its item in P%d is %s\n%s", i, p, it.Status, history(i))
				}
			}
		}
	}

	// The days' counts of the items.
	for _, it := range byID {
		if it.CallAt.IsZero() {
			continue
		}
		loc := crashCampLoc(t, index[it.ContactUUID])
		day := it.CallAt.In(loc).Format(time.DateOnly)
		n := it.CallsToday
		if !it.PrevCallAt.IsZero() && it.PrevCallAt.In(loc).Format(time.DateOnly) == day {
			n += it.PrevCallsToday
		}
		if !it.OlderCallAt.IsZero() && it.OlderCallAt.In(loc).Format(time.DateOnly) == day {
			n += it.OlderCallsToday
		}
		require.LessOrEqual(t, it.CallsToday, crashCampPerDay, "item %d: calls_today", it.ID)
		require.GreaterOrEqual(t, n, itemDay[fmt.Sprint(it.ID, day)], "item %d: its count of %s is below the calls logged\n%s",
			it.ID, day, history(index[it.ContactUUID]))
	}

	// Escalations: one per item, and one for each item that reached the threshold.
	escalated := map[int64]campaign.Escalation{}
	var after int64
	for {
		page, err := eng.Escalations(ctx, campaign.EscalationQuery{After: after})
		require.NoError(t, err)
		for _, esc := range page {
			prev, twice := escalated[esc.ItemID]
			require.False(t, twice, "item %d escalated twice: %+v and %+v", esc.ItemID, prev, esc)
			require.GreaterOrEqual(t, esc.FailedAttempts, crashCampEscalate, "escalation %+v", esc)
			escalated[esc.ItemID] = esc
			after = esc.ID
		}
		if len(page) == 0 {
			break
		}
	}
	for _, it := range byID {
		failed := it.Attempts
		if it.Status == pool.StatusCompleted || it.Status.InFlight() {
			failed--
		}
		if failed >= crashCampEscalate {
			_, ok := escalated[it.ID]
			require.True(t, ok, "item %d (%s, %d attempts) has no escalation\n%s", it.ID, it.Status, it.Attempts, history(index[it.ContactUUID]))
		}
	}
	most, mostDay := 0, 0
	for _, n := range calls {
		most = max(most, n)
	}
	for _, n := range daily {
		mostDay = max(mostDay, n)
	}
	return fmt.Sprintf("%d log lines, %d contacts called (at most %d calls, %d a day), %d escalations",
		len(log), len(calls), most, mostDay, len(escalated))
}
