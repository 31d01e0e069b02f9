-- 0008_kept_calls: the calls of the items that left a campaign's pools.
--
-- A rule's caps are the contact's, counted from its items in the pools of
-- the campaign: their attempts against max_total_calls, their calls of the
-- day against max_calls_per_day. Removing an item (Remove, or deleting its
-- pool) took its calls out of that count, and the contact was called again
-- from another pool of the campaign, or from the same one once added back,
-- past both caps; detaching the pool did the same. Such an item's attempts
-- and day's count are kept here: at its removal, one row per campaign its
-- pool is attached to; at a detach, one row per item of the pool, for the
-- campaign it leaves, deleted if the pool is attached to it again (its
-- items count again as items; item_id names the item, whose ID is never
-- reused). An item in flight when its pool is detached keeps its lease's
-- token in lease_token: if that attempt is given back (Release), so is it
-- here, through kept_calls_lease, which holds only such rows. Dispatch
-- under the campaign's rule reads them with the contact's items (one seek
-- per contact in kept_calls_contact). Deleting the campaign deletes them.
CREATE TABLE kept_calls (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    item_id      INTEGER NOT NULL,
    contact_uuid BLOB    NOT NULL CHECK (length(contact_uuid) = 16),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    call_at      INTEGER,
    calls_today  INTEGER NOT NULL CHECK (calls_today >= 0),
    lease_token  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX kept_calls_contact ON kept_calls (campaign_id, contact_uuid);
CREATE INDEX kept_calls_lease ON kept_calls (item_id, lease_token) WHERE lease_token <> 0;
