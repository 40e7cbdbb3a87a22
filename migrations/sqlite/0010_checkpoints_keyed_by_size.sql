-- Checkpoints keyed by the tree size itself. `size BIGINT PRIMARY KEY` is not SQLite's rowid
-- alias (only the type name INTEGER is), so it kept a second B-tree beside the table: one more
-- page in every group commit's WAL frames (1.0 of ~11.3 per commit at -c16, BENCHMARKS.md
-- §1l), and the latest-checkpoint query read two trees. PostgreSQL keeps every primary key in
-- an index of its own either way, so its schema is unchanged.
CREATE TABLE ledger_checkpoints_v2 (
    size        INTEGER PRIMARY KEY,
    root        BLOB    NOT NULL,
    -- The signed note (C2SP tlog-checkpoint).
    note        TEXT    NOT NULL,
    -- Compact range of the tree at this size, so the sequencer restarts without reading leaves.
    compact     BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL
);
INSERT INTO ledger_checkpoints_v2 (size, root, note, compact, created_at)
    SELECT size, root, note, compact, created_at FROM ledger_checkpoints;
DROP TABLE ledger_checkpoints;
ALTER TABLE ledger_checkpoints_v2 RENAME TO ledger_checkpoints;
