package queue_test

// TestCrash_CampaignOps kills, with SIGKILL, a real process in the middle
// of changing campaigns: StartCampaign, PauseCampaign and ResumeCampaign of
// two campaigns sharing a pool, AssignRule, AttachPools and DetachPool,
// AddDNC and OptOut, one at a time, each logged before the call (a try)
// and after it returned (its acknowledgement, with what it left). After
// each kill the parent reopens the store and checks that:
//
//   - the campaigns' statuses, the first campaign's rule and pools, the
//     do-not-call list and the opt-outs are those the acknowledged calls
//     left, or those the last try (never acknowledged) would leave;
//   - the two campaigns do not both govern the pool they share;
//   - dispatch obeys that state: a pool whose campaigns are Draft or
//     Paused is held; a running campaign's claims give no contact its rule
//     skips (do-not-call, opted out), and give each contact once at a time
//     across its pools. The parent gives back (Release) what it claims, so
//     that the next rounds have the same items to claim.
//
// The child is this test binary re-executed with
// -test.run=^TestCrash_CampaignOps$ and POOLQ_CRASH_OPS_CHILD set to the
// store. By default 3 rounds on SQLite and 3 on PostgreSQL (skipped without
// POOLQ_TEST_POSTGRES); POOLQ_CRASH_ROUNDS sets the rounds.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	crashOpsEnvChild = "POOLQ_CRASH_OPS_CHILD"
	crashOpsEnvWhere = "POOLQ_CRASH_OPS_WHERE"
	crashOpsEnvLog   = "POOLQ_CRASH_OPS_LOG"
	crashOpsEnvIDs   = "POOLQ_CRASH_OPS_IDS"
	crashOpsEnvRound = "POOLQ_CRASH_OPS_ROUND"

	crashOpsContacts = 40
)

// crashOpsIDs: K1 has P0 (and P1, attached and detached) and a rule, R0 or
// R1; K2 has P0 and rule R0. R0 checks the do-not-call list and removes on
// opt-out; R1 does neither.
type crashOpsIDs struct {
	P        [2]uuid.UUID
	R        [2]uuid.UUID
	K1, K2   uuid.UUID
	Contacts []uuid.UUID
}

// crashOpsEntry is one line of the child's log.
type crashOpsEntry struct {
	Seq     int64  `json:"seq"`
	Try     bool   `json:"try,omitempty"`
	Op      string `json:"op"` // k1, k2 (a transition), rule, attach, detach, dnc, optout
	Target  int    `json:"target,omitempty"`
	Status  string `json:"status,omitempty"` // k1, k2: the status it leaves (expected, in a try)
	Refused bool   `json:"refused,omitempty"`
	Round   int    `json:"round"`
}

// crashOpsState is what the calls leave.
type crashOpsState struct {
	K1, K2   campaign.Status
	Rule     int  // K1's: 0 or 1
	Attached bool // P1 to K1
	DNC      map[int]bool
	Opted    map[int]bool
}

func (s crashOpsState) clone() crashOpsState {
	s.DNC, s.Opted = maps.Clone(s.DNC), maps.Clone(s.Opted)
	return s
}

func (s crashOpsState) equal(o crashOpsState) bool {
	return s.K1 == o.K1 && s.K2 == o.K2 && s.Rule == o.Rule && s.Attached == o.Attached &&
		maps.Equal(s.DNC, o.DNC) && maps.Equal(s.Opted, o.Opted)
}

// apply returns s after e.
func (s crashOpsState) apply(e crashOpsEntry) crashOpsState {
	s = s.clone()
	if e.Refused {
		return s
	}
	switch e.Op {
	case "k1":
		s.K1 = campaign.Status(e.Status)
	case "k2":
		s.K2 = campaign.Status(e.Status)
	case "rule":
		s.Rule = e.Target
	case "attach":
		s.Attached = true
	case "detach":
		s.Attached = false
	case "dnc":
		s.DNC[e.Target] = true
	case "optout":
		s.Opted[e.Target] = true
	}
	return s
}

func TestCrash_CampaignOps(t *testing.T) {
	if kind := os.Getenv(crashOpsEnvChild); kind != "" {
		crashOpsChild(t, kind)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	rounds, _ := crashRounds(t, 3)
	for _, s := range crashMixedStores {
		if s.full {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			crashOpsRun(t, s.name, s.postgres, rounds)
		})
	}
}

func crashOpsRun(t *testing.T, kind string, onPostgres bool, rounds int) {
	ctx := context.Background()
	dir := t.TempDir()
	where := filepath.Join(dir, "crash.db")
	if onPostgres {
		where = pgtest.Schema(t, pgtest.URL(t))
	}
	logPath := filepath.Join(dir, "log.jsonl")
	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: seed %d, %d rounds", kind, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 5))

	st, eng := crashMixedOpen(t, kind, where, 0)
	var ids crashOpsIDs
	for range crashOpsContacts {
		ids.Contacts = append(ids.Contacts, uuid.New())
	}
	for p := range ids.P {
		pl, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("shared %d", p), Description: "campaigns change",
			Type: pool.Parallel, MaxParallelItems: pqPtr(crashOpsContacts + 10)})
		require.NoError(t, err)
		ids.P[p] = pl.UUID
		batch := make([]pool.NewItem, len(ids.Contacts))
		for i, c := range ids.Contacts {
			batch[i] = pool.NewItem{ContactUUID: c}
		}
		_, err = eng.Add(ctx, pl.UUID, batch...)
		require.NoError(t, err)
	}
	for i, strict := range []bool{true, false} {
		r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: fmt.Sprintf("rule %d", i), MaxTotalCalls: pqPtr(2 + i),
			StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), DNCCheck: pqPtr(strict), RemoveOnOptOut: pqPtr(strict)})
		require.NoError(t, err)
		ids.R[i] = r.UUID
	}
	k1, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "first", RuleUUID: &ids.R[0], TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	k2, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "second", RuleUUID: &ids.R[0], TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	ids.K1, ids.K2 = k1.UUID, k2.UUID
	_, err = eng.AttachPools(ctx, ids.K1, ids.P[0], ids.P[1])
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, ids.K2, ids.P[0])
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	idsJSON, err := json.Marshal(ids)
	require.NoError(t, err)

	committed := map[int64]bool{}
	for round := range rounds {
		before := countLines(t, logPath)
		crashKillChild(t, round, "^TestCrash_CampaignOps$", []string{
			crashOpsEnvChild + "=" + kind, crashOpsEnvWhere + "=" + where, crashOpsEnvLog + "=" + logPath,
			crashOpsEnvIDs + "=" + string(idsJSON), crashOpsEnvRound + "=" + strconv.Itoa(round+1),
		}, func() bool { return countLines(t, logPath) > before+4 },
			time.Duration(rng.IntN(300))*time.Millisecond)
		dropTornLine(t, logPath)
		if !onPostgres {
			crashIntegrity(t, where)
		}
		st, eng := crashMixedOpen(t, kind, where, 0)
		summary := crashOpsCheck(t, eng, ids, readCrashOpsLog(t, logPath), committed)
		t.Logf("round %d: %s", round, summary)
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
	}
}

func readCrashOpsLog(t *testing.T, path string) []crashOpsEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []crashOpsEntry
	for _, line := range splitLines(b) {
		var e crashOpsEntry
		require.NoError(t, json.Unmarshal(line, &e), "log line %q", line)
		out = append(out, e)
	}
	return out
}

// splitLines returns b's whole lines (a torn last one left out).
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := slices.Index(b, '\n')
		if i < 0 {
			break
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
	return out
}

// crashOpsChild changes the campaigns, one call at a time, until killed.
func crashOpsChild(t *testing.T, kind string) {
	ctx := context.Background()
	round, err := strconv.Atoi(os.Getenv(crashOpsEnvRound))
	require.NoError(t, err)
	var ids crashOpsIDs
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(crashOpsEnvIDs)), &ids))
	_, eng := crashMixedOpen(t, kind, os.Getenv(crashOpsEnvWhere), 0)
	f, err := os.OpenFile(os.Getenv(crashOpsEnvLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	var mu sync.Mutex
	seq := int64(round) * 1_000_000_000
	write := func(e crashOpsEntry) int64 {
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
	must := func(err error, allowed ...error) bool {
		if err != nil && !isOneOf(err, allowed...) {
			panic(fmt.Sprintf("unexpected error: %v", err))
		}
		return err != nil
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(round)))
	parent, deadline := os.Getppid(), time.Now().Add(2*time.Minute)
	for time.Now().Before(deadline) && os.Getppid() == parent {
		switch r := rng.IntN(10); {
		case r < 4: // a transition of K1 or K2
			op, id := "k1", ids.K1
			if r >= 2 {
				op, id = "k2", ids.K2
			}
			c, err := eng.Campaign(ctx, id)
			must(err)
			next, do := campaign.InProcess, eng.StartCampaign
			switch c.Status {
			case campaign.InProcess:
				next, do = campaign.Paused, eng.PauseCampaign
			case campaign.Paused:
				do = eng.ResumeCampaign
			}
			s := write(crashOpsEntry{Try: true, Op: op, Status: string(next)})
			out, err := do(ctx, id)
			refused := must(err, campaign.ErrConflict)
			write(crashOpsEntry{Seq: s, Op: op, Status: string(out.Status), Refused: refused})
		case r < 6:
			x := rng.IntN(2)
			s := write(crashOpsEntry{Try: true, Op: "rule", Target: x})
			_, err := eng.AssignRule(ctx, ids.K1, ids.R[x])
			must(err)
			write(crashOpsEntry{Seq: s, Op: "rule", Target: x})
		case r < 8:
			c, err := eng.Campaign(ctx, ids.K1)
			must(err)
			if slices.Contains(c.PoolUUIDs, ids.P[1]) {
				s := write(crashOpsEntry{Try: true, Op: "detach"})
				_, err = eng.DetachPool(ctx, ids.K1, ids.P[1])
				write(crashOpsEntry{Seq: s, Op: "detach", Refused: must(err, queue.ErrInFlight)})
			} else {
				s := write(crashOpsEntry{Try: true, Op: "attach"})
				_, err = eng.AttachPools(ctx, ids.K1, ids.P[1])
				write(crashOpsEntry{Seq: s, Op: "attach", Refused: must(err, campaign.ErrConflict)})
			}
		default:
			op, x := "dnc", rng.IntN(crashOpsContacts/2) // the other half is never listed
			if r == 9 {
				op = "optout"
			}
			s := write(crashOpsEntry{Try: true, Op: op, Target: x})
			if op == "dnc" {
				_, err = eng.AddDNC(ctx, ids.Contacts[x])
			} else {
				_, err = eng.OptOut(ctx, ids.Contacts[x])
			}
			must(err)
			write(crashOpsEntry{Seq: s, Op: op, Target: x})
		}
	}
}

// crashOpsCheck checks the store against the log; committed holds, for
// each try of an earlier round never acknowledged, whether it committed (as
// the check after its round found), and takes the last try's.
func crashOpsCheck(t *testing.T, eng *queue.Engine, ids crashOpsIDs, log []crashOpsEntry, committed map[int64]bool) string {
	t.Helper()
	ctx := context.Background()
	state := crashOpsState{K1: campaign.Draft, K2: campaign.Draft, Attached: true, DNC: map[int]bool{}, Opted: map[int]bool{}}
	acked := map[int64]bool{}
	for _, e := range log {
		if !e.Try {
			acked[e.Seq] = true
		}
	}
	var open *crashOpsEntry
	for i, e := range log {
		switch {
		case !e.Try:
			state = state.apply(e)
		case acked[e.Seq]:
		case i == len(log)-1:
			open = &log[i]
		case committed[e.Seq]:
			state = state.apply(e) // an earlier round's last try, found committed
		}
	}

	// The store's state.
	index := map[uuid.UUID]int{}
	for i, c := range ids.Contacts {
		index[c] = i
	}
	k1, err := eng.Campaign(ctx, ids.K1)
	require.NoError(t, err)
	k2, err := eng.Campaign(ctx, ids.K2)
	require.NoError(t, err)
	got := crashOpsState{K1: k1.Status, K2: k2.Status, Rule: slices.Index(ids.R[:], *k1.RuleUUID),
		Attached: slices.Contains(k1.PoolUUIDs, ids.P[1]), DNC: map[int]bool{}, Opted: map[int]bool{}}
	for i, c := range ids.Contacts {
		dnc, err := eng.IsDNC(ctx, c)
		require.NoError(t, err)
		if dnc {
			got.DNC[i] = true
		}
	}
	// Opt-outs have no reader: the claims below check the acknowledged
	// ones.
	got.Opted = state.Opted
	after := state
	if open != nil {
		after = state.apply(*open)
		after.Opted = state.Opted
	}
	require.True(t, got.equal(state) || got.equal(after),
		"the store's state %+v;\nthe acknowledged calls left %+v;\nthe last try %+v", got, state, open)
	if open != nil && !got.equal(state) {
		committed[open.Seq] = true
	}
	require.False(t, k1.Status.Governs() && k2.Status.Governs(), "both campaigns govern P0: %s and %s", k1.Status, k2.Status)

	// Dispatch obeys it.
	var held []*queue.Lease
	defer func() {
		for _, l := range held {
			require.NoError(t, eng.Release(ctx, l))
		}
	}()
	running := ""
	for _, k := range []campaign.Campaign{k1, k2} {
		if k.Status != campaign.InProcess {
			continue
		}
		running = k.Name
		rule := 0
		if k.UUID == ids.K1 {
			rule = got.Rule
		}
		inCall := map[uuid.UUID]bool{}
		for {
			l, err := queue.TryDequeueCampaign(ctx, eng, k.UUID)
			if isOneOf(err, queue.ErrEmpty, queue.ErrAtCapacity) {
				break
			}
			require.NoError(t, err, "claim from campaign %s", k.Name)
			held = append(held, l)
			require.True(t, slices.Contains(k.PoolUUIDs, l.PoolUUID), "campaign %s gave an item of a pool it does not have", k.Name)
			i := index[l.ContactUUID]
			require.False(t, inCall[l.ContactUUID], "contact %d claimed twice at once from campaign %s", i, k.Name)
			inCall[l.ContactUUID] = true
			if rule == 0 {
				require.False(t, got.DNC[i], "contact %d on the do-not-call list, claimed under rule 0 (%s)", i, k.Name)
				require.False(t, state.Opted[i], "contact %d opted out, claimed under rule 0 (%s)", i, k.Name)
			}
		}
	}
	if !k1.Status.Dispatches() && !k2.Status.Dispatches() {
		_, err := eng.TryDequeue(ctx, ids.P[0])
		require.ErrorIs(t, err, queue.ErrHeld, "P0 with campaigns %s and %s", k1.Status, k2.Status)
	}
	if !got.Attached && !k2.Status.Dispatches() {
		l, err := eng.TryDequeue(ctx, ids.P[1])
		require.NotErrorIs(t, err, queue.ErrHeld, "P1 detached")
		if err == nil {
			held = append(held, l)
		}
	}
	open1 := "none"
	if open != nil {
		open1 = open.Op
	}
	return fmt.Sprintf("%d log lines, open try %s; %s running, rule %d, P1 attached %v; %d on the do-not-call list, %d opted out; %d claimed",
		len(log), open1, running, got.Rule, got.Attached, len(got.DNC), len(state.Opted), len(held))
}
