-- 0004_item_contacts: items carry their contact's fields, and a search
-- over them.
--
-- name, phone_number, email and timezone are a copy of the contact's own
-- fields (pool.Contact), NULL when unknown: existing items have none. They
-- are validated in Go; no CHECK here, as a CHECK calling a function would
-- make every batched INSERT of items keep a statement journal (see 0003).
ALTER TABLE items ADD COLUMN name TEXT;
ALTER TABLE items ADD COLUMN phone_number TEXT;
ALTER TABLE items ADD COLUMN email TEXT;
ALTER TABLE items ADD COLUMN timezone TEXT;

-- item_search: a full-text index of the words of the contact fields (name,
-- email and phone number, one per line) of the items that have any, for
-- the search of item listings (word prefixes, case and diacritics aside);
-- its rowid is the item's id. Contentless: it keeps the words, the text
-- stays in items.
-- The store adds an item's row when it inserts the item (a trigger on
-- INSERT would make every batched INSERT keep a statement journal, as a
-- write to a virtual table may abort); the trigger below removes it with
-- the item, ON DELETE CASCADE of a pool included.
CREATE VIRTUAL TABLE item_search USING fts5(body, tokenize = 'unicode61 remove_diacritics 2', content = '', contentless_delete = 1);

CREATE TRIGGER items_search_delete AFTER DELETE ON items
WHEN OLD.name IS NOT NULL OR OLD.phone_number IS NOT NULL OR OLD.email IS NOT NULL
BEGIN
    DELETE FROM item_search WHERE rowid = OLD.id;
END;
