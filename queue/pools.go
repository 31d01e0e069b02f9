package queue

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// CreatePool validates p, applies the defaults and stores a new pool with a
// fresh UUIDv7 (time-ordered, for index locality). A [validate.Errors]
// listing every failing field is returned for bad input, and nothing is
// written.
func (e *Engine) CreatePool(ctx context.Context, p pool.CreateParams) (pool.Pool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return pool.Pool{}, fmt.Errorf("create pool: %w", err)
	}
	np, err := pool.New(id, p, e.now())
	if err != nil {
		return pool.Pool{}, fmt.Errorf("create pool: %w", err)
	}
	if err := e.write(ctx, func(ctx context.Context, tx *wtx) error { return tx.InsertPool(ctx, np) }); err != nil {
		return pool.Pool{}, fmt.Errorf("create pool: %w", err)
	}
	return np, nil
}

// UpdatePool changes the given fields of a pool ([pool.UpdateParams]) and
// returns it. UpdatedAt moves only when a value actually changes. Switching
// the type leaves in-flight items as they are; the next dispatch uses the new
// order. Lowering max_parallel_items preempts nothing: no new dispatch until
// fewer than the new cap are in flight. A new max_retries applies to every
// later decision; the pool's leases that have ended are applied first, as
// failed attempts under the former settings. Errors: [validate.Errors] for bad input,
// [store.ErrNotFound]; on any error nothing is written, except after an
// error wrapping [store.ErrCommitUnknown] (PostgreSQL: the COMMIT's answer
// lost), when the change may have been: read the pool back to know.
func (e *Engine) UpdatePool(ctx context.Context, id uuid.UUID, u pool.UpdateParams) (pool.Pool, error) {
	if err := checkIDAnd("uuid", id, u.Validate()); err != nil {
		return pool.Pool{}, fmt.Errorf("update pool: %w", err)
	}
	var out pool.Pool
	var raised bool // the cap went up, or expired leases freed slots
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		raised = false
		p, err := tx.Pool(ctx, id)
		if err != nil {
			return err
		}
		np, changed, err := u.Apply(p)
		if err != nil || !changed {
			out = p
			return err
		}
		// Its leases that ended are failed attempts under the settings
		// they ended under (max_retries), before the change (see
		// lockPools).
		n, err := e.reclaim(ctx, tx, p, tx.Now)
		if err != nil {
			return err
		}
		np.UpdatedAt = tx.Now
		out = np
		raised = np.Cap() > p.Cap() || n > 0 // expired leases freed slots
		if raised {
			signal(tx, id)
		}
		return tx.UpdatePool(ctx, np)
	})
	if err != nil {
		return pool.Pool{}, fmt.Errorf("update pool: %w", err)
	}
	if raised {
		e.wake.notify(id) // a blocked Dequeue may go through now
	}
	return out, nil
}

// Pool returns one pool with the number of its items in each status (every
// status present, zeros included; they sum to ContactsCount) and the
// campaigns it is attached to. Errors: [store.ErrNotFound].
func (e *Engine) Pool(ctx context.Context, id uuid.UUID) (pool.Detail, error) {
	if err := checkID("uuid", id); err != nil {
		return pool.Detail{}, fmt.Errorf("get pool: %w", err)
	}
	var d pool.Detail
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) error {
		p, err := tx.Pool(ctx, id)
		if err != nil {
			return err
		}
		counts, err := tx.StatusCounts(ctx, id)
		if err != nil {
			return err
		}
		cs, err := tx.PoolCampaigns(ctx, id)
		if err != nil {
			return err
		}
		refs := make([]pool.CampaignRef, len(cs))
		for i, c := range cs {
			refs[i] = pool.CampaignRef{UUID: c.UUID, Name: c.Name, Status: string(c.Status)}
		}
		d = pool.Detail{Pool: p, StatusCounts: counts, Campaigns: refs}
		return nil
	})
	if err != nil {
		return pool.Detail{}, fmt.Errorf("get pool: %w", err)
	}
	return d, nil
}

// Pools returns one page of pools, oldest first, filtered by q (type,
// active flag, case-insensitive search in name, description and type). Page
// defaults to 1, PerPage to 15 (at most 100). Errors: [validate.Errors] for a
// bad query.
func (e *Engine) Pools(ctx context.Context, q pool.PoolQuery) (pool.PoolPage, error) {
	q, err := q.Normalize()
	if err != nil {
		return pool.PoolPage{}, fmt.Errorf("list pools: %w", err)
	}
	return listPage(ctx, e, "list pools", q.Page, q.PerPage, func(ctx context.Context, tx store.Tx) ([]pool.Pool, int, error) {
		return tx.Pools(ctx, q)
	})
}

// DeletePool removes a pool and all its items. It is refused with
// [ErrInFlight] while any item is in flight (leases that have expired do not
// count). Errors: [store.ErrNotFound].
func (e *Engine) DeletePool(ctx context.Context, id uuid.UUID) error {
	if err := checkID("uuid", id); err != nil {
		return fmt.Errorf("delete pool: %w", err)
	}
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		if _, _, err := e.poolNow(ctx, tx, id); err != nil {
			return err
		}
		n, err := tx.InFlight(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrInFlight
		}
		signal(tx, id)
		// Its items' calls still count against the caps of its campaigns.
		if err := tx.KeepCalls(ctx, id); err != nil {
			return err
		}
		return tx.DeletePool(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("delete pool: %w", err)
	}
	e.wake.notify(id) // its blocked Dequeues learn that it is gone
	return nil
}

// DuplicatePool copies a pool's settings under a new name (default: the
// source's name + " (copy)", cut to 255 characters) and, unless
// d.CopyContacts is false, every item as Pending with its priority and
// payload (attempts and history reset), in the source's insertion order.
// Errors: [validate.Errors] for a bad name, [store.ErrNotFound].
func (e *Engine) DuplicatePool(ctx context.Context, id uuid.UUID, d pool.DuplicateParams) (pool.Duplicated, error) {
	if err := checkIDAnd("uuid", id, d.Validate()); err != nil {
		return pool.Duplicated{}, fmt.Errorf("duplicate pool: %w", err)
	}
	newID, err := uuid.NewV7()
	if err != nil {
		return pool.Duplicated{}, fmt.Errorf("duplicate pool: %w", err)
	}
	var out pool.Duplicated
	err = e.write(ctx, func(ctx context.Context, tx *wtx) error {
		src, err := tx.Pool(ctx, id)
		if err != nil {
			return err
		}
		now := tx.Now
		mp, mr, active := src.MaxParallelItems, src.MaxRetries, src.IsActive
		np, err := pool.New(newID, pool.CreateParams{
			Name:             d.CopyName(src.Name),
			Description:      src.Description,
			Type:             src.Type,
			MaxParallelItems: &mp,
			MaxRetries:       &mr,
			IsActive:         &active,
		}, now)
		if err != nil {
			return err
		}
		if err := tx.InsertPool(ctx, np); err != nil {
			return err
		}
		out.Pool = np
		if d.Copies() {
			n, err := tx.CopyItems(ctx, id, newID, now)
			if err != nil {
				return err
			}
			out.ContactsCopied = n
			out.ContactsCount = n
		}
		return nil
	})
	if err != nil {
		return pool.Duplicated{}, fmt.Errorf("duplicate pool: %w", err)
	}
	return out, nil
}

// listPage reads one page of a listing in a read transaction: list returns
// the rows of page (of perPage rows, from a normalized query) and the
// total; op names the call in its error.
func listPage[T any](ctx context.Context, e *Engine, op string, page, perPage int, list func(context.Context, store.Tx) ([]T, int, error)) (pool.Page[T], error) {
	var out pool.Page[T]
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) error {
		data, total, err := list(ctx, tx)
		out = pool.NewPage(page, perPage, total, data)
		return err
	})
	if err != nil {
		return pool.Page[T]{}, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}
