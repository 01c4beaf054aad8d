-- Schema version 2: OAuth token metadata (the tokens themselves are sealed in `sealed` as
-- `token:access_token` / `token:refresh_token`) and the cross-process refresh lease.
CREATE TABLE oauth_tokens (
    link_name      TEXT PRIMARY KEY REFERENCES connections(link_name) ON DELETE CASCADE,
    generation     INTEGER NOT NULL DEFAULT 0,   -- bumped at every store: readers notice a refresh
    obtained_at    INTEGER NOT NULL DEFAULT 0,   -- unix seconds
    expires_at     INTEGER,                      -- unix seconds; NULL: unknown
    last_refresh   INTEGER,
    granted_scopes TEXT NOT NULL DEFAULT '[]',
    api_domain     TEXT,
    grant_type     TEXT,                         -- the grant that produced the tokens
    lease_until    INTEGER NOT NULL DEFAULT 0,   -- a refresh in progress elsewhere until then
    lease_owner    TEXT
);
