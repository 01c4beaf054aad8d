//! The sandbox's one SQLite data file (`linkrun sandbox --data FILE`), shared by every emulator:
//! each opens its own connection to it (WAL, so they coexist) and keeps to its own tables.
//!
//! | emulator        | tables |
//! |-----------------|--------|
//! | Zoho CRM        | `records` |
//! | Zoho Desk       | `desk_orgs`, `desk_contacts`, `desk_tickets`, `desk_counters` |
//! | Zoho Campaigns  | `campaigns_lists`, `campaigns_members` |
//! | ServiceNow      | `sn_records`, `sn_sequences` |
//! | OAuth providers | `oauth_access`, `oauth_refresh`, `oauth_reuse` (one `provider` column apart) |
//!
//! Opening checks that every table an emulator will use has the columns it expects and says which
//! table does not (a file of another program, or of a future linkrun), instead of failing later
//! on each request. Files of older linkruns are brought up to date first: the ServiceNow emulator
//! once used `records` and `sequences`, which clashed with the CRM's `records`; a `records` of the
//! ServiceNow's shape (a file only ServiceNow ever wrote to) is renamed `sn_records`, and
//! `sequences` becomes `sn_sequences`.
//!
//! A failure while serving a request is answered in the product's error format with HTTP 500 and
//! [`storage_failed`]'s message, never with the fault knob's "simulated server failure".

use std::fmt::Display;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

/// Why the data file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite refused: the file cannot be opened or read, is not a database, is read-only, ...
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A table has another shape than the emulator expects.
    #[error(
        "table `{table}` has the columns ({found}), not the {owner} emulator's ({expected}): the file was \
         not written by this linkrun's sandbox; pass another --data file"
    )]
    WrongShape {
        /// The table.
        table: String,
        /// The emulator that uses it.
        owner: &'static str,
        /// Its columns in the file.
        found: String,
        /// The columns the emulator needs.
        expected: String,
    },
}

/// The message of a storage failure met while serving a request.
pub fn storage_failed(e: &dyn Display) -> String {
    format!("the sandbox's storage failed: {e}")
}

/// The columns of the old ServiceNow `records` table.
const LEGACY_SN_RECORDS: [&str; 4] = ["tbl", "sys_id", "updated", "data"];
/// The columns of the old ServiceNow `sequences` table.
const LEGACY_SN_SEQUENCES: [&str; 2] = ["prefix", "next"];

/// Opens the SQLite file at `path` (WAL, a busy timeout) or an in-memory database for `None`,
/// brings an older linkrun's file up to date, checks that each of `tables` (name and the columns
/// `owner` uses), where it exists, has those columns, and runs `schema` (its `CREATE ... IF NOT
/// EXISTS` statements).
pub(crate) fn open_db(
    path: Option<&Path>,
    owner: &'static str,
    tables: &[(&str, &[&str])],
    schema: &str,
) -> Result<Connection, StorageError> {
    let conn = match path {
        Some(p) => {
            let c = Connection::open(p)?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c
        }
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&conn)?;
    for (table, expected) in tables {
        check_shape(&conn, owner, table, expected)?;
    }
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// The column names of `table`; `None` when there is no such table.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let exists = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let names = st.query_map([table], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(names))
}

fn check_shape(conn: &Connection, owner: &'static str, table: &str, expected: &[&str]) -> Result<(), StorageError> {
    let Some(found) = columns(conn, table)? else { return Ok(()) };
    if expected.iter().all(|c| found.iter().any(|f| f == c)) {
        return Ok(());
    }
    Err(StorageError::WrongShape {
        table: table.to_string(),
        owner,
        found: found.join(", "),
        expected: expected.join(", "),
    })
}

/// Whether `table` exists with exactly the columns `cols`.
fn is_shaped(conn: &Connection, table: &str, cols: &[&str]) -> rusqlite::Result<bool> {
    Ok(columns(conn, table)?
        .is_some_and(|found| found.len() == cols.len() && cols.iter().all(|c| found.contains(&c.to_string()))))
}

/// Renames the old ServiceNow tables (see the module documentation). Does nothing on a current
/// file; safe to run from every emulator's open.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    if columns(conn, "sn_records")?.is_none() && is_shaped(conn, "records", &LEGACY_SN_RECORDS)? {
        // Its index moves along under the old name, which the CRM's own index needs.
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE records RENAME TO sn_records;
             DROP INDEX IF EXISTS records_id;
             COMMIT;",
        )?;
    }
    if columns(conn, "sn_sequences")?.is_none() && is_shaped(conn, "sequences", &LEGACY_SN_SEQUENCES)? {
        conn.execute_batch("ALTER TABLE sequences RENAME TO sn_sequences;")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_another_shape_is_named_and_old_servicenow_tables_are_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE records (tbl TEXT NOT NULL, sys_id TEXT NOT NULL, updated INTEGER NOT NULL, data TEXT NOT NULL);
             CREATE UNIQUE INDEX records_id ON records (tbl, sys_id);
             INSERT INTO records VALUES ('core_company', 'abc', 1, '{}');
             CREATE TABLE sequences (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL);
             INSERT INTO sequences VALUES ('CS', 1300);
             CREATE TABLE desk_orgs (something TEXT);",
        )
        .unwrap();
        drop(c);
        let conn = open_db(Some(&path), "test", &[("records", &["org", "id"])], "").unwrap();
        assert_eq!(columns(&conn, "records").unwrap(), None);
        assert_eq!(columns(&conn, "sn_records").unwrap().unwrap(), LEGACY_SN_RECORDS);
        let n: i64 = conn.query_row("SELECT next FROM sn_sequences WHERE prefix = 'CS'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1300);
        let index: Option<String> = conn
            .query_row("SELECT name FROM sqlite_master WHERE name = 'records_id'", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(index, None);
        drop(conn);
        let err = open_db(Some(&path), "Zoho Desk", &[("desk_orgs", &["org", "org_id"])], "").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StorageError::WrongShape { .. }), "{text}");
        assert!(
            text.contains("`desk_orgs` has the columns (something), not the Zoho Desk emulator's (org, org_id)"),
            "{text}"
        );
    }
}
