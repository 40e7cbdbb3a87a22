-- Serial search keys become the serial's first 8 octets (store::serial_key) instead of a hash
-- prefix, so that time-ordered serials index at the B-tree's right edge. The index is rebuilt
-- from the start by the indexer; searches stay complete meanwhile (they scan the entries above
-- `upto`).
DELETE FROM ledger_search;
UPDATE ledger_index_state SET upto = 0 WHERE name = 'search';
