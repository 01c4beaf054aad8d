//! COQL, the CRM Object Query Language behind `POST /crm/v7/coql` (`docs/api-facts.md` §2.4c): a
//! hand-written tokenizer and recursive-descent parser for the documented `SELECT` subset, and
//! its evaluation against a module's records.
//!
//! Grammar (keywords in any case):
//!
//! ```text
//! query   = "select" column ("," column)* "from" MODULE ["where" expr]
//!           ["order" "by" column ["asc"|"desc"] ("," column ["asc"|"desc"])*]
//!           ["limit" (N | OFFSET "," N | N "offset" M)] [";"]
//! column  = NAME ("." NAME)?                      e.g. Last_Name, Owner.name
//! expr    = term ("or" term)*    term = factor ("and" factor)*    factor = "(" expr ")" | cond
//! cond    = column ("=" | "!=" | "<>" | "<" | ">" | "<=" | ">=") literal
//!         | column ["not"] "like" STRING | column ["not"] "in" "(" literal ("," literal)* ")"
//!         | column "is" ["not"] "null" | column ["not"] "between" literal "and" literal
//! literal = 'text' ('' or \' inside) | number | true | false | null
//! ```
//!
//! Syntax errors say where: the 1-based column of the offending token and the token itself.

use super::*;

/// A parsed `SELECT`.
#[derive(Debug, PartialEq)]
pub(super) struct Query {
    /// The selected columns as written (`Last_Name`, `Owner.name`).
    pub(super) columns: Vec<String>,
    /// The module as written in `from`.
    pub(super) module: String,
    pub(super) filter: Option<Expr>,
    /// `(column, descending)`.
    pub(super) order: Vec<(String, bool)>,
    /// `None`: the default (200).
    pub(super) limit: Option<usize>,
    pub(super) offset: usize,
}

#[derive(Debug, PartialEq)]
pub(super) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp { column: String, op: CmpOp, values: Vec<Lit> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
    Between,
    NotBetween,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Text(String),
    Number(String),
    Bool(bool),
    Null,
}

impl Lit {
    fn text(&self) -> String {
        match self {
            Lit::Text(s) | Lit::Number(s) => s.clone(),
            Lit::Bool(b) => b.to_string(),
            Lit::Null => String::new(),
        }
    }
}

/// A query the parser refused: where and why.
#[derive(Debug, PartialEq)]
pub(super) struct SyntaxError {
    /// 1-based character column of the token at fault (past the end: length + 1).
    pub(super) column: usize,
    /// The token at fault (empty at the end of the query).
    pub(super) near: String,
    /// What was expected there.
    pub(super) expected: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Text(String),
    Number(String),
    Sym(&'static str),
}

impl Tok {
    fn shown(&self) -> String {
        match self {
            Tok::Word(w) | Tok::Number(w) => w.clone(),
            Tok::Text(t) => format!("'{t}'"),
            Tok::Sym(s) => (*s).to_string(),
        }
    }
}

/// Splits the query into tokens with their 1-based columns.
fn tokenize(s: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let col = i + 1;
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == '$' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || matches!(c[i], '_' | '$' | '.')) {
                i += 1;
            }
            out.push((Tok::Word(c[start..i].iter().collect()), col));
        } else if ch.is_ascii_digit() || (ch == '-' && c.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            out.push((Tok::Number(c[start..i].iter().collect()), col));
        } else if ch == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => {
                        return Err(SyntaxError {
                            column: col,
                            near: c[col - 1..].iter().collect(),
                            expected: "a closing quote".into(),
                        });
                    }
                    Some('\\') if c.get(i + 1).is_some() => {
                        text.push(c[i + 1]);
                        i += 2;
                    }
                    Some('\'') if c.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        text.push(*x);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Text(text), col));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let sym = match two.as_str() {
                "!=" => Some("!="),
                "<>" => Some("<>"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(sym) = sym {
                out.push((Tok::Sym(sym), col));
                i += 2;
                continue;
            }
            let sym = match ch {
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                ';' => ";",
                '*' => "*",
                _ => return Err(SyntaxError { column: col, near: ch.to_string(), expected: "a token".into() }),
            };
            out.push((Tok::Sym(sym), col));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    /// Where the query ends (for errors at the end).
    end: usize,
}

const KEYWORDS: [&str; 17] = [
    "select", "from", "where", "and", "or", "not", "in", "like", "is", "null", "between", "order", "by", "asc", "desc",
    "limit", "offset",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn fail<T>(&self, expected: &str) -> Result<T, SyntaxError> {
        let (near, column) = match self.toks.get(self.pos) {
            Some((t, c)) => (t.shown(), *c),
            None => (String::new(), self.end),
        };
        Err(SyntaxError { column, near, expected: expected.to_string() })
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SyntaxError> {
        if self.eat_kw(kw) { Ok(()) } else { self.fail(&format!("`{kw}`")) }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn column(&mut self) -> Result<String, SyntaxError> {
        match self.peek() {
            Some(Tok::Word(w)) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                let w = w.clone();
                let parts: Vec<&str> = w.split('.').collect();
                if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
                    return self.fail("a field API name");
                }
                self.pos += 1;
                Ok(w)
            }
            _ => self.fail("a field API name"),
        }
    }

    fn number(&mut self, what: &str) -> Result<usize, SyntaxError> {
        match self.peek() {
            Some(Tok::Number(n)) => match n.parse::<usize>() {
                Ok(v) => {
                    self.pos += 1;
                    Ok(v)
                }
                Err(_) => self.fail(what),
            },
            _ => self.fail(what),
        }
    }

    fn literal(&mut self) -> Result<Lit, SyntaxError> {
        let lit = match self.peek() {
            Some(Tok::Text(t)) => Lit::Text(t.clone()),
            Some(Tok::Number(n)) => Lit::Number(n.clone()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Lit::Null,
            _ => return self.fail("a value ('text', a number, true, false or null)"),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn query(&mut self) -> Result<Query, SyntaxError> {
        self.expect_kw("select")?;
        let mut columns = vec![self.column()?];
        while self.eat_sym(",") {
            columns.push(self.column()?);
        }
        self.expect_kw("from")?;
        let module = match self.peek() {
            Some(Tok::Word(w)) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => w.clone(),
            _ => return self.fail("a module API name"),
        };
        self.pos += 1;
        let filter = if self.eat_kw("where") { Some(self.expr()?) } else { None };
        let mut order = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let col = self.column()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                order.push((col, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let (mut limit, mut offset) = (None, 0);
        if self.eat_kw("limit") {
            let first = self.number("a number after `limit`")?;
            if self.eat_sym(",") {
                offset = first;
                limit = Some(self.number("a number after `limit offset,`")?);
            } else {
                limit = Some(first);
                if self.eat_kw("offset") {
                    offset = self.number("a number after `offset`")?;
                }
            }
        } else if self.eat_kw("offset") {
            offset = self.number("a number after `offset`")?;
        }
        self.eat_sym(";");
        if self.pos < self.toks.len() {
            return self.fail("the end of the query");
        }
        Ok(Query { columns, module, filter, order, limit, offset })
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.term()?;
        while self.eat_kw("or") {
            let right = self.term()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.factor()?;
        while self.eat_kw("and") {
            let right = self.factor()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_sym("(") {
            let e = self.expr()?;
            if !self.eat_sym(")") {
                return self.fail("`)`");
            }
            return Ok(e);
        }
        let column = self.column()?;
        let cmp = |op, values| Ok(Expr::Cmp { column: column.clone(), op, values });
        for (sym, op) in [("=", CmpOp::Eq), ("!=", CmpOp::Ne), ("<>", CmpOp::Ne), ("<=", CmpOp::Le), (">=", CmpOp::Ge)]
            .into_iter()
            .chain([("<", CmpOp::Lt), (">", CmpOp::Gt)])
        {
            if self.eat_sym(sym) {
                let v = self.literal()?;
                return cmp(op, vec![v]);
            }
        }
        if self.eat_kw("is") {
            let not = self.eat_kw("not");
            self.expect_kw("null")?;
            return cmp(if not { CmpOp::IsNotNull } else { CmpOp::IsNull }, vec![]);
        }
        let not = self.eat_kw("not");
        if self.eat_kw("like") {
            let v = match self.peek() {
                Some(Tok::Text(_)) => self.literal()?,
                _ => return self.fail("a 'text' pattern after `like`"),
            };
            return cmp(if not { CmpOp::NotLike } else { CmpOp::Like }, vec![v]);
        }
        if self.eat_kw("in") {
            if !self.eat_sym("(") {
                return self.fail("`(` after `in`");
            }
            let mut values = vec![self.literal()?];
            while self.eat_sym(",") {
                values.push(self.literal()?);
            }
            if !self.eat_sym(")") {
                return self.fail("`)` closing the `in` list");
            }
            return cmp(if not { CmpOp::NotIn } else { CmpOp::In }, values);
        }
        if self.eat_kw("between") {
            let low = self.literal()?;
            self.expect_kw("and")?;
            let high = self.literal()?;
            return cmp(if not { CmpOp::NotBetween } else { CmpOp::Between }, vec![low, high]);
        }
        self.fail("a comparator (=, !=, <, >, <=, >=, like, in, is null, between)")
    }
}

/// Parses a `select_query`.
pub(super) fn parse_coql(s: &str) -> Result<Query, SyntaxError> {
    let toks = tokenize(s)?;
    let mut p = Parser { toks, pos: 0, end: s.chars().count() + 1 };
    p.query()
}

impl Expr {
    /// The number of conditions (Zoho allows 25).
    pub(super) fn conditions(&self) -> usize {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.conditions() + b.conditions(),
            Expr::Cmp { .. } => 1,
        }
    }

    /// Every column the expression names.
    pub(super) fn columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Cmp { column, .. } => out.push(column),
        }
    }

    /// Whether the record matches; `get` resolves a column (dot fields included) to its value.
    pub(super) fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(get) && b.matches(get),
            Expr::Or(a, b) => a.matches(get) || b.matches(get),
            Expr::Cmp { column, op, values } => {
                let v = get(column).filter(|v| !is_empty_value(Some(v)));
                let texts = v.as_ref().map(scalars).unwrap_or_default();
                let field = column.rsplit('.').next().unwrap_or(column);
                let cmp_any = |lit: &Lit, ok: &dyn Fn(Ordering) -> bool| {
                    texts.iter().any(|t| compare(field, t, &lit.text()).is_some_and(ok))
                };
                let eq = |lit: &Lit| match lit {
                    Lit::Null => v.is_none(),
                    _ => cmp_any(lit, &|o| o == Ordering::Equal),
                };
                match op {
                    CmpOp::Eq => eq(&values[0]),
                    CmpOp::Ne => !eq(&values[0]),
                    CmpOp::Lt => cmp_any(&values[0], &|o| o == Ordering::Less),
                    CmpOp::Gt => cmp_any(&values[0], &|o| o == Ordering::Greater),
                    CmpOp::Le => cmp_any(&values[0], &|o| o != Ordering::Greater),
                    CmpOp::Ge => cmp_any(&values[0], &|o| o != Ordering::Less),
                    CmpOp::In => values.iter().any(eq),
                    CmpOp::NotIn => !values.iter().any(eq),
                    CmpOp::IsNull => v.is_none(),
                    CmpOp::IsNotNull => v.is_some(),
                    CmpOp::Like => texts.iter().any(|t| like(t, &values[0].text())),
                    CmpOp::NotLike => !texts.iter().any(|t| like(t, &values[0].text())),
                    CmpOp::Between | CmpOp::NotBetween => {
                        let inside = texts.iter().any(|t| {
                            compare(field, t, &values[0].text()).is_some_and(|o| o != Ordering::Less)
                                && compare(field, t, &values[1].text()).is_some_and(|o| o != Ordering::Greater)
                        });
                        inside == (*op == CmpOp::Between)
                    }
                }
            }
        }
    }
}

/// SQL `like` without case: `%` matches any run of characters, `_` one character.
pub(super) fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Most records one query gives, and the default.
const MAX_LIMIT: usize = 2000;
const DEFAULT_LIMIT: usize = 200;
/// How deep `offset + limit` may reach (v7: 100,000 records).
const MAX_REACH: usize = 100_000;
const MAX_COLUMNS: usize = 50;
const MAX_CONDITIONS: usize = 25;

fn invalid_query_error(details: Value) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_QUERY", "invalid query formed", details)
}

fn limit_exceeded(what: &str, limit: usize) -> Response {
    error(StatusCode::BAD_REQUEST, "LIMIT_EXCEEDED", "limit exceeded", json!({"by": what, "limit": limit}))
}

/// A matching record and its `order by` keys.
type Matched = (Map<String, Value>, Vec<Option<Value>>);

/// Fields every module has.
fn is_system_field(f: &str) -> bool {
    READ_ONLY.contains(&f) || f == "Owner"
}

impl Crm {
    /// `POST /coql` with `{"select_query": "select … from MODULE …"}`. `scopes` must also cover
    /// reading the module the query names.
    pub(super) fn coql(&self, org: &str, body: &[u8], scopes: &[String]) -> rusqlite::Result<Response> {
        let query = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => match o.get("select_query") {
                Some(Value::String(q)) if !q.trim().is_empty() => q.clone(),
                _ => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "MANDATORY_NOT_FOUND",
                        "required field not found",
                        json!({"api_name": "select_query", "json_path": "$.select_query"}),
                    ));
                }
            },
            _ => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "invalid data",
                    json!({"expected_data_type": "jsonobject"}),
                ));
            }
        };
        let q = match parse_coql(&query) {
            Ok(q) => q,
            Err(e) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "SYNTAX_ERROR",
                    &format!("error occurred near `{}` at column {}: expected {}", e.near, e.column, e.expected),
                    json!({"line": 1, "column": e.column, "near": e.near, "expected": e.expected}),
                ));
            }
        };
        let Some(module) = canonical_module(&q.module) else {
            return Ok(invalid_query_error(json!({"module": q.module, "reason": "invalid module given"})));
        };
        if !scope_allows(scopes, module, Op::Read) {
            return Ok(error(StatusCode::UNAUTHORIZED, "OAUTH_SCOPE_MISMATCH", "Unauthorized", json!({})));
        }
        if q.columns.len() > MAX_COLUMNS {
            return Ok(limit_exceeded("select", MAX_COLUMNS));
        }
        if q.filter.as_ref().is_some_and(|f| f.conditions() > MAX_CONDITIONS) {
            return Ok(limit_exceeded("where", MAX_CONDITIONS));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Ok(limit_exceeded("limit", MAX_LIMIT));
        }
        if q.offset + limit > MAX_REACH {
            return Ok(limit_exceeded("offset", MAX_REACH));
        }
        let mut seen_order: Vec<&str> = Vec::new();
        for (c, _) in &q.order {
            if seen_order.contains(&c.as_str()) {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "DUPLICATE_DATA",
                    "duplicate data",
                    json!({"clause": "order by", "column_name": c}),
                ));
            }
            seen_order.push(c);
        }
        let mut records: Vec<Map<String, Value>> = Vec::new();
        self.scan(org, module, |r| {
            records.push(r);
            true
        })?;
        records.reverse(); // oldest (lowest id) first
        // The columns the module has: its standard and system fields and any a record fills.
        let mut known: HashSet<String> = standard_fields(module).iter().map(|s| s.to_string()).collect();
        for r in &records {
            known.extend(r.keys().cloned());
        }
        let mut where_cols = Vec::new();
        if let Some(f) = &q.filter {
            f.columns(&mut where_cols);
        }
        let clauses = q
            .columns
            .iter()
            .map(|c| ("select", c.as_str()))
            .chain(where_cols.iter().map(|c| ("where", *c)))
            .chain(q.order.iter().map(|(c, _)| ("order by", c.as_str())));
        for (clause, col) in clauses {
            let base = col.split('.').next().unwrap_or(col);
            if !(is_system_field(base) || known.contains(base)) {
                return Ok(invalid_query_error(
                    json!({"column_name": col, "clause": clause, "reason": "column given seems to be invalid"}),
                ));
            }
        }
        // Lookup fields `A.b` read the looked-up record (or user) when the lookup does not carry `b`.
        let ctx = self.org_ctx(org);
        let users = ctx.users();
        let mut joined: std::collections::HashMap<(String, String), Option<Map<String, Value>>> = Default::default();
        let mut resolve = |rec: &Map<String, Value>, col: &str| -> Option<Value> {
            let Some((a, b)) = col.split_once('.') else { return rec.get(col).cloned() };
            let look = rec.get(a)?;
            if let Some(v) = look.get(b) {
                return Some(v.clone());
            }
            let id = related::lookup_id(look)?;
            if matches!(a, "Owner" | "Created_By" | "Modified_By") {
                let u = users.iter().find(|u| u.id == id)?;
                return match b {
                    "first_name" => Some(u.first.clone().into()),
                    "last_name" => Some(u.last.clone().into()),
                    "full_name" | "name" => Some(u.full_name().into()),
                    "email" => Some(u.email.clone().into()),
                    _ => None,
                };
            }
            let target = if a == "Parent_Id" {
                rec.get("$se_module").and_then(Value::as_str).and_then(canonical_module)?
            } else {
                lookup_module(module, a)?
            };
            let key = (target.to_string(), id.clone());
            if !joined.contains_key(&key) {
                let row = get_row(&self.db().conn, org, target, &id).ok().flatten();
                joined.insert(key.clone(), row.map(|(_, _, d)| parse_record(&d)));
            }
            joined.get(&key)?.as_ref()?.get(b).cloned()
        };
        // Evaluate, then sort (default: id ascending), then page.
        let mut rows: Vec<Matched> = Vec::new();
        for rec in records {
            let keep = match &q.filter {
                None => true,
                Some(f) => {
                    let mut cache: Vec<(String, Option<Value>)> = Vec::new();
                    for c in &where_cols {
                        cache.push((c.to_string(), resolve(&rec, c)));
                    }
                    f.matches(&|c: &str| cache.iter().find(|(k, _)| k == c).and_then(|(_, v)| v.clone()))
                }
            };
            if keep {
                let keys = q.order.iter().map(|(c, _)| resolve(&rec, c)).collect();
                rows.push((rec, keys));
            }
        }
        if !q.order.is_empty() {
            rows.sort_by(|a, b| {
                for (k, (col, desc)) in q.order.iter().enumerate() {
                    let field = col.rsplit('.').next().unwrap_or(col);
                    let texts = |v: &Option<Value>| {
                        v.as_ref().filter(|v| !is_empty_value(Some(v))).and_then(|v| scalars(v).into_iter().next())
                    };
                    let o = match (texts(&a.1[k]), texts(&b.1[k])) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Less,
                        (Some(_), None) => Ordering::Greater,
                        (Some(x), Some(y)) => compare(field, &x, &y).unwrap_or(Ordering::Equal),
                    };
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        let more = rows.len() > q.offset + limit;
        let page: Vec<Value> = rows
            .into_iter()
            .skip(q.offset)
            .take(limit)
            .map(|(rec, _)| {
                let mut out = Map::new();
                for c in &q.columns {
                    let v = match resolve(&rec, c) {
                        // A lookup selected whole shows its id only.
                        Some(Value::Object(o)) if !c.contains('.') => match o.get("id") {
                            Some(id) => json!({"id": id}),
                            None => Value::Object(o),
                        },
                        Some(v) => v,
                        None => Value::Null,
                    };
                    out.insert(c.clone(), v);
                }
                out.insert("id".into(), rec.get("id").cloned().unwrap_or(Value::Null));
                Value::Object(out)
            })
            .collect();
        if page.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let info = json!({"count": page.len(), "more_records": more});
        Ok(json_value(StatusCode::OK, &json!({"data": page, "info": info})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(column: &str, op: CmpOp, values: Vec<Lit>) -> Expr {
        Expr::Cmp { column: column.into(), op, values }
    }

    fn text(s: &str) -> Lit {
        Lit::Text(s.into())
    }

    #[test]
    fn the_documented_example_parses() {
        let q = parse_coql(
            "select Last_Name, Email from Leads where Email = 'x@y.com' order by Created_Time desc limit 0, 200",
        )
        .unwrap();
        assert_eq!(
            q,
            Query {
                columns: vec!["Last_Name".into(), "Email".into()],
                module: "Leads".into(),
                filter: Some(cmp("Email", CmpOp::Eq, vec![text("x@y.com")])),
                order: vec![("Created_Time".into(), true)],
                limit: Some(200),
                offset: 0,
            }
        );
    }

    #[test]
    fn keywords_ignore_case_and_limit_has_three_forms() {
        let q = parse_coql("SELECT id FROM Leads LIMIT 5 OFFSET 10;").unwrap();
        assert_eq!((q.limit, q.offset, q.filter), (Some(5), 10, None));
        let q = parse_coql("select id from Leads limit 10, 5").unwrap();
        assert_eq!((q.limit, q.offset), (Some(5), 10));
        let q = parse_coql("select id from Leads limit 7").unwrap();
        assert_eq!((q.limit, q.offset), (Some(7), 0));
        let q = parse_coql("select id from Leads").unwrap();
        assert_eq!((q.limit, q.offset, q.order), (None, 0, vec![]));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let q = parse_coql("select id from Leads where A = 1 or B = 2 and C = 3").unwrap();
        let (a, b, c) = (
            cmp("A", CmpOp::Eq, vec![Lit::Number("1".into())]),
            cmp("B", CmpOp::Eq, vec![Lit::Number("2".into())]),
            cmp("C", CmpOp::Eq, vec![Lit::Number("3".into())]),
        );
        assert_eq!(q.filter.unwrap(), Expr::Or(Box::new(a), Box::new(Expr::And(Box::new(b), Box::new(c)))));
        let q = parse_coql("select id from Leads where (A = 1 or B = 2) and C = 3").unwrap();
        assert!(matches!(q.filter.unwrap(), Expr::And(..)));
    }

    #[test]
    fn every_comparator_parses() {
        let q = parse_coql(
            "select Owner.name from Deals where ((Amount >= 10 and Amount <= 20) or Stage != 'Closed Lost') \
             and Deal_Name like 'Zyl%' and Stage not in ('a','b') and Type in ('New Business') \
             and Closing_Date between '2024-01-01' and '2024-12-31' and Description is null \
             and Lead_Source is not null and Amount <> 5 and Amount < 1 and Amount > -2 and Name not like '%x'",
        )
        .unwrap();
        let f = q.filter.unwrap();
        assert_eq!(f.conditions(), 13);
        let mut cols = Vec::new();
        f.columns(&mut cols);
        assert!(cols.contains(&"Closing_Date") && cols.contains(&"Name"));
        assert_eq!(q.columns, vec!["Owner.name".to_string()]);
    }

    #[test]
    fn quotes_escape_inside_text() {
        let q = parse_coql(r"select id from Leads where Last_Name = 'O''Brien' or Last_Name = 'O\'Neil'").unwrap();
        assert_eq!(
            q.filter.unwrap(),
            Expr::Or(
                Box::new(cmp("Last_Name", CmpOp::Eq, vec![text("O'Brien")])),
                Box::new(cmp("Last_Name", CmpOp::Eq, vec![text("O'Neil")]))
            )
        );
    }

    #[test]
    fn syntax_errors_name_the_token_and_its_column() {
        let e = parse_coql("select Last_Name Leads").unwrap_err();
        assert_eq!((e.column, e.near.as_str(), e.expected.as_str()), (18, "Leads", "`from`"));
        let e = parse_coql("select from Leads").unwrap_err();
        assert_eq!((e.column, e.near.as_str()), (8, "from"));
        let e = parse_coql("select id from Leads where Email = ").unwrap_err();
        assert_eq!((e.column, e.near.as_str()), (36, ""));
        let e = parse_coql("select id from Leads where Email == 'x'").unwrap_err();
        assert_eq!(e.near, "=");
        let e = parse_coql("select id from Leads where (Email = 'x'").unwrap_err();
        assert_eq!(e.expected, "`)`");
        let e = parse_coql("select id from Leads where Email = 'x").unwrap_err();
        assert_eq!((e.column, e.expected.as_str()), (36, "a closing quote"));
        let e = parse_coql("update Leads set x = 1").unwrap_err();
        assert_eq!((e.column, e.near.as_str()), (1, "update"));
        let e = parse_coql("select id from Leads limit ten").unwrap_err();
        assert_eq!(e.near, "ten");
    }

    #[test]
    fn like_matches_percent_and_underscore_without_case() {
        for (t, p, want) in [
            ("Zylker Corp", "zyl%", true),
            ("Zylker Corp", "%corp", true),
            ("Zylker Corp", "%KER%", true),
            ("Zylker Corp", "Zylker", false),
            ("Zylker Corp", "Zylker Cor_", true),
            ("abc", "a%c%", true),
            ("abc", "%d%", false),
            ("", "%", true),
        ] {
            assert_eq!(like(t, p), want, "{t} like {p}");
        }
    }

    #[test]
    fn conditions_evaluate_against_values() {
        let rec = json!({"Amount": 1500, "Stage": "Qualification", "Owner": {"id": "7", "name": "Pat"}, "Empty": ""});
        let get = |c: &str| -> Option<Value> {
            match c.split_once('.') {
                Some((a, b)) => rec.get(a).and_then(|o| o.get(b)).cloned(),
                None => rec.get(c).cloned(),
            }
        };
        let yes =
            |q: &str| parse_coql(&format!("select id from Deals where {q}")).unwrap().filter.unwrap().matches(&get);
        assert!(yes("Amount > 1000 and Amount < 2000"));
        assert!(yes("Amount between 1500 and 1500"));
        assert!(!yes("Amount not between 1000 and 2000"));
        assert!(yes("Stage = 'qualification'"));
        assert!(yes("Stage in ('Closed Won', 'Qualification')"));
        assert!(!yes("Stage not in ('Closed Won', 'Qualification')"));
        assert!(yes("Owner.name = 'Pat' and Owner = '7'"));
        assert!(yes("Empty is null and Missing is null and Stage is not null"));
        assert!(yes("Missing != 'x'"));
        assert!(!yes("Missing = 'x'"));
    }
}
