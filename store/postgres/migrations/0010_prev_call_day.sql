-- 0010_prev_call_day: the count of the calling day before an item's
-- latest, on the item and in the calls kept of it.
--
-- An item counted the calls of its latest calling day only (call_at, the
-- instant of its latest counted call, and calls_today), and a call on a
-- later date started the count again at zero. When the contact's zone
-- moved west (its own, or the campaign's default corrected), the calls of
-- the old zone's day before could fall on the same date as the latest in
-- the new zone, and were forgotten: the contact was called past
-- max_calls_per_day on one local date. prev_call_at (unix nanoseconds;
-- NULL: none) and prev_calls_today are that day's count, as call_at and
-- calls_today were when a call started a later date (see campaign.Gate).
--
-- An existing item or kept call has no previous day (NULL, 0): its count
-- before the latest was not kept. A constant default rewrites no row; the
-- CHECKs read the tables once. The nodes of version 9, which would not
-- keep the new count, fail on this schema (its guard, see 0007).
ALTER TABLE items
    ADD COLUMN prev_call_at     bigint,
    ADD COLUMN prev_calls_today bigint NOT NULL DEFAULT 0 CHECK (prev_calls_today >= 0);
ALTER TABLE kept_calls
    ADD COLUMN prev_call_at     bigint,
    ADD COLUMN prev_calls_today bigint NOT NULL DEFAULT 0 CHECK (prev_calls_today >= 0);
