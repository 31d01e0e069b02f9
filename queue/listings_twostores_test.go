package queue_test

// TestListings_TwoStoresAgree builds the same pools, items, rules and
// campaigns, with names chosen to trip a search (letters whose case
// folding is not ASCII's, characters with a meaning to LIKE, instr or a
// full-text query), in an engine over SQLite and one over PostgreSQL, and
// asks both the same listings: every answer (page, totals, data in order,
// or the validation error) must be the same, and the pool searches what a
// plain Go model of "contains it, Unicode simple case folding" says.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// listingSearches are the searches asked of every listing.
var listingSearches = []string{
	"É", "é", "ÉCOLE", "ß", "ẞ", "SS", "İ", "i", "ı", "I", "Σ", "σ", "ς", "ΣΊΣΥΦΟΣ",
	"%", "_", `\`, "'", `"`, "a%b", "a_b", `\%`, "''", `"x"`, "*", "a*", "(", ")", "[", "]",
	"and", "OR", "NOT", "NEAR", "fifo", "FiFo", "lifo", "parallel", "ALLEL", "k", "K", "ſ",
	" ", "  ", "a b", "ab ", " ab", "😀", "e\u0301", "ﬁ", "Ω", "ω", "Ω", "+1555", "@example",
	strings.Repeat("x", pool.MaxSearchLen),
}

// badSearches fail validation, the same way in every store.
var badSearches = []string{
	"a\x00b", "\xff", "ab\xc3", "a\tb", "a\nb", "a\u2028b", "\x7f", "\u0085",
	strings.Repeat("x", pool.MaxSearchLen+1),
}

type twoEngines struct {
	ctx  context.Context
	clk  *modelClock
	a, b *queue.Engine
	bToA map[uuid.UUID]uuid.UUID
}

func newTwoEngines(t *testing.T) *twoEngines {
	url := pgtest.URL(t)
	ctx := context.Background()
	clk := &modelClock{t: modelEpoch}
	opts := queue.Options{Now: clk.Now, LeaseTimeout: time.Minute, RetryDelay: time.Minute, PollInterval: time.Hour}
	sa, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sa.Close() })
	a, err := queue.New(sa, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	b, err := queue.New(pgtest.Open(t, url, postgres.Options{MaxConns: 2}), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return &twoEngines{ctx: ctx, clk: clk, a: a, b: b, bToA: map[uuid.UUID]uuid.UUID{}}
}

func (e *twoEngines) tick() { e.clk.set(e.clk.Now().Add(time.Second)) }

// errFields names a validation error by its (field, rule) pairs, any other
// error by its text.
func errFields(err error) string {
	if err == nil {
		return "<nil>"
	}
	var ve validate.Errors
	if errors.As(err, &ve) {
		var s []string
		for _, f := range ve {
			s = append(s, f.Field+":"+f.Rule)
		}
		return strings.Join(s, ",")
	}
	return "other: " + err.Error()
}

// foldContains is the model of a pool search: s contains sub, runes
// compared with Unicode simple case folding (strings.EqualFold).
func foldContains(s, sub string) bool {
	rs, n := []rune(s), utf8.RuneCountInString(sub)
	for i := 0; i+n <= len(rs); i++ {
		if strings.EqualFold(string(rs[i:i+n]), sub) {
			return true
		}
	}
	return false
}

func TestListings_TwoStoresAgree(t *testing.T) {
	oneGoroutine(t)
	e := newTwoEngines(t)
	ctx := e.ctx

	names := []string{
		"école du Nord", "ÉCOLE DU SUD", "Straße", "STRASSE", "İstanbul", "istanbul", "ıspanak",
		"ΣΊΣΥΦΟΣ", "σίσυφος", "a_b 100%", `back\slash`, `it's "quoted"`, "x*y (z) [w]",
		"and or not near", "😀 emoji", "e\u0301cole", "ﬁle", "Ω ohm", "ſtar", "Kelvin K",
		"ab pool", "abpool", strings.Repeat("x", 255),
	}
	types := []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel}
	type pair struct {
		a, b pool.Pool
	}
	var pools []pair
	for i, n := range names {
		if i%4 != 3 { // every fourth pool shares the creation time of the one before
			e.tick()
		}
		p := pool.CreateParams{
			Name:        n,
			Description: fmt.Sprintf("desc %d %s", i, names[(i+5)%len(names)]),
			Type:        types[i%3],
			IsActive:    pqPtr(i%5 != 0),
		}
		pa, err := e.a.CreatePool(ctx, p)
		require.NoError(t, err, n)
		pb, err := e.b.CreatePool(ctx, p)
		require.NoError(t, err, n)
		e.bToA[pb.UUID] = pa.UUID
		pools = append(pools, pair{pa, pb})
	}
	// The UUIDs of one engine are in creation order (version 7): ties of
	// created_at are broken the same way in both.
	for i := 1; i < len(pools); i++ {
		require.Negative(t, strings.Compare(pools[i-1].a.UUID.String(), pools[i].a.UUID.String()))
		require.Negative(t, strings.Compare(pools[i-1].b.UUID.String(), pools[i].b.UUID.String()))
	}

	mapPage := func(pg pool.PoolPage) pool.PoolPage {
		out := pg
		out.Data = make([]pool.Pool, len(pg.Data))
		for i, p := range pg.Data {
			p.UUID = e.bToA[p.UUID]
			out.Data[i] = p
		}
		return out
	}
	same := func(q pool.PoolQuery) (pool.PoolPage, error) {
		pa, ea := e.a.Pools(ctx, q)
		pb, eb := e.b.Pools(ctx, q)
		require.Equal(t, errFields(ea), errFields(eb), "Pools %+q: errors differ", q)
		if ea == nil {
			require.Equal(t, pa, mapPage(pb), "Pools %+q: pages differ", q)
			require.LessOrEqual(t, len(pa.Data), pa.PerPage)
			require.Equal(t, max(1, (pa.Total+pa.PerPage-1)/pa.PerPage), pa.LastPage)
		}
		return pa, ea
	}

	for _, s := range listingSearches {
		var want []uuid.UUID
		for _, p := range pools {
			if foldContains(p.a.Name, s) || foldContains(p.a.Description, s) || foldContains(string(p.a.Type), s) {
				want = append(want, p.a.UUID)
			}
		}
		pg, err := same(pool.PoolQuery{Search: s, PerPage: 100})
		require.NoError(t, err, "search %q", s)
		var got []uuid.UUID
		for _, p := range pg.Data {
			got = append(got, p.UUID)
		}
		require.Equal(t, want, got, "search %q: not what a case-insensitive substring search finds", s)
		require.Equal(t, len(want), pg.Total, "search %q: total", s)

		// Paged, filtered.
		for _, q := range []pool.PoolQuery{
			{Search: s, PerPage: 1, Page: 2},
			{Search: s, PerPage: 3, Page: 2, Type: "fifo"},
			{Search: s, IsActive: pqPtr(false)},
			{Search: s, PerPage: 2, Page: 1000},
		} {
			_, err := same(q)
			require.NoError(t, err)
		}
	}
	for _, s := range badSearches {
		_, err := same(pool.PoolQuery{Search: s})
		require.ErrorIs(t, err, validate.ErrInvalid, "search %q", s)
	}
	// Pages and their sizes.
	for _, q := range []pool.PoolQuery{
		{}, {PerPage: 1}, {PerPage: 100}, {Page: 3, PerPage: 10}, {Page: 4, PerPage: 10},
		{Page: pool.MaxPage, PerPage: 100}, {Type: "Fifo"},
	} {
		pg, err := same(q)
		require.NoError(t, err, "%+v", q)
		if q.Page > 3 {
			require.Empty(t, pg.Data, "%+v: past the last page", q)
			require.Equal(t, len(names), pg.Total, "%+v: past the last page", q)
			require.Equal(t, q.Page, pg.CurrentPage, "%+v: past the last page", q)
		}
	}
	for _, q := range []pool.PoolQuery{
		{PerPage: 101}, {PerPage: -1}, {Page: -1}, {Page: pageOverMax}, {Type: "fifo "}, {Type: "queue"},
	} {
		_, err := same(q)
		require.ErrorIs(t, err, validate.ErrInvalid, "%+v", q)
	}
	all, err := same(pool.PoolQuery{PerPage: 100})
	require.NoError(t, err)
	require.Len(t, all.Data, len(names))
	for i, p := range all.Data {
		require.Equal(t, pools[i].a.UUID, p.UUID, "pool %d out of creation order", i)
	}
	var paged []pool.Pool
	for page := 1; ; page++ {
		pg, err := same(pool.PoolQuery{Page: page, PerPage: 4})
		require.NoError(t, err)
		paged = append(paged, pg.Data...)
		if page >= pg.LastPage {
			break
		}
	}
	require.Equal(t, all.Data, paged, "pages of 4 are not the listing of 100 cut in pages")

	// Items of one pool, with the same contacts in both, searched.
	pa, pb := pools[0].a.UUID, pools[0].b.UUID
	var items []pool.NewItem
	for i, n := range names[:len(names)-1] {
		items = append(items, pool.NewItem{ContactUUID: uuid.New(), Priority: i % 3,
			Contact: pool.Contact{Name: n, Email: fmt.Sprintf("c%d@example.com", i), PhoneNumber: fmt.Sprintf("+1555%07d", i)}})
	}
	ra, err := e.a.Add(ctx, pa, items...)
	require.NoError(t, err)
	rb, err := e.b.Add(ctx, pb, items...)
	require.NoError(t, err)
	require.Equal(t, ra, rb)
	sameItems := func(q pool.ItemQuery) {
		ia, ea := e.a.Items(ctx, pa, q)
		ib, eb := e.b.Items(ctx, pb, q)
		require.Equal(t, errFields(ea), errFields(eb), "Items %+q: errors differ", q)
		if ea != nil {
			return
		}
		require.Equal(t, []int{ia.CurrentPage, ia.LastPage, ia.PerPage, ia.Total},
			[]int{ib.CurrentPage, ib.LastPage, ib.PerPage, ib.Total}, "Items %+q: page differs", q)
		ca, cb := make([]uuid.UUID, 0), make([]uuid.UUID, 0)
		for _, it := range ia.Data {
			ca = append(ca, it.ContactUUID)
		}
		for _, it := range ib.Data {
			cb = append(cb, it.ContactUUID)
		}
		require.Equal(t, ca, cb, "Items %+q: data differs", q)
	}
	for _, s := range slices.Concat(listingSearches, badSearches, names) {
		sameItems(pool.ItemQuery{Search: s, PerPage: 100})
		sameItems(pool.ItemQuery{Search: s, PerPage: 1, Page: 2})
		sameItems(pool.ItemQuery{Search: s, Page: 50})
	}

	// Rules and campaigns, named alike, searched alike.
	for i, n := range names[:8] {
		e.tick()
		target := names[(i+3)%len(names)]
		rp := campaign.CreateRuleParams{Name: n, EscalationType: pqPtr("sms " + names[i+1]), EscalationTarget: &target}
		r1, err := e.a.CreateRule(ctx, rp)
		require.NoError(t, err)
		r2, err := e.b.CreateRule(ctx, rp)
		require.NoError(t, err)
		e.bToA[r2.UUID] = r1.UUID
		c1, err := e.a.CreateCampaign(ctx, campaign.CreateParams{Name: n, RuleUUID: &r1.UUID})
		require.NoError(t, err)
		c2, err := e.b.CreateCampaign(ctx, campaign.CreateParams{Name: n, RuleUUID: &r2.UUID})
		require.NoError(t, err)
		e.bToA[c2.UUID] = c1.UUID
	}
	for _, s := range slices.Concat(listingSearches, badSearches) {
		la, ea := e.a.Rules(ctx, campaign.RuleQuery{Search: s, PerPage: 100})
		lb, eb := e.b.Rules(ctx, campaign.RuleQuery{Search: s, PerPage: 100})
		require.Equal(t, errFields(ea), errFields(eb), "Rules %q", s)
		require.Equal(t, la.Total, lb.Total, "Rules %q", s)
		for i := range la.Data {
			require.Equal(t, la.Data[i].UUID, e.bToA[lb.Data[i].UUID], "Rules %q", s)
		}
		ka, ea := e.a.Campaigns(ctx, campaign.Query{Search: s, PerPage: 100})
		kb, eb := e.b.Campaigns(ctx, campaign.Query{Search: s, PerPage: 100})
		require.Equal(t, errFields(ea), errFields(eb), "Campaigns %q", s)
		require.Equal(t, ka.Total, kb.Total, "Campaigns %q", s)
		for i := range ka.Data {
			require.Equal(t, ka.Data[i].UUID, e.bToA[kb.Data[i].UUID], "Campaigns %q", s)
		}
	}
}

// TestListings_ConsistentUnderWrites lists a pool's items, its detail and
// the pool listing while other goroutines add and remove items and skip and
// requeue others, on each store: every answer is one snapshot (no contact
// twice, every contact that stayed in the pool throughout listed, a total
// that is the data's length, status counts that add up to contacts_count).
func TestListings_ConsistentUnderWrites(t *testing.T) {
	stores := map[string]func(t *testing.T) *queue.Engine{
		"SQLiteFile": func(t *testing.T) *queue.Engine {
			return openEngine(t, openFileStore(t, ""), queue.Options{PollInterval: time.Hour})
		},
		"Postgres": func(t *testing.T) *queue.Engine {
			url := pgtest.URL(t)
			return openEngine(t, pgtest.Open(t, url, postgres.Options{MaxConns: 4}), queue.Options{PollInterval: time.Hour})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			eng := open(t)
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "listed", Description: "d", Type: pool.Parallel})
			require.NoError(t, err)
			const stable = 40
			var keep []pool.NewItem
			for range stable {
				keep = append(keep, pool.NewItem{ContactUUID: uuid.New()})
			}
			_, err = eng.Add(ctx, p.UUID, keep...)
			require.NoError(t, err)

			stop := make(chan struct{})
			errc := make(chan error, 2)
			go func() { // transient items
				for {
					select {
					case <-stop:
						errc <- nil
						return
					default:
					}
					batch := []pool.NewItem{{ContactUUID: uuid.New()}, {ContactUUID: uuid.New()}, {ContactUUID: uuid.New()}}
					if _, err := eng.Add(ctx, p.UUID, batch...); err != nil {
						errc <- err
						return
					}
					if _, err := eng.Remove(ctx, p.UUID, batch[0].ContactUUID, batch[1].ContactUUID, batch[2].ContactUUID); err != nil {
						errc <- err
						return
					}
				}
			}()
			go func() { // stable items change status, never leave
				for i := 0; ; i++ {
					select {
					case <-stop:
						errc <- nil
						return
					default:
					}
					c := keep[i%stable].ContactUUID
					if _, err := eng.Skip(ctx, p.UUID, c, "x"); err != nil {
						errc <- err
						return
					}
					if _, err := eng.Requeue(ctx, p.UUID, c); err != nil {
						errc <- err
						return
					}
				}
			}()
			deadline := time.Now().Add(500 * time.Millisecond)
			for time.Now().Before(deadline) {
				pg, err := eng.Items(ctx, p.UUID, pool.ItemQuery{PerPage: 100})
				require.NoError(t, err)
				if pg.Total <= 100 {
					require.Equal(t, pg.Total, len(pg.Data), "total and data of one page")
				}
				seen := map[uuid.UUID]bool{}
				for _, it := range pg.Data {
					require.False(t, seen[it.ContactUUID], "contact listed twice")
					seen[it.ContactUUID] = true
				}
				for _, k := range keep[:min(stable, len(pg.Data))] {
					require.True(t, seen[k.ContactUUID], "a contact in the pool throughout is missing")
				}
				for _, st := range []pool.Status{pool.StatusPending, pool.StatusSkipped} {
					fp, err := eng.Items(ctx, p.UUID, pool.ItemQuery{PerPage: 100, Status: st})
					require.NoError(t, err)
					require.Equal(t, fp.Total, len(fp.Data), "status %s: total and data", st)
					for _, it := range fp.Data {
						require.Equal(t, st, it.Status)
					}
				}
				d, err := eng.Pool(ctx, p.UUID)
				require.NoError(t, err)
				sum := 0
				for _, n := range d.StatusCounts {
					sum += n
				}
				require.Equal(t, d.ContactsCount, sum, "status_counts sum to contacts_count")
				require.Equal(t, d.ContactsCount, d.StatusCounts[pool.StatusPending]+d.StatusCounts[pool.StatusSkipped])
				require.GreaterOrEqual(t, d.ContactsCount, stable)
				ps, err := eng.Pools(ctx, pool.PoolQuery{})
				require.NoError(t, err)
				require.Len(t, ps.Data, 1)
				require.GreaterOrEqual(t, ps.Data[0].ContactsCount, stable)
			}
			close(stop)
			require.NoError(t, <-errc)
			require.NoError(t, <-errc)
		})
	}
}

// TestListings_CountsAfterEveryKindOfChange drives the same pool through
// governance (a rule's window schedules, do-not-call and opt-out skip),
// dispatch, expiry, failure, Skip, Requeue, Remove and Duplicate on both
// stores: after each step both report the same status_counts, which add up
// to contacts_count, match the items listed by status, and match the pool
// listing's contacts_count.
func TestListings_CountsAfterEveryKindOfChange(t *testing.T) {
	oneGoroutine(t)
	e := newTwoEngines(t)
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	// tryN claims up to n items, as many as are due, without waiting.
	tryN := func(eng *queue.Engine, id uuid.UUID, n int) []*queue.Lease {
		var out []*queue.Lease
		for range n {
			l, err := eng.TryDequeue(ctx, id)
			if errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity) {
				break
			}
			require.NoError(t, err)
			out = append(out, l)
		}
		return out
	}
	contacts := make([]uuid.UUID, 8)
	var items []pool.NewItem
	for i := range contacts {
		contacts[i] = uuid.New()
		items = append(items, pool.NewItem{ContactUUID: contacts[i], Priority: i,
			Contact: pool.Contact{Name: fmt.Sprintf("Contact %d", i), TimeZone: "UTC"}})
	}
	type side struct {
		eng  *queue.Engine
		pool uuid.UUID
		dup  uuid.UUID
		held []*queue.Lease
	}
	sides := []*side{{eng: e.a}, {eng: e.b}}
	for _, s := range sides {
		p, err := s.eng.CreatePool(ctx, pool.CreateParams{Name: "governed", Description: "d", Type: pool.Parallel, MaxRetries: pqPtr(1)})
		require.NoError(t, err)
		s.pool = p.UUID
		_, err = s.eng.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
		r, err := s.eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "window", MaxTotalCalls: pqPtr(2),
			StartTime: pqPtr("09:00"), EndTime: pqPtr("18:00")})
		require.NoError(t, err)
		c, err := s.eng.CreateCampaign(ctx, campaign.CreateParams{Name: "governing", RuleUUID: &r.UUID})
		require.NoError(t, err)
		_, err = s.eng.AttachPools(ctx, c.UUID, p.UUID)
		require.NoError(t, err)
		_, err = s.eng.AddDNC(ctx, contacts[0])
		require.NoError(t, err)
		_, err = s.eng.OptOut(ctx, contacts[1])
		require.NoError(t, err)
		_, err = s.eng.StartCampaign(ctx, c.UUID)
		require.NoError(t, err)
	}
	check := func(step string) {
		t.Helper()
		var counts []map[pool.Status]int
		for _, s := range sides {
			for _, id := range []uuid.UUID{s.pool, s.dup} {
				if id == uuid.Nil {
					continue
				}
				d, err := s.eng.Pool(ctx, id)
				require.NoError(t, err, step)
				sum := 0
				for st, n := range d.StatusCounts {
					sum += n
					pg, err := s.eng.Items(ctx, id, pool.ItemQuery{Status: st, PerPage: 100})
					require.NoError(t, err, step)
					require.Equal(t, n, pg.Total, "%s: status_counts[%s] and the listing's total", step, st)
					require.Len(t, pg.Data, n, "%s: status_counts[%s] and the listing", step, st)
				}
				require.Equal(t, d.ContactsCount, sum, "%s: status_counts add up to contacts_count", step)
				all, err := s.eng.Items(ctx, id, pool.ItemQuery{PerPage: 100})
				require.NoError(t, err, step)
				require.Equal(t, d.ContactsCount, all.Total, "%s: contacts_count and the listing's total", step)
				ps, err := s.eng.Pools(ctx, pool.PoolQuery{PerPage: 100})
				require.NoError(t, err, step)
				for _, p := range ps.Data {
					if p.UUID == id {
						require.Equal(t, d.ContactsCount, p.ContactsCount, "%s: the pool listing's contacts_count", step)
					}
				}
				counts = append(counts, d.StatusCounts)
			}
		}
		require.Equal(t, counts[:len(counts)/2], counts[len(counts)/2:], "%s: the stores' counts differ", step)
	}
	check("started")

	// 03:04 UTC: outside the window: every due item is scheduled, or
	// skipped for DNC and opt-out.
	for _, s := range sides {
		require.Empty(t, tryN(s.eng, s.pool, 10))
	}
	check("claimed outside the window")

	e.clk.set(time.Date(modelEpoch.Year(), modelEpoch.Month(), modelEpoch.Day(), 9, 30, 0, 0, time.UTC))
	for _, s := range sides {
		ls := tryN(s.eng, s.pool, 3)
		require.Len(t, ls, 3)
		s.held = ls
	}
	check("three dispatched")

	e.clk.set(e.clk.Now().Add(2 * time.Minute)) // the leases (1 min) expire
	for _, s := range sides {
		ls := tryN(s.eng, s.pool, 2)
		require.Len(t, ls, 2)
		require.NoError(t, s.eng.Fail(ctx, ls[0], queue.Failure{Note: "busy"}))
		require.NoError(t, s.eng.Fail(ctx, ls[1], queue.Failure{Final: true, Note: "bad number"}))
	}
	check("expired, failed")

	for _, s := range sides {
		it, err := s.eng.Item(ctx, s.pool, contacts[7])
		require.NoError(t, err)
		if !it.Status.Terminal() && !it.Status.InFlight() {
			_, err = s.eng.Skip(ctx, s.pool, contacts[7], "skipped")
			require.NoError(t, err)
		}
		for _, c := range contacts {
			it, err := s.eng.Item(ctx, s.pool, c)
			require.NoError(t, err)
			if it.Status.Terminal() {
				_, err = s.eng.Requeue(ctx, s.pool, c)
				require.NoError(t, err)
				break
			}
		}
	}
	check("skipped, requeued")

	for _, s := range sides {
		_, err := s.eng.Remove(ctx, s.pool, contacts[0], contacts[1])
		require.NoError(t, err)
		d, err := s.eng.DuplicatePool(ctx, s.pool, pool.DuplicateParams{})
		require.NoError(t, err)
		s.dup = d.UUID
		require.Equal(t, 6, d.ContactsCount)
	}
	check("removed, duplicated")

	for range 12 { // both stores in step, 36 hours
		e.clk.set(e.clk.Now().Add(3 * time.Hour))
		for _, s := range sides {
			for _, l := range tryN(s.eng, s.pool, 10) {
				require.NoError(t, s.eng.Fail(ctx, l, queue.Failure{Note: "no answer"}))
			}
		}
		check("worked on " + e.clk.Now().Format(time.RFC3339))
	}
	check("worked out")
}
