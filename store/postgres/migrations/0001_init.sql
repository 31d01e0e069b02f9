-- 0001_init: pools, their items, and the per-status item counts.
--
-- Conventions: the tables live in the store's schema (Options.Schema, on
-- the search_path of every connection); UUIDs are uuid; times are bigint
-- unix nanoseconds in UTC, NULL for "not set" (timestamptz keeps only
-- microseconds, and the contract promises nanoseconds); integers the API
-- lets grow are bigint; the enums are the API's exact spellings, checked
-- here as pool.Types() and pool.Statuses() list them. The CHECKs are a
-- backstop for the validation done in Go: they never reject a value the
-- pool package accepts.

-- pools: one row per pool. id is an internal key, so that the items and
-- their indexes carry a bigint rather than a UUID, and the key of the
-- pool's lock (see the package documentation). search is name + "\n" +
-- description case-folded in Go (Unicode simple folding), for a
-- case-insensitive strpos() search.
CREATE TABLE pools (
    id                 bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid               uuid    NOT NULL UNIQUE,
    name               text    NOT NULL CHECK (char_length(name) BETWEEN 3 AND 255),
    description        text    NOT NULL CHECK (btrim(description, E' \t\n\v\f\r') <> ''),
    type               text    NOT NULL CHECK (type IN ('FIFO', 'LIFO', 'Parallel')),
    max_parallel_items integer NOT NULL CHECK (max_parallel_items BETWEEN 1 AND 100),
    max_retries        bigint  NOT NULL CHECK (max_retries >= 0),
    is_active          boolean NOT NULL,
    created_at         bigint  NOT NULL,
    updated_at         bigint  NOT NULL,
    search             text    NOT NULL
);

-- Pool listings: ordered by creation, then UUID.
CREATE INDEX pools_created ON pools (created_at, uuid);

-- pool_counts: the number of items of each pool in each status, one row
-- per pool with a column per status, written by the store itself (not by
-- triggers): a write transaction adds up its changes in memory and applies
-- them in one UPDATE before it commits. Status counts, contacts_count and
-- the number in flight are O(1).
CREATE TABLE pool_counts (
    pool_id    bigint PRIMARY KEY REFERENCES pools (id) ON DELETE CASCADE,
    pending    bigint NOT NULL DEFAULT 0 CHECK (pending >= 0),
    processing bigint NOT NULL DEFAULT 0 CHECK (processing >= 0),
    in_call    bigint NOT NULL DEFAULT 0 CHECK (in_call >= 0),
    retrying   bigint NOT NULL DEFAULT 0 CHECK (retrying >= 0),
    scheduled  bigint NOT NULL DEFAULT 0 CHECK (scheduled >= 0),
    completed  bigint NOT NULL DEFAULT 0 CHECK (completed >= 0),
    failed     bigint NOT NULL DEFAULT 0 CHECK (failed >= 0),
    skipped    bigint NOT NULL DEFAULT 0 CHECK (skipped >= 0)
);

-- items: one row per contact in a pool. id comes from a sequence with no
-- cache, so IDs grow in the order they are taken whichever connection
-- takes them, and are never reused: the insertion order and, with token,
-- the fence of a dispatch.
--
-- ready is true exactly when the item is in the due set: Pending, or
-- Retrying / Scheduled and promoted by Due once next_retry_at came. Writers
-- set it to (status = 'Pending'); Due promotes the rest.
--
-- payload is the caller's JSON as bytes (checked as JSON in Go): bytea
-- gives back exactly the bytes given, which text would not for JSON that
-- is not valid UTF-8.
CREATE TABLE items (
    id               bigint  GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    pool_id          bigint  NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    contact_uuid     uuid    NOT NULL,
    status           text    NOT NULL CHECK (status IN ('Pending', 'Processing', 'In_Call', 'Retrying', 'Scheduled', 'Completed', 'Failed', 'Skipped')),
    priority         bigint  NOT NULL,
    attempts         bigint  NOT NULL CHECK (attempts >= 0),
    retry_count      bigint  NOT NULL CHECK (retry_count >= 0),
    started_at       bigint,
    completed_at     bigint,
    failed_at        bigint,
    next_retry_at    bigint,
    notes            text    NOT NULL,
    added_at         bigint  NOT NULL,
    payload          bytea,
    token            bigint  NOT NULL CHECK (token >= 0),
    lease_expires_at bigint,
    ready            boolean NOT NULL CHECK (
        CASE status
            WHEN 'Pending' THEN ready
            WHEN 'Retrying' THEN true
            WHEN 'Scheduled' THEN true
            ELSE NOT ready
        END
    ),
    UNIQUE (pool_id, contact_uuid)
);

-- Listings in insertion order, all items or one status.
CREATE INDEX items_pool ON items (pool_id, id);
CREATE INDEX items_pool_status ON items (pool_id, status, id);

-- The due set, one index per order: FIFO ascends items_ready, LIFO descends
-- it, Parallel walks items_ready_priority. Partial indexes: a row enters
-- them only while it is due, so a claim does not add to them.
CREATE INDEX items_ready ON items (pool_id, id) WHERE ready;
CREATE INDEX items_ready_priority ON items (pool_id, priority DESC, id) WHERE ready;

-- Items waiting for a retry time that has not been seen to come: Due
-- promotes them with a range seek (and so drops them from this index),
-- NextWake reads the first.
CREATE INDEX items_retry ON items (pool_id, next_retry_at) WHERE NOT ready AND status IN ('Retrying', 'Scheduled');

-- Leases of in-flight items, for Expired and NextWake.
CREATE INDEX items_lease ON items (pool_id, lease_expires_at) WHERE status IN ('Processing', 'In_Call');
