//! Storage: rows of the `records` table in and out, duplicate lookups and the sorted, filtered
//! listing behind list and search.

use super::*;

pub(super) type Row = (String, i64, i64, String);

pub(super) fn insert_row(
    conn: &Connection,
    org: &str,
    module: &str,
    id: &str,
    created: i64,
    modified: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO records (org, module, id, created, modified, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![org, module, id, created, modified, data])?;
    Ok(())
}

pub(super) fn update_row(
    conn: &Connection,
    org: &str,
    module: &str,
    id: &str,
    modified: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached("UPDATE records SET modified = ?4, data = ?5 WHERE org = ?1 AND module = ?2 AND id = ?3")?
        .execute(params![org, module, id, modified, data])?;
    Ok(())
}

/// `(created, modified, data)` of a record.
pub(super) fn get_row(
    conn: &Connection,
    org: &str,
    module: &str,
    id: &str,
) -> rusqlite::Result<Option<(i64, i64, String)>> {
    let mut st =
        conn.prepare_cached("SELECT created, modified, data FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?;
    let row = st.query_row(params![org, module, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
    Ok(row)
}

pub(super) fn count_rows(conn: &Connection, org: &str, module: &str) -> rusqlite::Result<usize> {
    let mut st = conn.prepare_cached("SELECT COUNT(*) FROM records WHERE org = ?1 AND module = ?2")?;
    let n: i64 = st.query_row(params![org, module], |r| r.get(0))?;
    Ok(n.max(0) as usize)
}

pub(super) fn existing_emails(conn: &Connection, org: &str, module: &str) -> rusqlite::Result<HashSet<String>> {
    let mut st = conn.prepare_cached(
        "SELECT lower(json_extract(data, '$.Email')) FROM records WHERE org = ?1 AND module = ?2 \
         AND json_extract(data, '$.Email') IS NOT NULL",
    )?;
    let rows = st.query_map(params![org, module], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The first record (lowest id) of `module` whose `field` equals `value` (text case-insensitively),
/// other than `exclude`.
pub(super) fn find_equal(
    conn: &Connection,
    org: &str,
    module: &str,
    field: &str,
    value: &Value,
    exclude: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::Value as Sql;
    let (expr, bound) = match value {
        Value::String(s) if field == "Email" => {
            ("lower(json_extract(data, '$.Email'))".to_string(), Sql::Text(s.trim().to_ascii_lowercase()))
        }
        Value::String(s) => {
            (format!("lower(json_extract(data, '$.\"{field}\"'))"), Sql::Text(s.trim().to_ascii_lowercase()))
        }
        Value::Number(n) => {
            let bound = match n.as_i64() {
                Some(i) => Sql::Integer(i),
                None => Sql::Real(n.as_f64().unwrap_or(0.0)),
            };
            (format!("json_extract(data, '$.\"{field}\"')"), bound)
        }
        Value::Bool(b) => (format!("json_extract(data, '$.\"{field}\"')"), Sql::Integer(i64::from(*b))),
        _ => return Ok(None),
    };
    if !valid_api_name(field) {
        return Ok(None);
    }
    let mut args = vec![Sql::Text(org.into()), Sql::Text(module.into()), bound];
    // The e-mail index, named: with `ORDER BY id LIMIT 1` the planner would otherwise walk the
    // module by id and parse every record's JSON (an upsert of 10,000 records took minutes).
    let indexed = if field == "Email" { " INDEXED BY records_email" } else { "" };
    let mut sql = format!("SELECT id FROM records{indexed} WHERE org = ?1 AND module = ?2 AND {expr} = ?3");
    if let Some(x) = exclude {
        sql.push_str(" AND id <> ?4");
        args.push(Sql::Text(x.into()));
    }
    sql.push_str(" ORDER BY id LIMIT 1");
    let mut st = conn.prepare_cached(&sql)?;
    let id = st.query_row(params_from_iter(args), |r| r.get(0)).optional()?;
    Ok(id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SortBy {
    Id,
    Created,
    Modified,
}

impl SortBy {
    pub(super) fn parse(s: &str) -> Option<SortBy> {
        match s {
            "id" => Some(SortBy::Id),
            "Created_Time" => Some(SortBy::Created),
            "Modified_Time" => Some(SortBy::Modified),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::Created => "Created_Time",
            SortBy::Modified => "Modified_Time",
        }
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::Created => "created",
            SortBy::Modified => "modified",
        }
    }

    pub(super) fn code(self) -> char {
        match self {
            SortBy::Id => 'i',
            SortBy::Created => 'c',
            SortBy::Modified => 'm',
        }
    }

    pub(super) fn key(self, row: &Row) -> i64 {
        match self {
            SortBy::Id => 0,
            SortBy::Created => row.1,
            SortBy::Modified => row.2,
        }
    }
}

/// One page of a module's records: modified at or after `since_ms`, after the cursor
/// `(sort key, id)` or from `offset`, at most `limit`.
#[allow(clippy::too_many_arguments)]
pub(super) fn query_rows(
    conn: &Connection,
    org: &str,
    module: &str,
    sort: SortBy,
    desc: bool,
    since_ms: Option<i64>,
    after: Option<&(i64, String)>,
    limit: usize,
    offset: usize,
) -> rusqlite::Result<Vec<Row>> {
    use rusqlite::types::Value as Sql;
    let mut sql = String::from("SELECT id, created, modified, data FROM records WHERE org = ?1 AND module = ?2");
    let mut args = vec![Sql::Text(org.into()), Sql::Text(module.into())];
    if let Some(s) = since_ms {
        args.push(Sql::Integer(s));
        sql.push_str(&format!(" AND modified >= ?{}", args.len()));
    }
    let cmp = if desc { "<" } else { ">" };
    if let Some((key, id)) = after {
        if sort == SortBy::Id {
            args.push(Sql::Text(id.clone()));
            sql.push_str(&format!(" AND id {cmp} ?{}", args.len()));
        } else {
            args.push(Sql::Integer(*key));
            args.push(Sql::Text(id.clone()));
            let (k, i, col) = (args.len() - 1, args.len(), sort.column());
            sql.push_str(&format!(" AND ({col} {cmp} ?{k} OR ({col} = ?{k} AND id {cmp} ?{i}))"));
        }
    }
    let dir = if desc { "DESC" } else { "ASC" };
    if sort == SortBy::Id {
        sql.push_str(&format!(" ORDER BY id {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY {} {dir}, id {dir}", sort.column()));
    }
    args.push(Sql::Integer(limit as i64));
    args.push(Sql::Integer(offset as i64));
    sql.push_str(&format!(" LIMIT ?{} OFFSET ?{}", args.len() - 1, args.len()));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}
