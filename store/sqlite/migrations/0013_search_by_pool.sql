-- 0013_search_by_pool: item_search keeps each pool's words apart, so that
-- a search in one pool reads that pool's entries of the index only.
--
-- item_search held the words of all pools' items as they are, and a
-- search in one pool matched the items of every pool, then kept its own:
-- a prefix search read every match of every pool (195 ms in a pool of a
-- few items beside 100,000 matching items of other pools, 2 ms beside
-- 1,000). Each term is now the pool's id (pools.id), a slash and the word
-- ("42/lovelace"), as the PostgreSQL store's lexemes are: the text is
-- what poolq_search_terms returns (a function of the Store's connections,
-- see search.go), the tokenizer keeps the slash inside a term
-- (tokenchars), and a search asks for its own pool's terms only
-- ('"42/grace" AND "42/hop"*'). An item never changes pool (a duplicate
-- is a new item, indexed with its new pool), so its terms stay right.
--
-- As in 0009, the contentless table cannot be re-tokenized in place: it
-- is dropped and made again, and every existing item with contact fields
-- indexed again, in this migration's transaction. The trigger
-- items_search_delete of 0004 names the table: it deletes from the new
-- one.
DROP TABLE item_search;

CREATE VIRTUAL TABLE item_search USING fts5(body, tokenize = "ascii tokenchars '/'", content = '', contentless_delete = 1);

INSERT INTO item_search (rowid, body)
SELECT id, poolq_search_terms(pool_id, name, email, phone_number) FROM items
WHERE name IS NOT NULL OR email IS NOT NULL OR phone_number IS NOT NULL;
