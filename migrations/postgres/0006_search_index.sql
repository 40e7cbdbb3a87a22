-- Search (by document digest, by certificate serial) moves off the sequencer's transaction: an
-- indexer copies (search key, index) pairs into their own table in large sorted batches, so an
-- append no longer dirties random index pages. Keys are 8-byte hash prefixes (store::search_key).
-- `ledger_index_state.upto`: entries below it are indexed; a search also scans the entries
-- above it, so results are always complete. The indexer fills the table from the start.
DROP INDEX ledger_entries_digest;
DROP INDEX ledger_entries_serial;
CREATE TABLE ledger_search (
    key  BIGINT  NOT NULL,
    idx  BIGINT  NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE ledger_index_state (
    name  TEXT    PRIMARY KEY,
    upto  BIGINT  NOT NULL
);
INSERT INTO ledger_index_state (name, upto) VALUES ('search', 0);
