-- Interior nodes of the ledger's tree at heights 4, 8, 12, … (see src/ledger/nodes.rs), so a
-- proof reads O(log n) hashes.
CREATE TABLE ledger_nodes (
    level   BIGINT  NOT NULL,
    idx     BIGINT  NOT NULL,
    hash    BYTEA   NOT NULL,
    PRIMARY KEY (level, idx)
);

-- A compact search key for the document digest of signature entries: the first 8 bytes of
-- SHA-256 of the digest's canonical text (see store::digest_key).
ALTER TABLE ledger_entries ADD COLUMN digest_key BIGINT;
CREATE INDEX ledger_entries_digest ON ledger_entries (digest_key) WHERE digest_key IS NOT NULL;
