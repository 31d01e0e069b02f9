-- 0009_search_words: the item search indexes the words poolq cuts and
-- folds in Go (store.SearchWords), the same in every store.
--
-- item_search was tokenized by SQLite's unicode61: its words were not the
-- PostgreSQL store's ("x²y" and "ab" U+E000 "cd" stayed one word) and its
-- case folding used SQLite's older Unicode tables (Cherokee "Ꭰ" did not
-- fold to "ꭰ"), so the two stores found different items. The table now
-- holds, for each item with contact fields, the text poolq_search_words
-- returns (the item's words, folded, joined by spaces; a function of the
-- Store's connections, see search.go), and its tokenizer, 'ascii', only
-- splits that text at the spaces.
--
-- The table is contentless: it cannot be re-tokenized in place. It is
-- dropped and made again, and every existing item with contact fields
-- indexed again, in this migration's transaction. The trigger
-- items_search_delete of 0004 names the table, not a version of it: it
-- deletes from the new one.
DROP TABLE item_search;

CREATE VIRTUAL TABLE item_search USING fts5(body, tokenize = 'ascii', content = '', contentless_delete = 1);

INSERT INTO item_search (rowid, body)
SELECT id, poolq_search_words(name, email, phone_number) FROM items
WHERE name IS NOT NULL OR email IS NOT NULL OR phone_number IS NOT NULL;
