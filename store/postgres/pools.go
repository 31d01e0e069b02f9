package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

const (
	// insertPoolSQL inserts a pool and its row of counts in one statement.
	insertPoolSQL = `WITH p AS (
    INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
        is_active, created_at, updated_at, search)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING id
)
INSERT INTO pool_counts (pool_id) SELECT id FROM p RETURNING pool_id`

	poolSQL = `SELECT ` + poolCols + ` FROM pools p JOIN pool_counts c ON c.pool_id = p.id WHERE p.uuid = $1`

	updatePoolSQL = `UPDATE pools SET name = $1, description = $2, type = $3, max_parallel_items = $4,
    max_retries = $5, is_active = $6, updated_at = $7, search = $8
WHERE id = $9`

	deletePoolSQL = `DELETE FROM pools WHERE id = $1`

	statusCountsSQL = `SELECT c.pending, c.processing, c.in_call, c.retrying, c.scheduled, c.completed, c.failed, c.skipped
FROM pool_counts c WHERE c.pool_id = $1`
)

// InsertPool stores a new pool and its counts. O(log n) in the number of
// pools. The new pool is seen by no other transaction until this one
// commits, so it is not locked.
func (t *txn) InsertPool(ctx context.Context, p pool.Pool) error {
	const op = "insert pool"
	if err := t.writable(op); err != nil {
		return err
	}
	created, err := nanos(p.CreatedAt)
	if err != nil {
		return wrap(op, err)
	}
	updated, err := nanos(p.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	var k int64
	if err := t.queryRow(ctx, []any{&k}, insertPoolSQL, p.UUID, p.Name, p.Description, string(p.Type),
		p.MaxParallelItems, p.MaxRetries, p.IsActive, created, updated, searchText(p)); err != nil {
		return wrap(op, err)
	}
	st := &poolState{k: k, p: p}
	st.p.ContactsCount = 0
	st.p.CreatedAt, st.p.UpdatedAt = fromNanos(created), fromNanos(updated)
	t.setState(st)
	return nil
}

// Pool returns one pool with its ContactsCount. O(log n). In a write
// transaction it locks the pool and learns its dispatch state too.
func (t *txn) Pool(ctx context.Context, id uuid.UUID) (pool.Pool, error) {
	if !t.readOnly {
		st, err := t.pool(ctx, id)
		if err != nil {
			return pool.Pool{}, wrap("pool", err)
		}
		return st.p, nil
	}
	var st poolState
	if err := t.queryRow(ctx, st.poolDest(), poolSQL, id); err != nil {
		return pool.Pool{}, wrap("pool", notFoundPool(id, err))
	}
	st.finish()
	return st.p, nil
}

// UpdatePool stores every setting of p except CreatedAt. O(log n).
func (t *txn) UpdatePool(ctx context.Context, p pool.Pool) error {
	const op = "update pool"
	if err := t.writable(op); err != nil {
		return err
	}
	updated, err := nanos(p.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	st, err := t.pool(ctx, p.UUID)
	if err != nil {
		return wrap(op, err)
	}
	tag, err := t.exec(ctx, updatePoolSQL, p.Name, p.Description, string(p.Type),
		p.MaxParallelItems, p.MaxRetries, p.IsActive, updated, searchText(p), st.k)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return wrap(op, notFoundPool(p.UUID, store.ErrNotFound))
	}
	st.p.Name, st.p.Description, st.p.Type = p.Name, p.Description, p.Type
	st.p.MaxParallelItems, st.p.MaxRetries, st.p.IsActive = p.MaxParallelItems, p.MaxRetries, p.IsActive
	st.p.UpdatedAt = fromNanos(updated)
	return nil
}

// DeletePool removes a pool, its items and its counts. O(m log n) for m
// items.
func (t *txn) DeletePool(ctx context.Context, id uuid.UUID) error {
	const op = "delete pool"
	if err := t.writable(op); err != nil {
		return err
	}
	st, err := t.pool(ctx, id)
	if err != nil {
		return wrap(op, err)
	}
	if _, err := t.exec(ctx, deletePoolSQL, st.k); err != nil {
		return wrap(op, err)
	}
	delete(t.states, id)
	delete(t.deltas, st.k) // they go with the pool
	t.s.seen.forget(id)    // a guess: forgotten even if this rolls back
	return nil
}

// Pools returns one page of pools matching q and their number. The page
// costs O(log n + offset + per_page); the total counts every match.
func (t *txn) Pools(ctx context.Context, q pool.PoolQuery) ([]pool.Pool, int, error) {
	const op = "pools"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("postgres: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	var where []string
	var args []any
	if q.Type != "" {
		args = append(args, string(q.Type))
		where = append(where, fmt.Sprintf("p.type = $%d", len(args)))
	}
	if q.IsActive != nil {
		args = append(args, *q.IsActive)
		where = append(where, fmt.Sprintf("p.is_active = $%d", len(args)))
	}
	if q.Search != "" {
		// The type is ASCII: upper() folds it as foldCase does.
		args = append(args, foldCase(q.Search))
		where = append(where, fmt.Sprintf("(strpos(p.search, $%[1]d) > 0 OR strpos(upper(p.type), $%[1]d) > 0)", len(args)))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	if !t.readOnly {
		if err := t.flushCounts(ctx); err != nil {
			return nil, 0, wrap(op, err)
		}
	}
	var total int
	if err := t.queryRow(ctx, []any{&total}, `SELECT count(*) FROM pools p`+cond, args...); err != nil {
		return nil, 0, wrap(op, err)
	}
	n := len(args)
	rows, err := t.query(ctx,
		`SELECT `+poolCols+` FROM pools p JOIN pool_counts c ON c.pool_id = p.id`+cond+
			fmt.Sprintf(` ORDER BY p.created_at, p.uuid LIMIT $%d OFFSET $%d`, n+1, n+2),
		append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	defer rows.Close()
	out := make([]pool.Pool, 0, q.PerPage)
	for rows.Next() {
		var st poolState
		if err := rows.Scan(st.poolDest()...); err != nil {
			return nil, 0, wrap(op, err)
		}
		st.finish()
		out = append(out, st.p)
	}
	if err := rows.Err(); err != nil {
		t.noteErr(err)
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

// StatusCounts returns the number of items of a pool in each status, from
// pool_counts (or, in a write transaction, from the pool's state). O(log n).
func (t *txn) StatusCounts(ctx context.Context, id uuid.UUID) (map[pool.Status]int, error) {
	const op = "status counts"
	if !t.readOnly {
		st, err := t.pool(ctx, id)
		if err != nil {
			return nil, wrap(op, err)
		}
		return st.n.statusMap(), nil
	}
	k, err := t.key(ctx, id)
	if err != nil {
		return nil, wrap(op, err)
	}
	var c counts
	if err := t.queryRow(ctx, []any{&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]}, statusCountsSQL, k); err != nil {
		return nil, wrap(op, notFoundPool(id, err))
	}
	return c.statusMap(), nil
}

// searchText is what a pool search looks in, besides the type: name and
// description, case-folded.
func searchText(p pool.Pool) string {
	return foldCase(p.Name + "\n" + p.Description)
}

// foldCase maps every rune of s to one representative of its Unicode
// simple case folding orbit (the smallest rune in it), so that two strings
// equal under [strings.EqualFold] fold to the same string, and a substring
// search of folded strings is case-insensitive ("ÉCOLE" finds "école").
// The column pools.search holds folded text: a change here needs a
// migration that recomputes it.
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		return min
	}, s)
}
