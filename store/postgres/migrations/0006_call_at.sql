-- 0006_call_at: the count of an item's calling day keyed by an instant,
-- not a date, and the dispatch it counted last.
--
-- call_day held the date (days since 1970-01-01) in the contact's zone of
-- the item's latest counted call. A date means nothing without its zone,
-- and the zone can change (the contact's, or the campaign's default): a
-- count kept under one zone's date was reset under the other's, and the
-- contact called past max_calls_per_day on one local date. call_at is the
-- instant of the latest counted call (unix nanoseconds; NULL: none), whose
-- date is read in the zone of the time of reading. call_token is the
-- token of the latest dispatch a rule counted: a give-back returns the
-- day's call only when it gives back that dispatch (a dispatch made while
-- no rule governed the pool counted nothing, and took nothing back).
--
-- An existing count becomes the noon (UTC) of its date, which falls on
-- that date in every zone within 12 hours of UTC. call_token 0 matches no
-- dispatch: an item in flight at the upgrade keeps its day's call if it
-- is given back (never too few calls counted). call_day stays, unread.
-- Adding the columns rewrites no row; the UPDATE writes only the items
-- with a count.
ALTER TABLE items
    ADD COLUMN call_at    bigint,
    ADD COLUMN call_token bigint NOT NULL DEFAULT 0;
UPDATE items SET call_at = (call_day::bigint * 86400 + 43200) * 1000000000 WHERE calls_today > 0;
