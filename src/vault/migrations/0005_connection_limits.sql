-- Schema version 5: a connection's own rate budget (`linkrun connection limits LINK ...`), the
-- `[limits]` keys it sets over its service's, as a JSON object. Not secret. Deleting the
-- connection deletes them. (IF NOT EXISTS: a vault set back to an older version by hand may
-- still hold the table.)
CREATE TABLE IF NOT EXISTS connection_limits (
    link_name  TEXT PRIMARY KEY REFERENCES connections(link_name) ON DELETE CASCADE,
    limits     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
