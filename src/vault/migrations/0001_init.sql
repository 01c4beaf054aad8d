-- Schema version 1: vault metadata, connections, sealed fields.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE connections (
    link_name   TEXT PRIMARY KEY,
    service     TEXT NOT NULL,
    data_center TEXT,
    instance    TEXT,
    scopes      TEXT NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- Every param and token, sealed with AES-256-GCM; the associated data binds each value to
-- (vault id, link name, field), so a value copied onto another row fails to open.
CREATE TABLE sealed (
    link_name  TEXT NOT NULL REFERENCES connections(link_name) ON DELETE CASCADE,
    field      TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (link_name, field)
);
