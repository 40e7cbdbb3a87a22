-- Interior nodes of the ledger's tree at heights 4, 8, 12, … (see src/ledger/nodes.rs), so a
-- proof reads O(log n) hashes.
CREATE TABLE ledger_nodes (
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hash    BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Entries keyed by their index itself (INTEGER PRIMARY KEY is the rowid: no second index), and
-- a compact search key for the document digest of signature entries: the first 8 bytes of
-- SHA-256 of the digest's canonical text (see store::digest_key). No signature entry exists
-- before this migration, so every copied row has none.
CREATE TABLE ledger_entries_v2 (
    idx         INTEGER PRIMARY KEY,
    leaf_hash   BLOB    NOT NULL,
    entry       BLOB    NOT NULL,
    serial      TEXT,
    digest_key  INTEGER,
    created_at  BIGINT  NOT NULL
);
INSERT INTO ledger_entries_v2 (idx, leaf_hash, entry, serial, created_at)
    SELECT idx, leaf_hash, entry, serial, created_at FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_v2 RENAME TO ledger_entries;
CREATE INDEX ledger_entries_serial ON ledger_entries (serial);
CREATE INDEX ledger_entries_digest ON ledger_entries (digest_key) WHERE digest_key IS NOT NULL;
