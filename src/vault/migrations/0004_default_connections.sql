-- Schema version 4: the default connection of a service (`linkrun connection default SERVICE
-- LINK`), used by the `zoho.crm.*` and `zoho.desk.*` tasks called without a connection. Deleting
-- the connection clears its default. (IF NOT EXISTS: a vault set back to an older version by hand
-- may still hold the table.)
CREATE TABLE IF NOT EXISTS default_connections (
    service    TEXT PRIMARY KEY,
    link_name  TEXT NOT NULL REFERENCES connections(link_name) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL
);
