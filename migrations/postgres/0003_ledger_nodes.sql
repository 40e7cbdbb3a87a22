-- Interior nodes of the ledger's tree at heights 4, 8, 12, … (see src/ledger/nodes.rs), so a
-- proof reads O(log n) hashes; and the document digest of signature entries, for search.
CREATE TABLE ledger_nodes (
    level   BIGINT  NOT NULL,
    idx     BIGINT  NOT NULL,
    hash    BYTEA   NOT NULL,
    PRIMARY KEY (level, idx)
);

ALTER TABLE ledger_entries ADD COLUMN digest TEXT;
CREATE INDEX ledger_entries_digest ON ledger_entries (digest) WHERE digest IS NOT NULL;
