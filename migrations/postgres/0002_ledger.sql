-- The audit ledger: entries in index order and a signed checkpoint after every batch.
CREATE TABLE ledger_entries (
    idx         BIGINT  PRIMARY KEY,
    leaf_hash   BYTEA    NOT NULL,
    entry       BYTEA    NOT NULL,
    serial      TEXT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX ledger_entries_serial ON ledger_entries (serial);

CREATE TABLE ledger_checkpoints (
    size        BIGINT  PRIMARY KEY,
    root        BYTEA    NOT NULL,
    -- The signed note (C2SP tlog-checkpoint).
    note        TEXT    NOT NULL,
    -- Compact range of the tree at this size, so the sequencer restarts without reading leaves.
    compact     BYTEA    NOT NULL,
    created_at  BIGINT  NOT NULL
);
