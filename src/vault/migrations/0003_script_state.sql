-- Schema version 3: the small key-value store of scripts (`state_get` / `state_set`), for
-- checkpoints such as "last synced Modified_Time". Values are JSON; nothing secret belongs here.
CREATE TABLE script_state (
    script     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (script, key)
);
