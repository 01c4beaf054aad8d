-- Serve: who runs a run (`owner`, a process, so a restart tells its own dead runs from another
-- live server's), the run it retries or duplicates, the HTTP answer a sync webhook gave (for a
-- repeated delivery), the sealed inputs of queued and replayable runs, delivery ids seen, and
-- each schedule's last firing.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN retry_of TEXT;
ALTER TABLE runs ADD COLUMN duplicate_of TEXT;
ALTER TABLE runs ADD COLUMN response TEXT;
CREATE INDEX runs_open ON runs (status) WHERE status IN ('queued', 'running');

-- The whole input (the webhook request, args) sealed with AES-256-GCM under the runs key, which
-- is itself sealed in the vault (owner `runs`); associated data binds each to its run id.
CREATE TABLE run_inputs (
    run_id     TEXT PRIMARY KEY,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);

CREATE TABLE deliveries (
    trigger TEXT NOT NULL,
    key     TEXT NOT NULL,
    run_id  TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (trigger, key)
);
CREATE INDEX deliveries_seen ON deliveries (seen_at);

CREATE TABLE schedule_marks (
    trigger  TEXT PRIMARY KEY,
    fired_at INTEGER NOT NULL
);
