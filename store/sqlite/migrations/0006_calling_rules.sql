-- 0006_calling_rules: what a rule's limits need at dispatch: the calls of
-- an item's latest calling day, the items of a contact across pools, the
-- do-not-call list, opt-outs and escalations.
--
-- As in 0001: STRICT tables, 16-byte UUIDs, times in unix nanoseconds.

-- call_day is the item's latest calling day (days since 1970-01-01 in the
-- contact's zone), calls_today the dispatches on it that were not given
-- back; both 0 for an item never dispatched under a rule, as every item
-- of an older file is. Adding them rewrites no row. calls_today's CHECK
-- is a plain comparison: no statement journal (see 0003).
ALTER TABLE items ADD COLUMN call_day INTEGER NOT NULL DEFAULT 0;
ALTER TABLE items ADD COLUMN calls_today INTEGER NOT NULL DEFAULT 0 CHECK (calls_today >= 0);

-- The items of a contact across pools (ContactItems, at an opt-out) are
-- read through UNIQUE (pool_id, contact_uuid), one seek per pool: an index
-- on contact_uuid would make it one seek, but every Add would pay for it
-- (a random position in another B-tree: single Adds measured 2x slower
-- with it), and opt-outs are rare.

-- dnc: the do-not-call list, shared by every pool; one row per contact,
-- listed oldest first (dnc_added).
CREATE TABLE dnc (
    contact_uuid BLOB    PRIMARY KEY,
    added_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX dnc_added ON dnc (added_at, contact_uuid);

-- opt_outs: the contacts that opted out, and when; an opt-out is kept.
CREATE TABLE opt_outs (
    contact_uuid BLOB    PRIMARY KEY,
    opted_out_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- escalations: one row per item whose failed attempts reached its rule's
-- threshold (UNIQUE item_id: item ids are never reused). id is
-- AUTOINCREMENT so that it is never reused either: consumers list by it.
-- They outlive their items, pools, campaigns and rules, so they refer to
-- them by UUID, without foreign keys. type and target are '' when the rule
-- had none.
CREATE TABLE escalations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id         INTEGER NOT NULL UNIQUE,
    pool_uuid       BLOB    NOT NULL,
    contact_uuid    BLOB    NOT NULL,
    campaign_uuid   BLOB    NOT NULL,
    rule_uuid       BLOB    NOT NULL,
    type            TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    failed_attempts INTEGER NOT NULL CHECK (failed_attempts >= 0),
    escalated_at    INTEGER NOT NULL
) STRICT;

-- A pool's escalations in id order.
CREATE INDEX escalations_pool ON escalations (pool_uuid, id);
