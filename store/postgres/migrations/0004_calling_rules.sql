-- 0004_calling_rules: what a rule's limits need at dispatch: the calls of
-- an item's latest calling day, the items of a contact across pools, the
-- do-not-call list, opt-outs and escalations.
--
-- As in 0001: UUIDs as uuid, times as bigint unix nanoseconds, integers
-- the API lets grow as bigint.

-- call_day is the item's latest calling day (days since 1970-01-01 in the
-- contact's zone), calls_today the dispatches on it that were not given
-- back; both 0 for an item never dispatched under a rule, as every item
-- of an older schema is. A constant default rewrites no row; the CHECK
-- reads the table once.
ALTER TABLE items
    ADD COLUMN call_day    integer NOT NULL DEFAULT 0,
    ADD COLUMN calls_today bigint  NOT NULL DEFAULT 0 CHECK (calls_today >= 0);

-- The items of a contact across pools (ContactItems, at an opt-out) are
-- read through UNIQUE (pool_id, contact_uuid), one seek per pool: an index
-- on contact_uuid would make it one seek, but every Add would pay for it,
-- and opt-outs are rare.

-- dnc: the do-not-call list, shared by every pool; one row per contact,
-- listed oldest first (dnc_added).
CREATE TABLE dnc (
    contact_uuid uuid   PRIMARY KEY,
    added_at     bigint NOT NULL
);

CREATE INDEX dnc_added ON dnc (added_at, contact_uuid);

-- opt_outs: the contacts that opted out, and when; an opt-out is kept.
CREATE TABLE opt_outs (
    contact_uuid uuid   PRIMARY KEY,
    opted_out_at bigint NOT NULL
);

-- escalations: one row per item whose failed attempts reached its rule's
-- threshold (UNIQUE item_id: item ids are never reused). id comes from a
-- sequence with no cache, and is taken under the store's escalation lock
-- (see contacts.go), so that ids grow in the order their transactions
-- commit: a consumer that lists after the last id it handled misses none.
-- Escalations outlive their items, pools, campaigns and rules, so they
-- refer to them by UUID, without foreign keys. type and target are ''
-- when the rule had none.
CREATE TABLE escalations (
    id              bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    item_id         bigint NOT NULL UNIQUE,
    pool_uuid       uuid   NOT NULL,
    contact_uuid    uuid   NOT NULL,
    campaign_uuid   uuid   NOT NULL,
    rule_uuid       uuid   NOT NULL,
    type            text   NOT NULL,
    target          text   NOT NULL,
    failed_attempts bigint NOT NULL CHECK (failed_attempts >= 0),
    escalated_at    bigint NOT NULL
);

-- A pool's escalations in id order.
CREATE INDEX escalations_pool ON escalations (pool_uuid, id);
