-- The sync engine (src/sync): which record on one side is which on the other, what the pair held
-- when it was last made equal (a hash of the mapped fields, so a change linkrun made itself is
-- known on the next read and not synced back), where each side's change feed was read up to, the
-- records a run could not write (retried on the next run), the creates sent but not yet linked
-- (reconciled by match key after a crash), and each run's counts for `sync status` and the console.
CREATE TABLE IF NOT EXISTS sync_links (
    sync       TEXT NOT NULL,
    object     TEXT NOT NULL,
    a_id       TEXT NOT NULL,
    b_id       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sync, object, a_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS sync_links_b ON sync_links (sync, object, b_id);

CREATE TABLE IF NOT EXISTS sync_checkpoints (
    sync   TEXT NOT NULL,
    object TEXT NOT NULL,
    side   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (sync, object, side)
);

CREATE TABLE IF NOT EXISTS sync_failures (
    sync      TEXT NOT NULL,
    object    TEXT NOT NULL,
    side      TEXT NOT NULL,
    record_id TEXT NOT NULL,
    message   TEXT NOT NULL,
    failed_at INTEGER NOT NULL,
    PRIMARY KEY (sync, object, side, record_id)
);

CREATE TABLE IF NOT EXISTS sync_intents (
    sync      TEXT NOT NULL,
    object    TEXT NOT NULL,
    side      TEXT NOT NULL,
    record_id TEXT NOT NULL,
    sent_at   INTEGER NOT NULL,
    PRIMARY KEY (sync, object, side, record_id)
);

CREATE TABLE IF NOT EXISTS sync_runs (
    run_id     TEXT PRIMARY KEY,
    sync       TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    status     TEXT NOT NULL,
    stats      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sync_runs_by_sync ON sync_runs (sync, started_at);
