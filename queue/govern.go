package queue

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// governed is a pool as a write operation sees it at tx.Now: its row, and
// what governs the dispatch of its items.
//
// A pool attached to no campaign dispatches under its own settings. One
// attached to campaigns dispatches only while one of them is In Process,
// and is held otherwise. The governing campaign (In Process or Paused: at
// most one, the engine sees to it) lends the pool its rule: the rule's
// max_total_calls is the ceiling of the items' attempts, and its retry
// interval the delay of their retries.
type governed struct {
	pool.Pool
	ceiling  int                // attempts an item may have in all
	retry    time.Duration      // delay of a retry a failure schedules without a time
	held     bool               // attached to campaigns, none In Process
	campaign *campaign.Campaign // the governing campaign, nil if none
	rule     *campaign.Rule     // its rule, nil if none
}

// gate returns the gate the governing rule sets for item it (its window
// and day cap in the contact's zone), and false when no rule governs g.
func (g governed) gate(it pool.Item) (campaign.Gate, bool) {
	if g.rule == nil {
		return campaign.Gate{}, false
	}
	return g.rule.Gate(g.zone(it)), true
}

// zone is the time zone of it's contact: its own, else the governing
// campaign's default, else UTC. A zone name this binary's zone database
// does not know (the item was added by a build with a newer one) counts
// as absent.
func (g governed) zone(it pool.Item) *time.Location {
	for _, name := range []string{it.TimeZone, g.campaignZone()} {
		if name == "" {
			continue
		}
		if loc, err := pool.LoadZone(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

func (g governed) campaignZone() string {
	if g.campaign == nil {
		return ""
	}
	return g.campaign.TimeZone
}

// govern reads what governs p: its governing campaign (a seek that finds
// nothing for a pool of none, and does not read the campaigns done with
// it) and that campaign's rule.
func (e *Engine) govern(ctx context.Context, tx store.Tx, p pool.Pool) (governed, error) {
	g := governed{Pool: p, ceiling: p.Ceiling(), retry: e.opts.RetryDelay}
	cs, attached, err := tx.PoolGovernors(ctx, p.UUID)
	if err != nil || !attached {
		return g, err
	}
	g.held = true
	if len(cs) == 0 {
		return g, nil
	}
	g.campaign = &cs[0]
	g.held = !g.campaign.Status.Dispatches()
	if g.campaign.RuleUUID == nil {
		return g, nil
	}
	r, err := tx.Rule(ctx, *g.campaign.RuleUUID)
	if err != nil {
		return g, err
	}
	g.rule = &r
	g.ceiling = r.Ceiling()
	if d, ok := r.RetryDelay(); ok {
		g.retry = d
	}
	return g, nil
}

// poolNow returns pool id as of tx.Now with its expired leases applied
// (each a failed attempt, under the ceiling and retry delay that govern
// the pool), and how many it applied. Every write on a pool's items goes
// through it, so that a settlement or a skip on a busy pool keeps its
// counts current too. What governs the pool is read only when a lease has
// expired: a write that needs it otherwise calls govern itself.
func (e *Engine) poolNow(ctx context.Context, tx *wtx, id uuid.UUID) (pool.Pool, int, error) {
	p, err := tx.Pool(ctx, id)
	if err != nil {
		return pool.Pool{}, 0, err
	}
	n, err := e.reclaim(ctx, tx, p, tx.Now)
	if err != nil {
		return pool.Pool{}, 0, err
	}
	return p, n, nil
}

// reclaim applies every expired lease of p at now, each as a failed
// attempt, and returns how many it applied.
func (e *Engine) reclaim(ctx context.Context, tx *wtx, p pool.Pool, now time.Time) (int, error) {
	total := 0
	var g *governed // read at the first expired lease
	for {
		expired, err := tx.Expired(ctx, p.UUID, now, reclaimBatch)
		if err != nil {
			return total, err
		}
		if len(expired) > 0 && g == nil {
			gv, err := e.govern(ctx, tx, p)
			if err != nil {
				return total, err
			}
			g = &gv
		}
		for _, it := range expired {
			ceiling, others, err := e.contactsOthers(ctx, tx, *g, it)
			if err != nil {
				return total, err
			}
			out, err := it.Expired(ceiling, now, g.retry)
			if err != nil {
				return total, err
			}
			if out, err = e.governFailure(ctx, tx, *g, out, others); err != nil {
				return total, err
			}
			if err := tx.UpdateItem(ctx, it.Status, out); err != nil {
				return total, err
			}
		}
		total += len(expired)
		if len(expired) < reclaimBatch {
			return total, nil
		}
	}
}
