//! Storage: records of the `sn_records` table in and out, record numbers from `sn_sequences`,
//! and the reference lookups behind dot-walked fields and display values.
//!
//! Reads go through [`Db::table`]: the parsed records of a table, kept until the connection's
//! next write (SQLite's `total_changes` counter moves), so that a list or a lookup does not parse
//! every stored record again: the emulator's own cost stays far below the latencies it
//! emulates, even with tens of thousands of records.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use super::*;

/// The parsed records of one table, in storage order, and their index by `sys_id`.
pub(super) struct Table {
    pub(super) rows: Vec<Map<String, Value>>,
    by_id: HashMap<String, usize>,
}

impl Table {
    pub(super) fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        self.by_id.get(id).and_then(|i| self.rows.get(*i))
    }
}

/// The record store's connection and its parsed tables.
pub(super) struct Db {
    conn: Connection,
    /// table → (the connection's `total_changes` when parsed, the records).
    tables: RefCell<HashMap<String, (u64, Arc<Table>)>>,
}

impl Db {
    pub(super) fn new(conn: Connection) -> Db {
        Db { conn, tables: RefCell::new(HashMap::new()) }
    }

    /// The records of `table` (parsed once per write to the store). Writes made inside a
    /// transaction that is rolled back leave the counter moved, so they cost a re-read, never a
    /// stale answer.
    pub(super) fn table(&self, table: &str) -> rusqlite::Result<Arc<Table>> {
        let stamp = self.conn.total_changes();
        if let Some((at, t)) = self.tables.borrow().get(table)
            && *at == stamp
        {
            return Ok(t.clone());
        }
        let mut st = self.conn.prepare_cached("SELECT data FROM sn_records WHERE tbl = ?1 ORDER BY rowid")?;
        let rows = st.query_map([table], |r| r.get::<_, String>(0))?;
        let rows = rows.map(|r| r.map(|d| parse_record(&d))).collect::<rusqlite::Result<Vec<_>>>()?;
        let by_id = rows.iter().enumerate().map(|(i, r)| (str_of(r, "sys_id"), i)).collect();
        let t = Arc::new(Table { rows, by_id });
        self.tables.borrow_mut().insert(table.to_string(), (stamp, t.clone()));
        Ok(t)
    }
}

impl Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Db {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

pub(super) fn insert_row(
    conn: &Connection,
    table: &str,
    id: &str,
    updated: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO sn_records (tbl, sys_id, updated, data) VALUES (?1, ?2, ?3, ?4)",
        params![table, id, updated, Value::Object(rec.clone()).to_string()],
    )?;
    Ok(())
}

pub(super) fn parse_record(data: &str) -> Map<String, Value> {
    match serde_json::from_str(data) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

pub(super) fn get_rec(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<Map<String, Value>>> {
    conn.query_row("SELECT data FROM sn_records WHERE tbl = ?1 AND sys_id = ?2", [table, id], |r| r.get::<_, String>(0))
        .optional()
        .map(|d| d.map(|d| parse_record(&d)))
}

pub(super) fn next_number(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    let n: i64 = conn.query_row(
        "INSERT INTO sn_sequences (prefix, next) VALUES (?1, 1002) ON CONFLICT(prefix) DO UPDATE SET next = next + 1
         RETURNING next - 1",
        [prefix],
        |r| r.get(0),
    )?;
    Ok(format!("{prefix}{n:07}"))
}

pub(super) fn str_of(rec: &Map<String, Value>, field: &str) -> String {
    match rec.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => sn_string(v),
        None => String::new(),
    }
}

/// A client's value as ServiceNow stores it: a string (numbers and booleans written out, `null`
/// empty, a `{"value": …}` object its value, an array its items joined with commas).
pub(super) fn sn_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(sn_string).collect::<Vec<_>>().join(","),
        Value::Object(o) => o.get("value").or_else(|| o.get("sys_id")).map(sn_string).unwrap_or_default(),
    }
}

/// Referenced records, loaded a table at a time when first needed.
pub(super) struct Lookup<'a> {
    pub(super) db: &'a Db,
    pub(super) cache: HashMap<&'static str, Option<Arc<Table>>>,
}

impl<'a> Lookup<'a> {
    pub(super) fn new(db: &'a Db) -> Lookup<'a> {
        Lookup { db, cache: HashMap::new() }
    }

    pub(super) fn record(&mut self, table: &'static str, id: &str) -> Option<Map<String, Value>> {
        let db = self.db;
        let t = self.cache.entry(table).or_insert_with(|| db.table(table).ok());
        t.as_ref()?.get(id).cloned()
    }

    pub(super) fn display(&mut self, table: &'static str, id: &str) -> String {
        let Some(def) = table_def(table) else { return String::new() };
        self.record(table, id).map(|r| str_of(&r, def.display)).unwrap_or_default()
    }
}

/// Whether `field` names a column of `def`, dot-walking through references (`account.name`).
pub(super) fn valid_field(def: &TableDef, field: &str) -> bool {
    match field.split_once('.') {
        Some((head, tail)) => def.ref_table(head).and_then(table_def).is_some_and(|d| valid_field(d, tail)),
        None => def.has(field),
    }
}

/// The value of `field` (dot-walks included) in `rec`; `None` for an invalid field.
pub(super) fn value_of(rec: &Map<String, Value>, def: &TableDef, field: &str, lk: &mut Lookup) -> Option<String> {
    match field.split_once('.') {
        Some((head, tail)) => {
            let table = def.ref_table(head)?;
            let rdef = table_def(table)?;
            if !valid_field(rdef, tail) {
                return None;
            }
            let id = str_of(rec, head);
            match lk.record(table, &id) {
                Some(r) => value_of(&r, rdef, tail, lk),
                None => Some(String::new()),
            }
        }
        None => (def.has(field) || rec.contains_key(field)).then(|| str_of(rec, field)),
    }
}
