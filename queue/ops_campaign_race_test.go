package queue_test

// Campaign operations racing with dispatch (review branch r-ops): a running
// campaign whose pools share contacts, worked by Work on one engine and
// DequeueCampaign on another, while a mutator pauses and resumes it,
// detaches and attaches a pool, changes the pools' types and caps, and puts
// contacts on the DNC list or opts them out.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

type campRace struct {
	mu         sync.Mutex
	held       map[uuid.UUID]*queue.Lease // by contact
	calls      map[uuid.UUID]int          // attempts counted per contact
	paused     [][2]time.Time             // [paused returned, resume issued)
	pausedAt   time.Time                  // zero: running
	dnc        map[uuid.UUID]time.Time    // contact → AddDNC returned
	opted      map[uuid.UUID]time.Time
	violations []string
	dispatches int
	leases     []claimed
}

// claimed is a lease and the instant the test saw it, after the claim
// returned: the claim read the campaign between the lease's own instant
// (its end less the lease timeout, taken when its transaction began, maybe
// before a lock wait) and this one.
type claimed struct {
	*queue.Lease
	seen time.Time
}

func (r *campRace) violate(format string, args ...any) {
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

func (r *campRace) acquire(who string, l *queue.Lease, maxTotal int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatches++
	r.leases = append(r.leases, claimed{l, time.Now()})
	if o := r.held[l.ContactUUID]; o != nil {
		r.violate("%s: contact %s dispatched in pool %s while in a call in pool %s", who, l.ContactUUID, l.PoolUUID, o.PoolUUID)
	}
	r.held[l.ContactUUID] = l
	r.calls[l.ContactUUID]++
	if n := r.calls[l.ContactUUID]; n > maxTotal {
		r.violate("%s: contact %s dispatched for its call %d across the campaign, max_total_calls %d", who, l.ContactUUID, n, maxTotal)
	}
}

func (r *campRace) letGo(l *queue.Lease, released bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[l.ContactUUID] == l {
		delete(r.held, l.ContactUUID)
	}
	if released {
		r.calls[l.ContactUUID]--
	}
}

func runCampaignRace(t *testing.T, a, b *queue.Engine, d time.Duration) {
	ctx := context.Background()
	const maxTotal = 6
	rule, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "race", MaxCallsPerDay: pqPtr(100), MaxTotalCalls: pqPtr(maxTotal),
		RetryIntervalMinutes: pqPtr(1), StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), DNCCheck: pqPtr(true), RemoveOnOptOut: pqPtr(true)})
	require.NoError(t, err)
	c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "race", RuleUUID: &rule.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	contacts := make([]uuid.UUID, 150)
	for i := range contacts {
		contacts[i] = uuid.New()
	}
	var pools []uuid.UUID
	for i, ty := range []pool.Type{pool.Parallel, pool.FIFO, pool.Parallel, pool.LIFO} {
		p, err := a.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("camp %d", i), Description: "race", Type: ty, MaxParallelItems: pqPtr(3)})
		require.NoError(t, err)
		var items []pool.NewItem
		for j, cu := range contacts {
			if (j+i)%3 != 0 { // each contact in most pools
				items = append(items, pool.NewItem{ContactUUID: cu, Priority: j % 4})
			}
		}
		_, err = a.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
		_, err = a.AttachPools(ctx, c.UUID, p.UUID)
		require.NoError(t, err)
		pools = append(pools, p.UUID)
	}
	_, err = a.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	r := &campRace{held: map[uuid.UUID]*queue.Lease{}, calls: map[uuid.UUID]int{}, dnc: map[uuid.UUID]time.Time{}, opted: map[uuid.UUID]time.Time{}}
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var events sync.Map

	wg.Add(1)
	go func() {
		defer wg.Done()
		var rmu sync.Mutex
		rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
		err := a.Work(rctx, func(ctx context.Context, l *queue.Lease) error {
			r.acquire("work", l, maxTotal)
			rmu.Lock()
			x, sl := rng.IntN(10), time.Duration(rng.IntN(4000))*time.Microsecond
			rmu.Unlock()
			time.Sleep(sl)
			r.letGo(l, false)
			if x < 3 {
				return nil
			}
			return queue.RetryAt(time.Now(), errors.New("busy"))
		}, queue.WorkOptions{Campaigns: []uuid.UUID{c.UUID}, Workers: 4, OnEvent: func(ev queue.Event) {
			if ev.Kind == queue.EventReleased {
				r.letGo(&ev.Lease, true) // never the same pointer: only the count
			}
			if (ev.Kind == queue.EventError || ev.Kind == queue.EventExpired) && !isOneOf(ev.Err, context.Canceled, queue.ErrClosed) {
				events.Store(fmt.Sprint(ev.Kind, ": ", ev.Err), true)
			}
		}})
		if err != nil && !isOneOf(err, context.Canceled, context.DeadlineExceeded) {
			events.Store("work: "+err.Error(), true)
		}
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(4, uint64(time.Now().UnixNano())))
		for rctx.Err() == nil {
			dctx, dcancel := context.WithTimeout(rctx, 200*time.Millisecond)
			l, err := b.DequeueCampaign(dctx, c.UUID)
			dcancel()
			if err != nil {
				if !isOneOf(err, context.Canceled, context.DeadlineExceeded) {
					r.mu.Lock()
					r.violate("dequeue campaign: %v", err)
					r.mu.Unlock()
				}
				continue
			}
			r.acquire("direct", l, maxTotal)
			time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
			bg := context.Background()
			var serr error
			switch x := rng.IntN(10); {
			case x < 2:
				r.letGo(l, true)
				serr = b.Release(bg, l)
			case x < 4:
				r.letGo(l, false)
				serr = b.Complete(bg, l, "ok")
			default:
				r.letGo(l, false)
				serr = b.Fail(bg, l, queue.Failure{RetryAt: time.Now(), Note: "busy"})
			}
			if serr != nil {
				r.mu.Lock()
				r.violate("direct settle of %s: %v", l.ContactUUID, serr)
				r.mu.Unlock()
			}
		}
	}()

	for m, eng := range []*queue.Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(30+m), uint64(time.Now().UnixNano())))
			detached := false
			for rctx.Err() == nil {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				switch rng.IntN(10) {
				case 8:
					// Remove, then add back: the contact's calls are kept
					// for the campaign (KeepCalls), so its total stands.
					p := pools[rng.IntN(len(pools))]
					cu := contacts[rng.IntN(len(contacts))]
					if n, err := eng.Remove(rctx, p, cu); err == nil && n == 1 {
						if _, err := eng.Add(rctx, p, pool.NewItem{ContactUUID: cu}); err != nil && rctx.Err() == nil {
							r.mu.Lock()
							r.violate("add back: %v", err)
							r.mu.Unlock()
						}
					}
				case 9:
					continue
				case 0:
					if m != 0 {
						continue // one goroutine pauses and resumes, so the intervals are exact
					}
					r.mu.Lock()
					running := r.pausedAt.IsZero()
					r.mu.Unlock()
					if running {
						if _, err := eng.PauseCampaign(rctx, c.UUID); err == nil {
							r.mu.Lock()
							r.pausedAt = time.Now()
							r.mu.Unlock()
						} else if rctx.Err() == nil {
							r.mu.Lock()
							r.violate("pause: %v", err)
							r.mu.Unlock()
						}
					} else {
						r.mu.Lock()
						r.paused = append(r.paused, [2]time.Time{r.pausedAt, time.Now()})
						r.pausedAt = time.Time{}
						r.mu.Unlock()
						if _, err := eng.ResumeCampaign(rctx, c.UUID); err != nil && rctx.Err() == nil {
							r.mu.Lock()
							r.violate("resume: %v", err)
							r.mu.Unlock()
						}
					}
				case 1:
					if m != 1 {
						continue
					}
					p := pools[2]
					if detached {
						if _, err := eng.AttachPools(rctx, c.UUID, p); err == nil {
							detached = false
						} else if rctx.Err() == nil {
							r.mu.Lock()
							r.violate("attach: %v", err)
							r.mu.Unlock()
						}
					} else {
						ok, err := eng.DetachPool(rctx, c.UUID, p)
						if err == nil && ok {
							detached = true
						} else if err != nil && !isOneOf(err, queue.ErrInFlight, context.Canceled, context.DeadlineExceeded) {
							r.mu.Lock()
							r.violate("detach: %v", err)
							r.mu.Unlock()
						}
					}
				case 2, 3:
					p := pools[rng.IntN(len(pools))]
					ty := []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel}[rng.IntN(3)]
					cp := 1 + rng.IntN(3)
					if _, err := eng.UpdatePool(rctx, p, pool.UpdateParams{Type: &ty, MaxParallelItems: &cp}); err != nil && rctx.Err() == nil {
						r.mu.Lock()
						r.violate("update pool: %v", err)
						r.mu.Unlock()
					}
				case 4:
					if rng.IntN(4) != 0 {
						continue
					}
					cu := contacts[rng.IntN(len(contacts))]
					if _, err := eng.AddDNC(rctx, cu); err == nil {
						r.mu.Lock()
						if _, ok := r.dnc[cu]; !ok {
							r.dnc[cu] = time.Now()
						}
						r.mu.Unlock()
					}
				case 5:
					if rng.IntN(4) != 0 {
						continue
					}
					cu := contacts[rng.IntN(len(contacts))]
					if _, err := eng.OptOut(rctx, cu); err == nil {
						r.mu.Lock()
						if _, ok := r.opted[cu]; !ok {
							r.opted[cu] = time.Now()
						}
						r.mu.Unlock()
					}
				case 6:
					p := pools[rng.IntN(len(pools))]
					cu := contacts[rng.IntN(len(contacts))]
					_, _ = eng.SetPriority(rctx, p, cu, rng.IntN(5))
				case 7:
					p := pools[rng.IntN(len(pools))]
					cu := contacts[rng.IntN(len(contacts))]
					_, _ = eng.Skip(rctx, p, cu, "skip")
				}
			}
		}()
	}
	wg.Wait()
	events.Range(func(k, _ any) bool {
		r.violate("work event: %v", k)
		return true
	})
	// The claim instant of a lease: its end less the lease timeout (no
	// lease lives long enough to be extended here). The claim's transaction
	// took it when it began; it read the campaign after, by l.seen. A claim
	// read the campaign while it was paused when both lie inside a pause: a
	// claim that began inside one and waited for a lock until the resume
	// committed read a running campaign.
	for _, l := range r.leases {
		at := l.ExpiresAt.Add(-opsOpts.LeaseTimeout)
		for _, iv := range r.paused {
			if at.After(iv[0]) && l.seen.Before(iv[1]) {
				r.violate("contact %s of pool %s claimed in [%v, %v], while the campaign was paused [%v, %v)", l.ContactUUID, l.PoolUUID, at.Format("15:04:05.000000"), l.seen.Format("15:04:05.000000"), iv[0].Format("15:04:05.000000"), iv[1].Format("15:04:05.000000"))
			}
		}
		if !r.pausedAt.IsZero() && at.After(r.pausedAt) {
			r.violate("contact %s claimed at %v, after the campaign was paused at %v", l.ContactUUID, at, r.pausedAt)
		}
		if dt, ok := r.dnc[l.ContactUUID]; ok && at.After(dt) {
			r.violate("contact %s claimed at %v, after AddDNC returned at %v", l.ContactUUID, at, dt)
		}
		if ot, ok := r.opted[l.ContactUUID]; ok && at.After(ot) {
			r.violate("contact %s claimed at %v, after OptOut returned at %v", l.ContactUUID, at, ot)
		}
	}
	for _, p := range pools {
		d, err := a.Pool(ctx, p)
		require.NoError(t, err)
		sum := 0
		for _, n := range d.StatusCounts {
			sum += n
		}
		items := allItems(ctx, t, a, p, 100)
		if sum != d.ContactsCount || len(items) != d.ContactsCount {
			r.violate("pool %s: status counts sum %d, contacts_count %d, items %d", p, sum, d.ContactsCount, len(items))
		}
		if re := countStatuses(items); fmt.Sprint(re) != fmt.Sprint(d.StatusCounts) {
			r.violate("pool %s: status_counts %v, recount %v", p, d.StatusCounts, re)
		}
		for _, it := range items {
			if it.Status.InFlight() {
				r.violate("pool %s: contact %s still %s", p, it.ContactUUID, it.Status)
			}
		}
	}
	t.Logf("dispatches %d, pauses %d", r.dispatches, len(r.paused))
	for i, v := range r.violations {
		if i == 20 {
			t.Errorf("... %d violations in all", len(r.violations))
			break
		}
		t.Error(v)
	}
}

func TestCampaignRace_SQLiteTwoStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "poolq.db")
	st1, st2 := openFileStore(t, path), openFileStore(t, path)
	runCampaignRace(t, openEngine(t, st1, opsOpts), openEngine(t, st2, opsOpts), 6*time.Second)
}

func TestCampaignRace_PostgresTwoNodes(t *testing.T) {
	url := pgtest.URL(t)
	engines, _ := pgEngines(t, url, 2, opsOpts)
	runCampaignRace(t, engines[0], engines[1], 6*time.Second)
}

var _ = store.ErrNotFound
