-- 0002_counts_in_go: the store keeps pool_counts itself.
--
-- Each write of the store knows the status an item leaves and the one it
-- enters; a write transaction adds the changes up and applies them to
-- pool_counts once, when it commits. The triggers did the same one row at a
-- time, twice per status change, and were a fifth of the cost of a batch
-- update. The counts they kept stay as they are: they are right.
DROP TRIGGER items_count_insert;
DROP TRIGGER items_count_delete;
DROP TRIGGER items_count_update;
