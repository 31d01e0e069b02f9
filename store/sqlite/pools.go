package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
)

// poolCols are the columns scanned by scanPool, contacts_count last.
const poolCols = `p.id, p.uuid, p.name, p.description, p.type, p.max_parallel_items, p.max_retries,
    p.is_active, p.created_at, p.updated_at,
    (SELECT sum(c.n) FROM pool_counts c WHERE c.pool_id = p.id)`

const (
	insertPoolSQL = `INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
    is_active, created_at, updated_at, search)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	poolSQL = `SELECT ` + poolCols + ` FROM pools p WHERE p.uuid = ?`

	updatePoolSQL = `UPDATE pools SET name = ?, description = ?, type = ?, max_parallel_items = ?,
    max_retries = ?, is_active = ?, updated_at = ?, search = ?
WHERE uuid = ?`

	deletePoolSQL = `DELETE FROM pools WHERE uuid = ?`

	statusCountsSQL = `SELECT status, n FROM pool_counts WHERE pool_id = ?`
)

// InsertPool stores a new pool. O(log n) in the number of pools.
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
	res, err := t.exec(ctx, insertPoolSQL, blob(p.UUID), p.Name, p.Description, string(p.Type),
		p.MaxParallelItems, p.MaxRetries, p.IsActive, created, updated, searchText(p))
	if err != nil {
		return wrap(op, err)
	}
	if k, err := res.LastInsertId(); err == nil {
		t.rememberPool(p.UUID, k)
	}
	return nil
}

// Pool returns one pool with its ContactsCount. O(log n). In a write
// transaction it learns the pool's dispatch state too (see state.go).
func (t *txn) Pool(ctx context.Context, id uuid.UUID) (pool.Pool, error) {
	if !t.readOnly {
		p, err := t.poolWithState(ctx, id)
		return p, wrap("pool", err)
	}
	if err := t.flushCounts(ctx); err != nil {
		return pool.Pool{}, wrap("pool", err)
	}
	s, err := t.stmt(ctx, poolSQL)
	if err != nil {
		return pool.Pool{}, wrap("pool", err)
	}
	p, k, err := scanPool(s.QueryRowContext(ctx, blob(id)))
	if err != nil {
		return pool.Pool{}, wrap("pool", err)
	}
	t.rememberPool(id, k)
	return p, nil
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
	res, err := t.exec(ctx, updatePoolSQL, p.Name, p.Description, string(p.Type),
		p.MaxParallelItems, p.MaxRetries, p.IsActive, updated, searchText(p), blob(p.UUID))
	if err := affected(res, err); err != nil {
		return wrap(op, err)
	}
	t.forgetPool(p.UUID) // the next Pool reads the row as written
	return nil
}

// DeletePool removes a pool, its items and its counts. O(m log n) for m
// items.
func (t *txn) DeletePool(ctx context.Context, id uuid.UUID) error {
	const op = "delete pool"
	if err := t.writable(op); err != nil {
		return err
	}
	k, err := t.poolKey(ctx, id)
	if err != nil {
		return wrap(op, err)
	}
	t.forgetPool(id)
	delete(t.pools, id)
	t.forgetCounts(k) // they go with the pool
	res, err := t.exec(t.long(ctx), deletePoolSQL, blob(id))
	return wrap(op, affected(res, err))
}

// Pools returns one page of pools matching q and their number. The page
// costs O(log n + offset + per_page); the total counts every match.
func (t *txn) Pools(ctx context.Context, q pool.PoolQuery) ([]pool.Pool, int, error) {
	const op = "pools"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("sqlite: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	var where []string
	var args []any
	if q.Type != "" {
		where = append(where, "p.type = ?")
		args = append(args, string(q.Type))
	}
	if q.IsActive != nil {
		where = append(where, "p.is_active = ?")
		args = append(args, *q.IsActive)
	}
	if q.Search != "" {
		// The type is ASCII: upper() folds it as foldCase does.
		where = append(where, "(instr(p.search, ?) > 0 OR instr(upper(p.type), ?) > 0)")
		folded := foldCase(q.Search)
		args = append(args, folded, folded)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}

	if err := t.flushCounts(ctx); err != nil {
		return nil, 0, wrap(op, err)
	}
	var total int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM pools p`+cond, args...).Scan(&total); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.tx.QueryContext(ctx,
		`SELECT `+poolCols+` FROM pools p`+cond+` ORDER BY p.created_at, p.uuid LIMIT ? OFFSET ?`,
		append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	defer rows.Close()
	out := make([]pool.Pool, 0, q.PerPage)
	for rows.Next() {
		p, _, err := scanPool(rows)
		if err != nil {
			return nil, 0, wrap(op, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

// StatusCounts returns the number of items of a pool in each status, from
// pool_counts. O(log n).
func (t *txn) StatusCounts(ctx context.Context, id uuid.UUID) (map[pool.Status]int, error) {
	const op = "status counts"
	k, err := t.poolKey(ctx, id)
	if err != nil {
		return nil, wrap(op, err)
	}
	if err := t.flushCounts(ctx); err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, statusCountsSQL, k)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := pool.ZeroCounts()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, wrap(op, err)
		}
		out[pool.Status(s)] = n
	}
	return out, wrap(op, rows.Err())
}

// scanPool scans the columns of poolCols, then extra, returning the pool
// and its internal id.
func scanPool(s scanner, extra ...any) (pool.Pool, int64, error) {
	var (
		p                pool.Pool
		k                int64
		typ              string
		created, updated int64
		contacts         *int64
	)
	err := s.Scan(append([]any{&k, &p.UUID, &p.Name, &p.Description, &typ, &p.MaxParallelItems, &p.MaxRetries,
		&p.IsActive, &created, &updated, &contacts}, extra...)...)
	if err != nil {
		return pool.Pool{}, 0, err
	}
	p.Type = pool.Type(typ)
	p.CreatedAt = fromNanos(created)
	p.UpdatedAt = fromNanos(updated)
	if contacts != nil {
		p.ContactsCount = int(*contacts)
	}
	return p, k, nil
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

// affected turns an UPDATE or DELETE that touched no row into
// [store.ErrNotFound] (through translate).
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}
