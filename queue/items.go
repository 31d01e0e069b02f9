package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Add puts contacts into a pool as Pending items, in the order given, in one
// transaction: all or nothing. Each item keeps the contact's fields it is
// given ([pool.Contact]: name, phone number, email, time zone). Duplicates
// inside the batch are folded (the first occurrence wins); contacts already
// in the pool are skipped and counted, and keep the fields they were first
// added with. Errors: [validate.Errors] naming the index of every bad item
// (nil UUID, a contact field that breaks its rule, payload that is not JSON
// or larger than [pool.MaxPayloadBytes], or nested deeper than
// [pool.MaxPayloadDepth]; an empty batch),
// [store.ErrNotFound] for an unknown pool; on any error nothing is written,
// except after an error wrapping [store.ErrCommitUnknown] (PostgreSQL: the
// COMMIT's answer lost), when the items may have been: added again, those
// that were are skipped and counted in ContactsSkipped.
// ctx bounds the checks too: a large batch (a million contacts take about
// two seconds to check) stops being checked once ctx ends, and Add returns
// ctx's error ([pool.PrepareItemsContext]).
// Blocked Dequeues on the pool wake up.
func (e *Engine) Add(ctx context.Context, poolID uuid.UUID, items ...pool.NewItem) (pool.AddResult, error) {
	var v validate.Validator
	v.Check(poolID != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	// A large batch's checks stop when ctx ends; a nil ctx is reported by
	// write, after the arguments' checks, as every call reports it.
	vctx := ctx
	if vctx == nil {
		vctx = context.Background()
	}
	batch, err := pool.PrepareItemsContext(vctx, items)
	if ctxErr := vctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return pool.AddResult{}, fmt.Errorf("add items: %w", err)
	}
	v.Merge("", err)
	if err := v.Err(); err != nil {
		return pool.AddResult{}, fmt.Errorf("add items: %w", err)
	}
	var added int
	err = e.write(ctx, func(ctx context.Context, tx *wtx) error {
		// Rows are made and inserted a chunk at a time, so a batch of a
		// million contacts holds a chunk of rows in memory, not a million.
		// added_at is the transaction's instant: items inserted later (a
		// larger ID) are never added earlier.
		added = 0
		rows := make([]pool.Item, 0, min(len(batch), addChunk))
		for chunk := range slices.Chunk(batch, addChunk) {
			rows = rows[:0]
			for _, n := range chunk {
				rows = append(rows, n.Item(poolID, tx.Now))
			}
			n, err := tx.InsertItems(ctx, poolID, rows)
			if err != nil {
				return err
			}
			added += n
		}
		if added > 0 {
			signal(tx, poolID)
		}
		return nil
	})
	if err != nil {
		return pool.AddResult{}, fmt.Errorf("add items: %w", err)
	}
	if added > 0 {
		e.wake.notify(poolID)
	}
	return pool.AddResult{ContactsAdded: added, ContactsSkipped: len(batch) - added}, nil
}

// addChunk is how many rows Add makes and hands to the store at a time.
const addChunk = 4096

// Items returns one page of a pool's items in insertion order, filtered by
// status and by a search over the contacts' name, email and phone number
// (type-ahead words: see [pool.ItemQuery].Search; a full-text index, so
// the cost grows with the matches, not the pool). Page defaults to 1, PerPage to 25 (at most 100).
// A page costs what its offset skips; to walk a whole pool, page by keyset
// instead: q.After set to the ID of the last item of the page before, Page
// left at 1 (see [pool.ItemQuery].After).
// Errors:
// [validate.Errors] for a bad query, [store.ErrNotFound] for an unknown
// pool.
func (e *Engine) Items(ctx context.Context, poolID uuid.UUID, q pool.ItemQuery) (pool.ItemPage, error) {
	q, err := q.Normalize()
	if err := checkIDAnd("uuid", poolID, err); err != nil {
		return pool.ItemPage{}, fmt.Errorf("list items: %w", err)
	}
	return listPage(ctx, e, "list items", q.Page, q.PerPage, func(ctx context.Context, tx store.Tx) ([]pool.Item, int, error) {
		if _, err := tx.Pool(ctx, poolID); err != nil {
			return nil, 0, err
		}
		return tx.Items(ctx, poolID, q)
	})
}

// Item returns the item of a contact in a pool. Errors: [store.ErrNotFound].
func (e *Engine) Item(ctx context.Context, poolID, contact uuid.UUID) (pool.Item, error) {
	if err := checkIDs(poolID, contact); err != nil {
		return pool.Item{}, fmt.Errorf("get item: %w", err)
	}
	var it pool.Item
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		it, err = tx.Item(ctx, poolID, contact)
		return err
	})
	if err != nil {
		return pool.Item{}, fmt.Errorf("get item: %w", err)
	}
	return it, nil
}

// Skip withdraws a waiting item: it becomes Skipped (terminal) with note.
// Errors: [ErrInFlight], [ErrWrongStatus] for a finished item,
// [store.ErrNotFound], [validate.Errors] for a note that is not valid UTF-8,
// holds NUL or is longer than [pool.MaxNoteLen].
func (e *Engine) Skip(ctx context.Context, poolID, contact uuid.UUID, note string) (pool.Item, error) {
	var v validate.Validator
	checkIDsInto(&v, poolID, contact)
	v.Text("note", note, pool.MaxNoteLen)
	if err := v.Err(); err != nil {
		return pool.Item{}, fmt.Errorf("skip item: %w", err)
	}
	it, err := e.changeItem(ctx, poolID, contact, func(it pool.Item) (pool.Item, error) {
		return it.Skipped(note)
	}, false)
	if err != nil {
		return pool.Item{}, fmt.Errorf("skip item: %w", err)
	}
	return it, nil
}

// Requeue puts a finished item (Completed, Failed or Skipped) back to
// Pending with attempts, retry count and history reset, in its original
// insertion place. Errors: [ErrInFlight], [ErrWrongStatus] for an item that
// is waiting, [store.ErrNotFound].
func (e *Engine) Requeue(ctx context.Context, poolID, contact uuid.UUID) (pool.Item, error) {
	it, err := e.changeItem(ctx, poolID, contact, pool.Item.Requeued, true)
	if err != nil {
		return pool.Item{}, fmt.Errorf("requeue item: %w", err)
	}
	e.wake.notify(poolID)
	return it, nil
}

// SetPriority changes the priority of an item that is not in flight.
// Errors: [ErrInFlight], [store.ErrNotFound].
func (e *Engine) SetPriority(ctx context.Context, poolID, contact uuid.UUID, priority int) (pool.Item, error) {
	it, err := e.changeItem(ctx, poolID, contact, func(it pool.Item) (pool.Item, error) {
		return it.WithPriority(priority)
	}, false)
	if err != nil {
		return pool.Item{}, fmt.Errorf("set priority: %w", err)
	}
	return it, nil
}

// Remove deletes the items of the given contacts from a pool, in one
// transaction of a few statements whatever their number (the items are
// read in one, their calls kept in one, and deleted in one), and returns
// how many it deleted. Contacts not in the pool are ignored, so a retried
// Remove is harmless. If any of the items is in flight nothing is deleted
// and the error is [ErrInFlight], naming the first such contact. Errors
// also:
// [store.ErrNotFound] for an unknown pool, [validate.Errors] for nil UUIDs,
// no contact at all or more than [MaxContactsPerCall] (the write lock is
// held while they are deleted).
func (e *Engine) Remove(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) (int, error) {
	var v validate.Validator
	checkContactCount(&v, len(contacts))
	checkIDsInto(&v, poolID, contacts...)
	if err := v.Err(); err != nil {
		return 0, fmt.Errorf("remove items: %w", err)
	}
	var n int
	var freed bool
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		n = 0
		var err error
		if _, freed, err = e.applyExpiries(ctx, tx, poolID); err != nil {
			return err
		}
		// A few statements whatever the number of contacts: the pool's
		// lock is held until the transaction ends, and every claim and
		// settlement of the pool, on any node, waits for it.
		found, err := tx.ItemsOfContacts(ctx, poolID, contacts...)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return nil
		}
		byContact := make(map[uuid.UUID]pool.Item, len(found))
		for _, it := range found {
			byContact[it.ContactUUID] = it
		}
		for _, c := range contacts { // the first in flight in the order given
			if it, ok := byContact[c]; ok {
				if err := it.Removable(); err != nil {
					return fmt.Errorf("contact %s: %w", c, err) // which one, among up to MaxContactsPerCall
				}
			}
		}
		ids := make([]int64, len(found))
		var called []uuid.UUID // the contacts of those with a call a rule counts
		for i, it := range found {
			ids[i] = it.ID
			if it.Attempts > 0 || it.CallsToday > 0 || it.PrevCallsToday > 0 || it.OlderCallsToday > 0 {
				called = append(called, it.ContactUUID)
			}
		}
		if len(called) > 0 {
			// The contacts' calls still count against the caps of the
			// campaigns of the pool: kept before the items go.
			if err := tx.KeepCalls(ctx, poolID, called...); err != nil {
				return err
			}
		}
		n, err = tx.DeleteItems(ctx, poolID, ids)
		if err == nil && n != len(ids) {
			err = fmt.Errorf("deleted %d of the %d items read under the pool's lock", n, len(ids))
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove items: %w", err)
	}
	if freed {
		e.wake.notify(poolID)
	}
	return n, nil
}

// changeItem applies fn to one item in a write transaction, after applying
// the pool's expired leases (so an item whose holder vanished is no longer
// in flight). due says that fn makes the item due: the pool's waiters in
// other processes are signalled.
func (e *Engine) changeItem(ctx context.Context, poolID, contact uuid.UUID, fn func(pool.Item) (pool.Item, error), due bool) (pool.Item, error) {
	if err := checkIDs(poolID, contact); err != nil {
		return pool.Item{}, err
	}
	var out pool.Item
	var freed bool
	err := e.write(ctx, func(ctx context.Context, tx *wtx) (err error) {
		if _, freed, err = e.applyExpiries(ctx, tx, poolID); err != nil {
			return err
		}
		it, err := tx.Item(ctx, poolID, contact)
		if err != nil {
			return err
		}
		if out, err = fn(it); err != nil {
			return err
		}
		if due {
			signal(tx, poolID)
		}
		return tx.UpdateItem(ctx, it.Status, out)
	})
	if err == nil && freed {
		e.wake.notify(poolID)
	}
	return out, err
}

// applyExpiries is poolNow (the pool, locked, its expired leases applied)
// for a write that is not a claim, and reports whether there were expired
// leases: their slots are free, so it signals the pool's waiters in other
// processes, and the caller wakes its engine's after the commit
// (wake.notify), as UpdatePool does.
func (e *Engine) applyExpiries(ctx context.Context, tx *wtx, id uuid.UUID) (p pool.Pool, freed bool, err error) {
	p, n, err := e.poolNow(ctx, tx, id)
	if err != nil {
		return pool.Pool{}, false, err
	}
	if n > 0 {
		signal(tx, id)
	}
	return p, n > 0, nil
}
