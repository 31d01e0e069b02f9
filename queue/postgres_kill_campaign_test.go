package queue_test

// TestPostgres_KillOneOfThreeCampaign: three processes (this test binary
// re-executed) dial a running campaign's three pools on one PostgreSQL
// schema, under a contact rule, one with Work (WorkOptions.Campaigns) and
// two with DequeueCampaign, and the first of those is killed with SIGKILL
// while it is in a call. The two others go on until the pools have nothing
// left to call today; the killed process's leases expire and come back to
// them as failed attempts. Each process logs its calls with the wall clock
// (the host's: the processes share it); the parent then checks that the
// survivors kept every rule, the killed calls included:
//
//   - no contact in two calls at once across the pools and the nodes (a
//     killed call lasts until its lease's end);
//   - no contact called more than max_total_calls times in all, nor more
//     than max_calls_per_day on a local date; no call outside the window;
//   - one escalation per item, and one for every item whose failed
//     attempts (expiries included) reached the threshold;
//   - no claim that began after an acknowledged AddDNC or OptOut (on
//     another node) dispatched the contact; an opted-out contact has no
//     waiting item;
//   - nothing left in flight, status_counts agree with a recount.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

const (
	pgCampEnvChild  = "POOLQ_PGCAMP_CHILD" // victim, worker or lister
	pgCampEnvSchema = "POOLQ_PGCAMP_SCHEMA"
	pgCampEnvIDs    = "POOLQ_PGCAMP_IDS"
	pgCampEnvLog    = "POOLQ_PGCAMP_LOG"

	// pgCampLease outlasts a call (5–25 ms) and its settlement by far,
	// on a loaded machine too: with 1 s, a call whose settlement waited
	// over a second (the package's other tests beside it) lost its lease,
	// and the child stopped on ErrLeaseLost before the victim was killed.
	pgCampLease    = 3 * time.Second
	pgCampTotal    = 3
	pgCampPerDay   = 2
	pgCampEscalate = 2
	pgCampContacts = 45
	pgCampListed   = 40 // contacts from here on are put on the do-not-call list or opted out
)

// pgCampLine is one line of a child's log.
type pgCampLine struct {
	Wall    int64     `json:"wall"` // UnixNano when written
	Op      string    `json:"op"`   // call, end, dnc, optout
	Pool    int       `json:"pool"`
	Contact int       `json:"contact"`
	Token   int64     `json:"token,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	ItemID  int64     `json:"item_id,omitempty"`
	At      time.Time `json:"at,omitzero"`       // call: the dispatch's instant
	Expires int64     `json:"expires,omitempty"` // call: the lease's end, UnixNano
	Began   int64     `json:"began,omitempty"`   // call by DequeueCampaign: when its claim began, UnixNano
	Child   int       `json:"-"`
}

func TestPostgres_KillOneOfThreeCampaign(t *testing.T) {
	if role := os.Getenv(pgCampEnvChild); role != "" {
		pgCampChild(t, role)
		return
	}
	url := pgtest.URL(t)
	if runtime.GOOS == "windows" {
		t.Skip("reads SIGKILL back from the victim's wait status: Unix only")
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	eng := openEngine(t, st, queue.Options{LeaseTimeout: pgCampLease})
	var ids crashCampIDs
	for p, typ := range []pool.Type{pool.Parallel, pool.Parallel, pool.FIFO} {
		pl, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("campaign pool %d", p), Description: "three dialers",
			Type: typ, MaxParallelItems: pqPtr(3), MaxRetries: pqPtr(9)})
		require.NoError(t, err)
		ids.Pools = append(ids.Pools, pl.UUID)
	}
	for range pgCampContacts {
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
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "three dialers", MaxTotalCalls: pqPtr(pgCampTotal),
		MaxCallsPerDay: pqPtr(pgCampPerDay), RetryIntervalMinutes: pqPtr(1), StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"),
		DNCCheck: pqPtr(true), RemoveOnOptOut: pqPtr(true), EscalationAfterFailedAttempts: pqPtr(pgCampEscalate)})
	require.NoError(t, err)
	k, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "three dialers", RuleUUID: &r.UUID, TimeZone: crashCampDefZone})
	require.NoError(t, err)
	ids.K = k.UUID
	_, err = eng.AttachPools(ctx, k.UUID, ids.Pools...)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, k.UUID)
	require.NoError(t, err)
	idsJSON, err := json.Marshal(ids)
	require.NoError(t, err)

	dir := t.TempDir()
	type child struct {
		cmd    *exec.Cmd
		log    string
		out    *crashOutput
		exited chan struct{}
	}
	var children []*child
	for i, role := range []string{"victim", "worker", "lister"} {
		c := &child{log: filepath.Join(dir, fmt.Sprintf("child%d.log", i)), out: &crashOutput{}, exited: make(chan struct{})}
		c.cmd = exec.Command(os.Args[0], "-test.run=^TestPostgres_KillOneOfThreeCampaign$", "-test.v")
		c.cmd.Env = append(os.Environ(), pgCampEnvChild+"="+role, pgCampEnvSchema+"="+st.Schema(),
			pgCampEnvIDs+"="+string(idsJSON), pgCampEnvLog+"="+c.log)
		c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
		require.NoError(t, c.cmd.Start())
		go func() { _ = c.cmd.Wait(); close(c.exited) }()
		t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.exited })
		children = append(children, c)
	}

	// Kill the victim in a call, after some work.
	victim := children[0]
	killed := waitUntil(time.Minute, func() bool {
		lines := readPgCampLog(t, victim.log, 0)
		open := 0
		for _, l := range lines {
			switch l.Op {
			case "call":
				open++
			case "end":
				open--
			}
		}
		return len(lines) > 20 && open > 0
	})
	require.True(t, killed, "the victim was never in a call:\n%s", victim.out.String())
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	<-victim.exited
	ws, _ := victim.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "the victim ended with %v:\n%s", victim.cmd.ProcessState, victim.out.String())
	for i, c := range children[1:] {
		select {
		case <-c.exited:
			require.True(t, c.cmd.ProcessState.Success(), "child %d failed:\n%s", i+1, c.out.String())
		case <-time.After(2 * time.Minute):
			t.Fatalf("child %d did not finish:\n%s", i+1, c.out.String())
		}
	}

	var all []pgCampLine
	for i, c := range children {
		all = append(all, readPgCampLog(t, c.log, i)...)
	}
	slices.SortStableFunc(all, func(a, b pgCampLine) int { return cmp.Compare(a.Wall, b.Wall) })
	history := func(i int) string {
		var b strings.Builder
		for _, l := range all {
			if l.Contact == i {
				line, _ := json.Marshal(l)
				fmt.Fprintf(&b, "  child %d %s\n", l.Child, line)
			}
		}
		return b.String()
	}

	// Calls: each from its start to its end, or to its lease's end when
	// the victim never ended it.
	type span struct {
		from, to int64
		l        pgCampLine
	}
	type key struct {
		pool  int
		token int64
	}
	ends := map[key]int64{}
	for _, l := range all {
		if l.Op == "end" {
			ends[key{l.Pool, l.Token}] = l.Wall
		}
	}
	listed := map[int]int64{} // contact → the wall time of its first acknowledged AddDNC or OptOut
	optedOut := map[int]bool{}
	for _, l := range all {
		if l.Op == "dnc" || l.Op == "optout" {
			if _, ok := listed[l.Contact]; !ok {
				listed[l.Contact] = l.Wall
			}
			optedOut[l.Contact] = optedOut[l.Contact] || l.Op == "optout"
		}
	}
	spans := map[int][]span{}
	calls, daily, killedCalls := map[int]int{}, map[string]int{}, 0
	for _, l := range all {
		if l.Op != "call" {
			continue
		}
		i := l.Contact
		end, ok := ends[key{l.Pool, l.Token}]
		if !ok {
			require.Equal(t, 0, l.Child, "contact %d: a survivor's call never ended\n%s", i, history(i))
			end = l.Expires
			killedCalls++
		}
		spans[i] = append(spans[i], span{l.Wall, end, l})
		calls[i]++
		require.LessOrEqual(t, calls[i], pgCampTotal, "contact %d: calls beyond max_total_calls\n%s", i, history(i))
		local := l.At.In(crashCampLoc(t, i))
		require.False(t, local.Hour() == 23 && local.Minute() == 59, "contact %d: call at %s, outside the window\n%s", i, local, history(i))
		day := fmt.Sprint(i, local.Format(time.DateOnly))
		daily[day]++
		require.LessOrEqual(t, daily[day], pgCampPerDay, "contact %d: calls on one day beyond max_calls_per_day\n%s", i, history(i))
		if at, ok := listed[i]; ok && l.Began > at {
			t.Fatalf("contact %d: claimed after its acknowledged do-not-call or opt-out\n%s", i, history(i))
		}
	}
	require.Positive(t, killedCalls, "the victim left no call: the test proved nothing about expiry")
	for i, ss := range spans {
		slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.from, b.from) })
		for j := 1; j < len(ss); j++ {
			require.GreaterOrEqual(t, ss[j].from, ss[j-1].to, "contact %d: two calls at once (tokens %d and %d)\n%s",
				i, ss[j-1].l.Token, ss[j].l.Token, history(i))
		}
	}

	// The items.
	attempts := map[int]int{}
	index := map[uuid.UUID]int{}
	for i, c := range ids.Contacts {
		index[c] = i
	}
	var items []pool.Item
	for p, id := range ids.Pools {
		list := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(list), d.StatusCounts, "P%d: status_counts vs a recount", p)
		for _, it := range list {
			i := index[it.ContactUUID]
			require.False(t, it.Status.InFlight(), "contact %d: %s in P%d after the survivors finished", i, it.Status, p)
			require.False(t, optedOut[i] && it.Status.Waiting(), "contact %d opted out: %s in P%d", i, it.Status, p)
			attempts[i] += it.Attempts
		}
		items = append(items, list...)
	}
	for i, n := range attempts {
		require.LessOrEqual(t, n, pgCampTotal, "contact %d: attempts beyond max_total_calls\n%s", i, history(i))
	}
	escalated := map[int64]bool{}
	var after int64
	for {
		page, err := eng.Escalations(ctx, campaign.EscalationQuery{After: after})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		for _, esc := range page {
			require.False(t, escalated[esc.ItemID], "item %d escalated twice", esc.ItemID)
			escalated[esc.ItemID] = true
			after = esc.ID
		}
	}
	for _, it := range items {
		failed := it.Attempts
		if it.Status == pool.StatusCompleted {
			failed--
		}
		if failed >= pgCampEscalate {
			require.True(t, escalated[it.ID], "item %d (%s, %d attempts) has no escalation\n%s",
				it.ID, it.Status, it.Attempts, history(index[it.ContactUUID]))
		}
	}
	t.Logf("%d log lines, %d contacts called, %d calls of the killed process, %d escalations", len(all), len(calls), killedCalls, len(escalated))
}

func readPgCampLog(t *testing.T, path string, child int) []pgCampLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []pgCampLine
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return out // a torn last line was never written whole
		}
		var l pgCampLine
		require.NoError(t, json.Unmarshal(line, &l), "log line %q", line)
		l.Child = child
		out = append(out, l)
	}
}

// pgCampChild dials until the campaign's pools have nothing to call today.
func pgCampChild(t *testing.T, role string) {
	ctx := context.Background()
	var ids crashCampIDs
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(pgCampEnvIDs)), &ids))
	index := map[uuid.UUID]int{}
	for i, c := range ids.Contacts {
		index[c] = i
	}
	st, err := postgres.Open(ctx, os.Getenv(pgtest.EnvURL), postgres.Options{Schema: os.Getenv(pgCampEnvSchema), MaxConns: 6, LeaseGrace: -1})
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{LeaseTimeout: pgCampLease, PollInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	defer eng.Close()
	f, err := os.OpenFile(os.Getenv(pgCampEnvLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	var mu sync.Mutex
	write := func(l pgCampLine) {
		mu.Lock()
		defer mu.Unlock()
		l.Wall = time.Now().UnixNano()
		b, err := json.Marshal(l)
		if err != nil {
			panic(err)
		}
		if _, err := f.Write(append(b, '\n')); err != nil { // one write: whole lines survive the kill
			panic(err)
		}
	}
	must := func(err error, allowed ...error) {
		if err != nil && !isOneOf(err, allowed...) {
			panic(fmt.Sprintf("unexpected error: %v", err))
		}
	}
	// The victim's calls after its tenth last a second (a third of the
	// lease), so that the parent, which kills it once it has logged ten
	// calls and is in one, finds it in a call however loaded the machine:
	// with 5–25 ms calls it once ended them all before the kill landed,
	// and left nothing to expire.
	var made atomic.Int64
	call := func(l *queue.Lease, began int64) {
		write(pgCampLine{Op: "call", Pool: slices.Index(ids.Pools, l.PoolUUID), Contact: index[l.ContactUUID], Token: l.Token,
			Attempt: l.Attempt, ItemID: l.ItemID, At: l.ExpiresAt.Add(-pgCampLease), Expires: l.ExpiresAt.UnixNano(), Began: began})
		if role == "victim" && made.Add(1) > 10 {
			time.Sleep(time.Second)
		}
		time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		write(pgCampLine{Op: "end", Pool: slices.Index(ids.Pools, l.PoolUUID), Contact: index[l.ContactUUID], Token: l.Token})
	}
	// done reports whether nothing is in flight and nothing due within half a minute.
	done := func() bool {
		soon := time.Now().Add(30 * time.Second)
		for _, id := range ids.Pools {
			for _, it := range allItems(ctx, t, eng, id, 100) {
				if it.Status.InFlight() || it.Status == pool.StatusPending ||
					it.Status.Waiting() && it.NextRetryAt != nil && it.NextRetryAt.Before(soon) {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(2 * time.Minute)
	var finished sync.Once
	stop := make(chan struct{})
	claimer := func() {
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			began := time.Now().UnixNano()
			l, err := queue.TryDequeueCampaign(ctx, eng, ids.K)
			must(err, queue.ErrEmpty, queue.ErrAtCapacity, queue.ErrHeld)
			if err != nil {
				if done() {
					finished.Do(func() { close(stop) })
					return
				}
				time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
				continue
			}
			call(l, began)
			if rand.IntN(4) == 0 {
				must(eng.Complete(ctx, l, "answered"))
			} else {
				must(eng.Fail(ctx, l, queue.Failure{Note: "busy", RetryAt: time.Now().Add(5 * time.Millisecond)}))
			}
		}
	}
	var wg sync.WaitGroup
	switch role {
	case "victim", "lister":
		wg.Go(claimer)
		wg.Go(claimer)
		if role == "lister" {
			wg.Go(func() {
				for i := pgCampListed; i < pgCampContacts; i++ {
					time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
					if i%2 == 0 {
						_, err := eng.AddDNC(ctx, ids.Contacts[i])
						must(err)
						write(pgCampLine{Op: "dnc", Contact: i})
					} else {
						_, err := eng.OptOut(ctx, ids.Contacts[i])
						must(err)
						write(pgCampLine{Op: "optout", Contact: i})
					}
				}
			})
		}
	case "worker":
		wctx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			err := eng.Work(wctx, func(_ context.Context, l *queue.Lease) error {
				call(l, 0)
				if rand.IntN(4) == 0 {
					return nil
				}
				return queue.RetryAt(time.Now().Add(5*time.Millisecond), errors.New("no answer"))
			}, queue.WorkOptions{Campaigns: []uuid.UUID{ids.K}, Workers: 3, Grace: 5 * time.Second})
			must(err, context.Canceled)
		})
		wg.Go(func() {
			defer cancel()
			for time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				if done() {
					return
				}
			}
		})
	}
	wg.Wait()
	require.True(t, done(), "%s: the pools still have calls to make", role)
}
