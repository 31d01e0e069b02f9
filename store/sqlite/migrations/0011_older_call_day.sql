-- 0011_older_call_day: the count of the calling day before an item's
-- previous one, on the item and in the calls kept of it.
--
-- An item counted the calls of its latest two calling days (see 0010), and
-- a call on a later date made the latest day's count the previous one,
-- adding to it the previous day's unless that day's calls were all two
-- days older than the call. A contact called every day or so had every
-- day added: the previous day's count held the calls of many dates, all
-- counted on the latest day's date when a zone moved west put the
-- previous day's latest call there, and the contact waited a day it
-- should not have. older_call_at (unix nanoseconds; NULL: none) and
-- older_calls_today are the count of the day before the previous one, as
-- prev_call_at and prev_calls_today were when a call started a later
-- date, so that each day's count is its own (see campaign.Gate).
--
-- An existing item or kept call has no older day (NULL, 0): its previous
-- day's count keeps the days added to it, and counts them until it is the
-- older day and is forgotten, two new days on. Adding the columns
-- rewrites no row; the CHECKs read the tables once.
ALTER TABLE items ADD COLUMN older_call_at INTEGER;
ALTER TABLE items ADD COLUMN older_calls_today INTEGER NOT NULL DEFAULT 0 CHECK (older_calls_today >= 0);
ALTER TABLE kept_calls ADD COLUMN older_call_at INTEGER;
ALTER TABLE kept_calls ADD COLUMN older_calls_today INTEGER NOT NULL DEFAULT 0 CHECK (older_calls_today >= 0);
