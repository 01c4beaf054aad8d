-- Runs: one row per run, its request trace and info lines as JSON. Newest-first listing walks
-- runs_started backwards; the filters have their own indexes.
CREATE TABLE runs (
    id         TEXT PRIMARY KEY,
    trigger    TEXT NOT NULL,
    script     TEXT NOT NULL,
    status     TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    input      TEXT NOT NULL,
    result     TEXT,
    error      TEXT,
    info       TEXT NOT NULL DEFAULT '[]',
    requests   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX runs_started ON runs (started_at, id);
CREATE INDEX runs_trigger ON runs (trigger, started_at);
CREATE INDEX runs_status ON runs (status, started_at);
