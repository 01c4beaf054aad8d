-- Schema version 6: secrets that belong to no connection, sealed like connection fields, with
-- associated data (vault id, owner, field): a trigger's webhook key, HMAC secret or Basic
-- password (owner `trigger:NAME`), and the key that seals the stored inputs of runs in runs.db
-- (owner `runs`). Owners contain a colon or are reserved words, so none is a link name.
CREATE TABLE IF NOT EXISTS sealed_secrets (
    owner      TEXT NOT NULL,
    field      TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner, field)
);
