//! The shared token store: with a data file, the access and refresh tokens and the grants behind
//! them are written through to its `oauth_*` tables and read back after a restart.

use super::*;

/// The `oauth_*` tables; `provider` tells the providers sharing a file apart, `scopes` is a JSON
/// array, times are the provider's clock in Unix milliseconds.
pub(super) const TOKEN_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS oauth_refresh (
        provider TEXT NOT NULL, token TEXT NOT NULL, client_id TEXT NOT NULL, org TEXT NOT NULL,
        scopes TEXT NOT NULL, user_name TEXT, expires_ms INTEGER, PRIMARY KEY (provider, token));
    CREATE TABLE IF NOT EXISTS oauth_access (
        provider TEXT NOT NULL, token TEXT NOT NULL, client_id TEXT NOT NULL, org TEXT NOT NULL,
        scopes TEXT NOT NULL, user_name TEXT, refresh TEXT, expires_ms INTEGER NOT NULL,
        PRIMARY KEY (provider, token));
    CREATE TABLE IF NOT EXISTS oauth_reuse (
        provider TEXT NOT NULL, client_id TEXT NOT NULL, user_name TEXT NOT NULL, grant_key TEXT NOT NULL,
        token TEXT NOT NULL, PRIMARY KEY (provider, client_id, user_name, grant_key));";

/// The tables and the columns the store reads.
pub(super) const TOKEN_TABLES: [(&str, &[&str]); 3] = [
    ("oauth_refresh", &["provider", "token", "client_id", "org", "scopes", "user_name", "expires_ms"]),
    ("oauth_access", &["provider", "token", "client_id", "org", "scopes", "user_name", "refresh", "expires_ms"]),
    ("oauth_reuse", &["provider", "client_id", "user_name", "grant_key", "token"]),
];

/// The tokens a provider starts with.
#[derive(Default)]
pub(super) struct Tokens {
    pub(super) access: HashMap<String, Access>,
    pub(super) refresh: HashMap<String, Refresh>,
    pub(super) current: HashMap<ReuseKey, String>,
}

/// A provider's rows in the data file, written through on every change.
pub(super) struct TokenStore {
    pub(super) conn: Connection,
    /// The `provider` column of its rows.
    pub(super) name: String,
}

pub(super) fn ms_to_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

pub(super) fn grant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    let scopes: String = r.get("scopes")?;
    Ok(Grant {
        client_id: r.get("client_id")?,
        org: r.get("org")?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        user: r.get("user_name")?,
    })
}

impl TokenStore {
    pub(super) fn load(&self) -> rusqlite::Result<Tokens> {
        let mut t = Tokens::default();
        let name = self.name.as_str();
        let mut q = self.conn.prepare("SELECT * FROM oauth_refresh WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| {
            let expires: Option<i64> = r.get("expires_ms")?;
            Ok((
                r.get::<_, String>("token")?,
                Refresh { grant: grant_from_row(r)?, expires_ms: expires.map(|e| e.max(0) as u64), seq: 0 },
            ))
        })?;
        for row in rows {
            let (token, refresh) = row?;
            t.refresh.insert(token, refresh);
        }
        let mut q = self.conn.prepare("SELECT * FROM oauth_access WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| {
            let expires: i64 = r.get("expires_ms")?;
            let access = Access {
                grant: grant_from_row(r)?,
                refresh: r.get("refresh")?,
                expires_ms: expires.max(0) as u64,
                seq: 0,
            };
            Ok((r.get::<_, String>("token")?, access))
        })?;
        for row in rows {
            let (token, access) = row?;
            t.access.insert(token, access);
        }
        let mut q =
            self.conn.prepare("SELECT client_id, user_name, grant_key, token FROM oauth_reuse WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, String>(3)?)))?;
        for row in rows {
            let (key, token) = row?;
            if t.access.contains_key(&token) {
                t.current.insert(key, token);
            }
        }
        Ok(t)
    }

    pub(super) fn put_refresh(&self, token: &str, r: &Refresh) -> rusqlite::Result<()> {
        let g = &r.grant;
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_refresh (provider, token, client_id, org, scopes, user_name, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                self.name,
                token,
                g.client_id,
                g.org,
                Value::from(g.scopes.clone()).to_string(),
                g.user,
                r.expires_ms.map(ms_to_sql)
            ],
        )?;
        Ok(())
    }

    pub(super) fn put_access(&self, token: &str, a: &Access) -> rusqlite::Result<()> {
        let g = &a.grant;
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_access
                 (provider, token, client_id, org, scopes, user_name, refresh, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                self.name,
                token,
                g.client_id,
                g.org,
                Value::from(g.scopes.clone()).to_string(),
                g.user,
                a.refresh,
                ms_to_sql(a.expires_ms)
            ],
        )?;
        Ok(())
    }

    pub(super) fn put_reuse(&self, key: &ReuseKey, token: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_reuse (provider, client_id, user_name, grant_key, token)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.name, key.0, key.1, key.2, token],
        )?;
        Ok(())
    }

    /// Refresh token `old` gave way to `new` (stored already): its access tokens now belong to
    /// `new`.
    pub(super) fn rotate(&self, old: &str, new: &str) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM oauth_refresh WHERE provider = ?1 AND token = ?2", params![self.name, old])?;
        tx.execute(
            "UPDATE oauth_access SET refresh = ?3 WHERE provider = ?1 AND refresh = ?2",
            params![self.name, old, new],
        )?;
        tx.commit()
    }

    /// Removes a refresh token with its access tokens, or an access token.
    pub(super) fn revoke(&self, token: &str) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM oauth_refresh WHERE provider = ?1 AND token = ?2", params![self.name, token])?;
        tx.execute(
            "DELETE FROM oauth_access WHERE provider = ?1 AND (token = ?2 OR refresh = ?2)",
            params![self.name, token],
        )?;
        tx.commit()
    }

    pub(super) fn expire_all(&self, now: u64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE oauth_access SET expires_ms = ?2 WHERE provider = ?1 AND expires_ms > ?2",
            params![self.name, ms_to_sql(now)],
        )?;
        Ok(())
    }
}
