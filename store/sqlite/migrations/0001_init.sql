-- 0001_init: pools, their items, and the per-status item counts.
--
-- Conventions: STRICT tables; UUIDs are 16-byte BLOBs (uuid.UUID's bytes, so
-- BLOB order is UUID order); times are INTEGER unix nanoseconds in UTC, NULL
-- for "not set"; the enums are the API's exact spellings, checked here as
-- pool.Types() and pool.Statuses() list them. The CHECKs are a backstop for
-- the validation done in Go: they never reject a value the pool package
-- accepts.

-- pools: one row per pool. id is an internal key, so that the items and
-- their indexes carry a small integer rather than a 16-byte UUID. search is
-- name + "\n" + description case-folded in Go (Unicode simple folding), for a
-- case-insensitive instr() search.
CREATE TABLE pools (
    id                 INTEGER PRIMARY KEY,
    uuid               BLOB    NOT NULL UNIQUE CHECK (length(uuid) = 16),
    name               TEXT    NOT NULL CHECK (length(name) BETWEEN 3 AND 255),
    description        TEXT    NOT NULL CHECK (trim(description, ' ' || char(9, 10, 11, 12, 13)) <> ''),
    type               TEXT    NOT NULL CHECK (type IN ('FIFO', 'LIFO', 'Parallel')),
    max_parallel_items INTEGER NOT NULL CHECK (max_parallel_items BETWEEN 1 AND 100),
    max_retries        INTEGER NOT NULL CHECK (max_retries >= 0),
    is_active          INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    search             TEXT    NOT NULL
) STRICT;

-- Pool listings: ordered by creation, then UUID.
CREATE INDEX pools_created ON pools (created_at, uuid);

-- items: one row per contact in a pool. id is AUTOINCREMENT so that an ID is
-- never reused, even after the newest item is deleted: it is the insertion
-- order and, with token, the fence of a dispatch.
--
-- ready is 1 exactly when the item is in the due set: Pending, or Retrying /
-- Scheduled and promoted by Due once next_retry_at came. Writers set it to
-- (status = 'Pending'); Due promotes the rest.
CREATE TABLE items (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id          INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    contact_uuid     BLOB    NOT NULL CHECK (length(contact_uuid) = 16),
    status           TEXT    NOT NULL CHECK (status IN ('Pending', 'Processing', 'In_Call', 'Retrying', 'Scheduled', 'Completed', 'Failed', 'Skipped')),
    priority         INTEGER NOT NULL,
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    retry_count      INTEGER NOT NULL CHECK (retry_count >= 0),
    started_at       INTEGER,
    completed_at     INTEGER,
    failed_at        INTEGER,
    next_retry_at    INTEGER,
    notes            TEXT    NOT NULL,
    added_at         INTEGER NOT NULL,
    payload          TEXT    CHECK (payload IS NULL OR json_valid(payload)),
    token            INTEGER NOT NULL CHECK (token >= 0),
    lease_expires_at INTEGER,
    ready            INTEGER NOT NULL CHECK (
        CASE status
            WHEN 'Pending' THEN ready = 1
            WHEN 'Retrying' THEN ready IN (0, 1)
            WHEN 'Scheduled' THEN ready IN (0, 1)
            ELSE ready = 0
        END
    ),
    UNIQUE (pool_id, contact_uuid)
) STRICT;

-- Listings in insertion order, all items or one status.
CREATE INDEX items_pool ON items (pool_id, id);
CREATE INDEX items_pool_status ON items (pool_id, status, id);

-- The due set, one index per order: FIFO ascends items_ready, LIFO descends
-- it, Parallel walks items_ready_priority.
CREATE INDEX items_ready ON items (pool_id, id) WHERE ready = 1;
CREATE INDEX items_ready_priority ON items (pool_id, priority DESC, id) WHERE ready = 1;

-- Items waiting for a retry time that has not been seen to come: Due
-- promotes them with a range seek (and so drops them from this index),
-- NextWake reads the first.
CREATE INDEX items_retry ON items (pool_id, next_retry_at) WHERE ready = 0 AND status IN ('Retrying', 'Scheduled');

-- Leases of in-flight items, for Expired and NextWake.
CREATE INDEX items_lease ON items (pool_id, lease_expires_at) WHERE status IN ('Processing', 'In_Call');

-- pool_counts: the number of items of each pool in each status, every status
-- present, kept by the triggers below, so StatusCounts, contacts_count and
-- InFlight are O(1).
CREATE TABLE pool_counts (
    pool_id INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    status  TEXT    NOT NULL CHECK (status IN ('Pending', 'Processing', 'In_Call', 'Retrying', 'Scheduled', 'Completed', 'Failed', 'Skipped')),
    n       INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0),
    PRIMARY KEY (pool_id, status)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER pools_counts_init AFTER INSERT ON pools
BEGIN
    INSERT INTO pool_counts (pool_id, status) VALUES
        (new.id, 'Pending'), (new.id, 'Processing'), (new.id, 'In_Call'), (new.id, 'Retrying'),
        (new.id, 'Scheduled'), (new.id, 'Completed'), (new.id, 'Failed'), (new.id, 'Skipped');
END;

CREATE TRIGGER items_count_insert AFTER INSERT ON items
BEGIN
    UPDATE pool_counts SET n = n + 1 WHERE pool_id = new.pool_id AND status = new.status;
END;

CREATE TRIGGER items_count_delete AFTER DELETE ON items
BEGIN
    UPDATE pool_counts SET n = n - 1 WHERE pool_id = old.pool_id AND status = old.status;
END;

CREATE TRIGGER items_count_update AFTER UPDATE OF pool_id, status ON items
WHEN old.pool_id IS NOT new.pool_id OR old.status IS NOT new.status
BEGIN
    UPDATE pool_counts SET n = n - 1 WHERE pool_id = old.pool_id AND status = old.status;
    UPDATE pool_counts SET n = n + 1 WHERE pool_id = new.pool_id AND status = new.status;
END;
