//! Translation of a Deluge [`Program`] into Rhai source that runs on linkrun's Deluge vocabulary
//! (the `Map()`/`put`/`subString`/... functions, the `zoho` namespace, `invoke_url`). `linkrun run
//! FILE.dg` runs the output and `linkrun port` writes it, so the two cannot disagree.
//!
//! How Deluge becomes Rhai:
//!
//! - Deluge variables live for the whole function, Rhai's for their block: every assigned
//!   variable is declared once at the top (`let x;`), so an assignment inside an `if` is seen
//!   after it.
//! - A variable read before any assignment is an **input**: a header parameter, or, in a bare
//!   script body, a free variable. Inputs come from `--arg`/`--input` through
//!   `deluge_arg(name, type)`; in a function with a header a free variable is an error, as
//!   Deluge's editor refuses to save it.
//! - Built-in names are case-insensitive in Deluge (`toUpperCase`, `touppercase`): each known
//!   name is written with its documented spelling; unknown names are kept as written.
//! - Names that are Rhai keywords (`module`, `fn`, `let`...) get a `_` suffix.
//! - `invokeurl [ ... ]` becomes `invoke_url(#{ ... })` with the same keys; `info x;` becomes
//!   `info(x);`; `if(c, a, b)` becomes `if c { a } else { b }`; `{a, b}` lists become `[a, b]`;
//!   maps with literal text keys become `#{...}`, others are built with `put`.
//! - A single-quoted `'01-Jan-2024'` or `'01-Jan-2024 10:00:00'` is a date literal,
//!   `deluge_date("...")`; any other single-quoted text stays text.
//! - `now` and `today` (unless the function assigns them) become `now()` and `today()`.
//! - For speed, `m.put(k, v);` on a variable becomes `m[k] = v;` (`deluge_key(k)` turns a
//!   non-text key into text as `put` does), and `x = x + e;` becomes `x += e;`.
//! - Text is a value in Deluge (`t = raw.trim();` leaves `raw` as it was) while Rhai's `trim` and
//!   `remove` change a variable in place: `x.trim()` and `x.remove(p)` on a variable become
//!   `deluge_trim(x)` and `x.deluge_remove(p)`, which leave text as it was and still remove a map's
//!   key or a list's item in place.
//! - Maps and lists are values in linkrun, references in Deluge: after `m2 = m1; m2.put("k", 1);`
//!   Deluge's `m1` has `k` too, linkrun's does not (Rhai copies on assignment), and a map added
//!   to a list and then changed is changed in the list in Deluge only. Functions that put
//!   through a second name to change the first need the first name. Maps also keep their keys
//!   sorted (`keys()`, `toString()`), where Deluge keeps the order of insertion.
//! - Inside `try`, each statement records its Deluge line (`line__ = N;`), and `catch (e)` binds
//!   `e = deluge_error(err, line__)`, which has Deluge's `e.message` and `e.lineNo`.
//! - `zoho.crm.*`, `zoho.desk.*` and `zoho.encryption.*` calls are kept as they are (linkrun has
//!   them); any other `zoho.*` task, `thisapp.*` and statements like `sendmail [...]` are refused
//!   here, naming the task, so nothing runs half-way.
//! - String literals holding a hard-coded `client_secret`, `refresh_token`, access token, API key
//!   or password are left out (replaced by `""`) and reported as [`Credential`]s.
//!
//! Every Rhai line maps back to the Deluge statement it came from ([`Translation::origin`]), so
//! errors at run time point at the Deluge file's line and column.

use std::collections::{BTreeSet, HashSet};

use crate::ast::*;
use crate::parser::ParseError;

/// The `zoho.crm` tasks linkrun runs.
pub const CRM_TASKS: &[&str] = &[
    "createRecord",
    "getRecordById",
    "getRecords",
    "searchRecords",
    "updateRecord",
    "upsert",
    "getRelatedRecords",
    "bulkUpdate",
    "getOrgVariable",
];

/// The `zoho.desk` tasks linkrun runs.
pub const DESK_TASKS: &[&str] = &["create", "getRecordById", "getRecords", "searchRecords", "update"];

/// The `zoho.encryption` functions linkrun has.
pub const ENCRYPTION_FUNCTIONS: &[&str] =
    &["urlEncode", "urlDecode", "base64Encode", "base64Decode", "hmacsha256", "hmacsha1", "sha256", "sha1"];

/// The `zoho.*` values linkrun has.
pub const ZOHO_VALUES: &[&str] = &["currenttime", "currentdate"];

/// Deluge's built-in functions and methods in their documented spelling; a name written in any
/// case is translated to this one.
const BUILTINS: &[&str] = &[
    // collections
    "Map",
    "List",
    "put",
    "putAll",
    "get",
    "getJSON",
    "containKey",
    "containsKey",
    "containValue",
    "keys",
    "values",
    "remove",
    "size",
    "isEmpty",
    "clear",
    "toString",
    "toMap",
    "add",
    "addAll",
    "contains",
    "indexOf",
    "lastIndexOf",
    "removeElement",
    "sort",
    "distinct",
    "sublist",
    "toList",
    "toJSONList",
    "isNull",
    "ifnull",
    // text
    "length",
    "startsWith",
    "endsWith",
    "equalsIgnoreCase",
    "subString",
    "replaceAll",
    "replaceFirst",
    "trim",
    "toUpperCase",
    "toLowerCase",
    "proper",
    "getPrefix",
    "getSuffix",
    "leftpad",
    "rightpad",
    "toNumber",
    "toLong",
    "toDecimal",
    "isNumber",
    "isDecimal",
    "matches",
    "getAlphaNumeric",
    "toDate",
    "toDateTime",
    "toTime",
    "toText",
    "encodeUrl",
    "urlEncode",
    "urlDecode",
    "base64Encode",
    "base64Decode",
    // numbers and values
    "round",
    "abs",
    "randomNumber",
    "getUUID",
    // dates
    "now",
    "today",
    "addDay",
    "subDay",
    "addWeek",
    "subWeek",
    "addMonth",
    "subMonth",
    "addYear",
    "subYear",
    "addHour",
    "subHour",
    "addMinutes",
    "subMinutes",
    "addSeconds",
    "subSeconds",
    "addBusinessDay",
    "subBusinessDay",
    "daysBetween",
    "monthsBetween",
    "hoursBetween",
    "getYear",
    "getMonth",
    "getDay",
    "getHour",
    "getMinutes",
    "getSeconds",
    "getDayOfWeek",
    "getWeekOfYear",
    "getDayOfYear",
    "toStartOfMonth",
    "eomonth",
    "unixEpoch",
    "toDateTimeString",
    // errors
    "message",
    "lineNo",
];

/// Rhai keywords and reserved words: a Deluge variable with one of these names gets a `_` suffix.
const RHAI_RESERVED: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "until",
    "loop",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "global",
    "private",
    "this",
    "is",
    "true",
    "false",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "type_of",
    "print",
    "debug",
    "eval",
    "var",
    "static",
    "shared",
    "with",
    "goto",
    "exit",
    "match",
    "case",
    "public",
    "protected",
    "new",
    "use",
    "module",
    "package",
    "super",
    "thread",
    "sync",
    "async",
    "await",
    "yield",
    "default",
    "void",
    "null",
    "nil",
    "spawn",
    "go",
    "object",
    "line__",
    "err__",
    "m__",
];

/// Names of map keys and variables whose literal text is a credential.
const CREDENTIAL_NAMES: &[&str] = &[
    "client_secret",
    "clientsecret",
    "refresh_token",
    "refreshtoken",
    "access_token",
    "accesstoken",
    "authtoken",
    "api_key",
    "apikey",
    "password",
    "secret",
];

/// A value the Rhai program reads from `--arg` / `--input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The Deluge name.
    pub name: String,
    /// The header's type (`Int`, `String`...), or `None` for a free variable of a bare body.
    pub ty: Option<String>,
    /// Where it is declared (the parameter) or first read (a free variable).
    pub span: Span,
}

/// A hard-coded credential left out of the translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// What it is (`client_secret`, `refresh_token`...).
    pub kind: String,
    /// Where the literal is.
    pub span: Span,
}

/// The Rhai program and what the caller needs to run or report it.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The Rhai source.
    pub rhai: String,
    /// For each Rhai line (index 0 is line 1), the Deluge line and column it came from.
    lines: Vec<Option<(usize, usize)>>,
    /// Header parameters and free variables, in order.
    pub inputs: Vec<Input>,
    /// Hard-coded credentials left out.
    pub credentials: Vec<Credential>,
    /// The hosts of absolute URL literals (`https://accounts.zoho.com/...`), for hints.
    pub hosts: Vec<String>,
    /// A `client_id` written in a literal (not a secret; kept, and shown in hints).
    pub client_id: Option<String>,
}

impl Translation {
    /// The Deluge line and column (1-based) that Rhai line `line` (1-based) came from, if any; a
    /// line with none (a declaration, a closing brace) takes the nearest line before it that has
    /// one.
    pub fn origin(&self, line: usize) -> Option<(usize, usize)> {
        let last = line.min(self.lines.len());
        self.lines[..last].iter().rev().find_map(|o| *o)
    }
}

/// Translates `program` (parsed from `src`) into Rhai; `file` names the source in the heading
/// comment. Refusals (an unsupported task, an undefined variable in a function) come back as
/// [`ParseError`]s with their span, reported like syntax errors.
pub fn translate(program: &Program, src: &str, file: &str) -> Result<Translation, Vec<ParseError>> {
    let mut t = Translator { src: src.to_string(), ..Translator::default() };
    t.check_program(program);
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    t.emit_program(program, file);
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    Ok(Translation {
        rhai: t.out,
        lines: t.lines,
        inputs: t.inputs,
        credentials: t.credentials,
        hosts: t.hosts.into_iter().collect(),
        client_id: t.client_id,
    })
}

#[derive(Default)]
struct Translator {
    src: String,
    out: String,
    lines: Vec<Option<(usize, usize)>>,
    depth: usize,
    /// Depth of `try` bodies being emitted (statements there record their line).
    in_try: usize,
    inputs: Vec<Input>,
    /// Variables the program assigns (declared at the top).
    assigned: BTreeSet<String>,
    credentials: Vec<Credential>,
    hosts: BTreeSet<String>,
    client_id: Option<String>,
    errors: Vec<ParseError>,
    /// The source offsets of line starts are not known here; the caller maps offsets.
    uses_try: bool,
}

/// Rhai's spelling of a Deluge variable name.
fn var_name(name: &str) -> String {
    if RHAI_RESERVED.contains(&name) { format!("{name}_") } else { name.to_string() }
}

/// The documented spelling of a built-in name written in any case, else the name as written.
fn builtin(name: &str) -> String {
    BUILTINS.iter().find(|b| b.eq_ignore_ascii_case(name)).map_or_else(|| name.to_string(), |b| b.to_string())
}

fn canonical<'a>(list: &[&'a str], name: &str) -> Option<&'a str> {
    list.iter().find(|b| b.eq_ignore_ascii_case(name)).copied()
}

/// A Rhai string literal for `s`.
fn rhai_str(s: &str) -> String {
    crate::ast::quote_str(s)
}

/// True for Deluge's date literal forms `dd-MMM-yyyy` and `dd-MMM-yyyy HH:mm[:ss]`.
pub fn is_date_literal(s: &str) -> bool {
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = parts.len() == 3
        && (1..=2).contains(&parts[0].len())
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1].len() == 3
        && parts[1].bytes().all(|b| b.is_ascii_alphabetic())
        && parts[2].len() == 4
        && parts[2].bytes().all(|b| b.is_ascii_digit());
    let time_ok = time.is_none_or(|t| {
        let p: Vec<&str> = t.split(':').collect();
        (2..=3).contains(&p.len())
            && p.iter().all(|x| (1..=2).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit()))
    });
    date_ok && time_ok
}

/// The credential kind a key or variable name stands for, if any.
fn credential_kind(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    CREDENTIAL_NAMES.iter().find(|c| lower == **c).map(|c| match *c {
        "clientsecret" => "client_secret".to_string(),
        "refreshtoken" => "refresh_token".to_string(),
        "accesstoken" | "authtoken" => "access_token".to_string(),
        "apikey" => "api_key".to_string(),
        other => other.to_string(),
    })
}

/// Credentials written into a URL's query (`?refresh_token=...&client_secret=...`): the URL with
/// their values left out, and the kinds found.
fn redact_query_credentials(url: &str) -> (String, Vec<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), Vec::new()) };
    let mut kinds = Vec::new();
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && credential_kind(k).is_some() => {
                kinds.push(credential_kind(k).unwrap_or_default());
                format!("{k}=")
            }
            _ => pair.to_string(),
        })
        .collect();
    (format!("{base}?{}", parts.join("&")), kinds)
}

fn url_host(s: &str) -> Option<String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Binding strength of a binary operator (higher binds tighter).
fn prec(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
    }
}

/// The dotted path of a chain of fields on a name: `zoho.crm` for `Field(Var(zoho), crm)`.
fn dotted(e: &Expr) -> Option<Vec<&Ident>> {
    match &e.kind {
        ExprKind::Var(_) => Some(Vec::new()),
        ExprKind::Field { object, name } => {
            let mut path = dotted(object)?;
            path.push(name);
            Some(path)
        }
        _ => None,
    }
}

fn root_var(e: &Expr) -> Option<&str> {
    let mut e = e;
    loop {
        match &e.kind {
            ExprKind::Field { object, .. } => e = object,
            ExprKind::Var(v) => return Some(v),
            _ => return None,
        }
    }
}

impl Translator {
    // ---- checks: inputs, assigned names, refusals ----

    fn check_program(&mut self, program: &Program) {
        let mut defined = HashSet::new();
        if let Some(h) = &program.header {
            for p in &h.params {
                defined.insert(p.name.name.clone());
                self.inputs.push(Input {
                    name: p.name.name.clone(),
                    ty: Some(p.ty.name.clone()),
                    span: p.span.clone(),
                });
            }
        }
        let with_header = program.header.is_some();
        for s in &program.body {
            self.check_stmt(s, &mut defined, with_header);
        }
    }

    fn check_block(&mut self, b: &Block, defined: &mut HashSet<String>, with_header: bool) {
        for s in &b.stmts {
            self.check_stmt(s, defined, with_header);
        }
    }

    fn check_stmt(&mut self, s: &Stmt, defined: &mut HashSet<String>, with_header: bool) {
        match &s.kind {
            StmtKind::Assign { target, op, value } => {
                self.check_expr(value, defined, with_header);
                if let ExprKind::Var(name) = &target.kind {
                    if *op != AssignOp::Assign {
                        self.check_expr(target, defined, with_header);
                    }
                    defined.insert(name.clone());
                    self.assigned.insert(name.clone());
                } else {
                    self.check_expr(target, defined, with_header);
                }
            }
            StmtKind::Expr(e) | StmtKind::Info(e) | StmtKind::Return(Some(e)) => {
                self.check_expr(e, defined, with_header)
            }
            StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            StmtKind::If { branches, otherwise } => {
                for (c, b) in branches {
                    self.check_expr(c, defined, with_header);
                    self.check_block(b, defined, with_header);
                }
                if let Some(b) = otherwise {
                    self.check_block(b, defined, with_header);
                }
            }
            StmtKind::ForEach { var, iter, body, .. } => {
                self.check_expr(iter, defined, with_header);
                defined.insert(var.name.clone());
                self.check_block(body, defined, with_header);
            }
            StmtKind::Try { body, var, handler } => {
                self.uses_try = true;
                self.check_block(body, defined, with_header);
                defined.insert(var.name.clone());
                self.check_block(handler, defined, with_header);
            }
            StmtKind::Task { name, .. } => self.errors.push(ParseError::new(
                name.span.clone(),
                format!(
                    "not supported: `{}` (linkrun runs invokeurl and the zoho.crm, zoho.desk and zoho.encryption tasks); call the service's API with invokeurl instead",
                    name.name
                ),
            )),
        }
    }

    fn check_expr(&mut self, e: &Expr, defined: &mut HashSet<String>, with_header: bool) {
        match &e.kind {
            ExprKind::Var(name) => {
                if defined.contains(name) {
                    return;
                }
                if name.eq_ignore_ascii_case("zoho") {
                    self.errors.push(ParseError::new(
                        e.span.clone(),
                        "`zoho` alone is not a value: use a task such as `zoho.crm.getRecordById(...)`",
                    ));
                    return;
                }
                if name.eq_ignore_ascii_case("thisapp") {
                    self.errors.push(ParseError::new(
                        e.span.clone(),
                        "not supported: `thisapp` (linkrun runs one function per file)",
                    ));
                    return;
                }
                if name.eq_ignore_ascii_case("now") || name.eq_ignore_ascii_case("today") {
                    return;
                }
                if with_header {
                    self.errors.push(ParseError::new(
                        e.span.clone(),
                        format!("variable `{name}` is not defined: assign it before this line or add it to the function's parameters"),
                    ));
                } else {
                    self.inputs.push(Input { name: name.clone(), ty: None, span: e.span.clone() });
                }
                defined.insert(name.clone());
            }
            ExprKind::Int(_) | ExprKind::Decimal(_) | ExprKind::Str { .. } | ExprKind::Bool(_) | ExprKind::Null => {}
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.check_expr(k, defined, with_header);
                    self.check_expr(v, defined, with_header);
                }
            }
            ExprKind::List(items) => {
                for i in items {
                    self.check_expr(i, defined, with_header);
                }
            }
            ExprKind::Field { object, name } => {
                if let Some(path) = dotted(object)
                    && root_var(object).is_some_and(|r| r.eq_ignore_ascii_case("zoho"))
                    && !defined.contains(root_var(object).unwrap_or_default())
                {
                    let full =
                        std::iter::once("zoho").chain(path.iter().map(|i| i.name.as_str())).chain([name.name.as_str()]);
                    let full: Vec<&str> = full.collect();
                    let ok = match full.as_slice() {
                        ["zoho", v] => {
                            canonical(ZOHO_VALUES, v).is_some()
                                || ["crm", "desk", "encryption"].iter().any(|n| n.eq_ignore_ascii_case(v))
                        }
                        _ => false,
                    };
                    if !ok {
                        self.errors
                            .push(ParseError::new(e.span.clone(), format!("not supported: `{}`", full.join("."))));
                    }
                    return;
                }
                self.check_expr(object, defined, with_header);
            }
            ExprKind::Call { args, .. } => {
                for a in args {
                    self.check_expr(a, defined, with_header);
                }
            }
            ExprKind::Method { receiver, name, args } => {
                let zoho_root =
                    root_var(receiver).is_some_and(|r| r.eq_ignore_ascii_case("zoho") && !defined.contains(r));
                // `zoho.currenttime.addHour(1)` is a method of a value, not a task.
                let zoho_value = dotted(receiver)
                    .is_some_and(|p| matches!(p.as_slice(), [v] if canonical(ZOHO_VALUES, &v.name).is_some()));
                if zoho_root && !zoho_value {
                    if let Some(message) = self.zoho_refusal(receiver, name) {
                        self.errors.push(ParseError::new(e.span.start..name.span.end, message));
                    }
                } else {
                    self.check_expr(receiver, defined, with_header);
                }
                for a in args {
                    self.check_expr(a, defined, with_header);
                }
            }
            ExprKind::Unary { expr, .. } => self.check_expr(expr, defined, with_header),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.check_expr(lhs, defined, with_header);
                self.check_expr(rhs, defined, with_header);
            }
            ExprKind::IfExpr { cond, then, otherwise } => {
                self.check_expr(cond, defined, with_header);
                self.check_expr(then, defined, with_header);
                self.check_expr(otherwise, defined, with_header);
            }
            ExprKind::InvokeUrl(params) => {
                for (k, v) in params {
                    // `type: POST` and `response-format: TEXT` name a value with a bare word.
                    let bare = matches!(&v.kind, ExprKind::Var(n) if !defined.contains(n));
                    if bare && (k.name == "type" || k.name == "response-format") {
                        continue;
                    }
                    self.check_expr(v, defined, with_header);
                }
            }
        }
    }

    /// Why `zoho.<path>.<name>(...)` cannot run, or `None` when linkrun has it.
    fn zoho_refusal(&self, receiver: &Expr, name: &Ident) -> Option<String> {
        let path = dotted(receiver).unwrap_or_default();
        let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        let full = format!("zoho.{}{}{}", names.join("."), if names.is_empty() { "" } else { "." }, name.name);
        let list = match names.as_slice() {
            [ns] if ns.eq_ignore_ascii_case("crm") => CRM_TASKS,
            [ns] if ns.eq_ignore_ascii_case("desk") => DESK_TASKS,
            [ns] if ns.eq_ignore_ascii_case("encryption") => ENCRYPTION_FUNCTIONS,
            _ => {
                return Some(format!(
                    "not supported: `{full}` (linkrun runs the zoho.crm, zoho.desk and zoho.encryption tasks); call the service's API with invokeurl instead"
                ));
            }
        };
        if canonical(list, &name.name).is_some() {
            return None;
        }
        Some(format!("not supported: `{full}` (the {} tasks linkrun runs are {})", names.join("."), list.join(", ")))
    }

    // ---- emitting ----

    fn line(&mut self, text: &str, origin: Option<usize>) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
        let at = origin.map(|o| crate::report::line_col(&self.src, o));
        self.lines.push(at);
    }

    fn emit_program(&mut self, program: &Program, file: &str) {
        self.line(&format!("// Ported from {file} by `linkrun port` (Deluge to Rhai)."), None);
        if !self.inputs.is_empty() {
            let list: Vec<String> = self.inputs.iter().map(|i| format!("--arg {}=...", i.name)).collect();
            self.line(&format!("// Inputs: {} (or the same keys in --input).", list.join(" ")), None);
        }
        let inputs = self.inputs.clone();
        for i in &inputs {
            let ty = i.ty.clone().unwrap_or_default();
            let read = format!("deluge_arg({}, {})", rhai_str(&i.name), rhai_str(&ty));
            let value = match ty.to_ascii_lowercase().as_str() {
                "date" => format!("toDate({read})"),
                "datetime" => format!("toDateTime({read})"),
                _ => read,
            };
            self.line(&format!("let {} = {value};", var_name(&i.name)), Some(i.span.start));
        }
        let input_names: HashSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        let declared: Vec<String> =
            self.assigned.iter().filter(|n| !input_names.contains(n.as_str())).map(|n| var_name(n)).collect();
        if !declared.is_empty() {
            self.line("// Declared here because Deluge's variables live for the whole function.", None);
        }
        for chunk in declared.chunks(8) {
            let text: Vec<String> = chunk.iter().map(|n| format!("let {n};")).collect();
            self.line(&text.join(" "), None);
        }
        if self.uses_try {
            self.line("let line__ = 0; // the Deluge line running inside `try`, for e.lineNo", None);
        }
        for s in &program.body {
            self.emit_stmt(s);
        }
    }

    fn emit_block_body(&mut self, b: &Block) {
        self.depth += 1;
        for s in &b.stmts {
            self.emit_stmt(s);
        }
        self.depth -= 1;
    }

    fn track(&mut self, s: &Stmt) -> String {
        if self.in_try > 0 {
            format!("line__ = {}; ", crate::report::line_col(&self.src, s.span.start).0)
        } else {
            String::new()
        }
    }

    fn emit_stmt(&mut self, s: &Stmt) {
        let at = Some(s.span.start);
        let track = self.track(s);
        match &s.kind {
            StmtKind::Assign { target, op, value } => {
                let op = match op {
                    AssignOp::Assign => "=",
                    AssignOp::AddAssign => "+=",
                    AssignOp::SubAssign => "-=",
                };
                if let (ExprKind::Var(name), ExprKind::Str { value: v, .. }) = (&target.kind, &value.kind)
                    && name.eq_ignore_ascii_case("client_id")
                {
                    self.client_id.get_or_insert_with(|| v.clone());
                }
                let credential = match &target.kind {
                    ExprKind::Var(name) => credential_kind(name),
                    ExprKind::Field { name, .. } => credential_kind(&name.name),
                    _ => None,
                };
                // `x = x + e` is `x += e` (the same in Rhai, and it appends text in place).
                let (op, value) = match (&target.kind, &value.kind, op) {
                    (
                        ExprKind::Var(x),
                        ExprKind::Binary { op: bop @ (BinaryOp::Add | BinaryOp::Sub), lhs, rhs },
                        "=",
                    ) if matches!(&lhs.kind, ExprKind::Var(y) if y == x) => {
                        (if *bop == BinaryOp::Add { "+=" } else { "-=" }, rhs.as_ref())
                    }
                    _ => (op, value),
                };
                let value = match (&value.kind, credential) {
                    (ExprKind::Str { value: v, .. }, Some(kind)) if !v.is_empty() => {
                        self.credentials.push(Credential { kind: kind.clone(), span: value.span.clone() });
                        format!("\"\" /* hard-coded {kind} left out: keep it in a connection */")
                    }
                    _ => self.expr(value),
                };
                let text = format!("{track}{} {op} {value};", self.expr(target));
                self.line(&text, at);
            }
            StmtKind::Expr(e) => {
                let text = match self.put_as_index(e) {
                    Some(assign) => format!("{track}{assign};"),
                    None => format!("{track}{};", self.expr(e)),
                };
                self.line(&text, at);
            }
            StmtKind::Info(e) => {
                let text = format!("{track}info({});", self.expr(e));
                self.line(&text, at);
            }
            StmtKind::Return(None) => self.line(&format!("{track}return;"), at),
            StmtKind::Return(Some(e)) => {
                let text = format!("{track}return {};", self.expr(e));
                self.line(&text, at);
            }
            StmtKind::Break => self.line(&format!("{track}break;"), at),
            StmtKind::Continue => self.line(&format!("{track}continue;"), at),
            StmtKind::If { branches, otherwise } => {
                for (i, (cond, block)) in branches.iter().enumerate() {
                    let c = self.expr(cond);
                    let text = if i == 0 { format!("{track}if {c} {{") } else { format!("}} else if {c} {{") };
                    self.line(&text, Some(cond.span.start));
                    self.emit_block_body(block);
                }
                if let Some(b) = otherwise {
                    self.line("} else {", Some(b.span.start));
                    self.emit_block_body(b);
                }
                self.line("}", None);
            }
            StmtKind::ForEach { index, var, iter, body } => {
                let it = self.expr(iter);
                let v = var_name(&var.name);
                let text = if *index {
                    format!("{track}for {v} in 0..size({it}) {{")
                } else {
                    format!("{track}for {v} in {it} {{")
                };
                self.line(&text, at);
                self.emit_block_body(body);
                self.line("}", None);
            }
            StmtKind::Try { body, var, handler } => {
                self.line(&format!("{track}try {{"), at);
                self.in_try += 1;
                self.emit_block_body(body);
                self.in_try -= 1;
                self.line("} catch (err__) {", Some(handler.span.start));
                self.depth += 1;
                self.line(
                    &format!("let {} = deluge_error(err__, line__);", var_name(&var.name)),
                    Some(handler.span.start),
                );
                self.depth -= 1;
                self.emit_block_body(handler);
                self.line("}", None);
            }
            StmtKind::Task { .. } => {}
        }
    }

    /// `m.put(k, v);` on a variable as the index assignment `m[k] = v` (`m[deluge_key(k)]` when
    /// `k` is not literal text): the same effect, and Rhai checks the size of the new value only,
    /// where a method call rescans the whole map after each `put`.
    fn put_as_index(&mut self, e: &Expr) -> Option<String> {
        let ExprKind::Method { receiver, name, args } = &e.kind else { return None };
        let ExprKind::Var(m) = &receiver.kind else { return None };
        let [key, value] = args.as_slice() else { return None };
        if !name.name.eq_ignore_ascii_case("put") || m.eq_ignore_ascii_case("zoho") {
            return None;
        }
        if let (ExprKind::Str { value: k, .. }, ExprKind::Str { value: v, .. }) = (&key.kind, &value.kind)
            && credential_kind(k).is_some()
            && !v.is_empty()
        {
            return None;
        }
        let key = match &key.kind {
            ExprKind::Str { quote: '"', .. } => self.expr(key),
            _ => format!("deluge_key({})", self.expr(key)),
        };
        let value = self.expr(value);
        Some(format!("{}[{key}] = {value}", var_name(m)))
    }

    fn sub(&mut self, e: &Expr, parent: u8, right: bool) -> String {
        let text = self.expr(e);
        match &e.kind {
            ExprKind::Binary { op, .. } => {
                let p = prec(*op);
                if p < parent || (p == parent && (right || p == 3)) { format!("({text})") } else { text }
            }
            ExprKind::IfExpr { .. } => format!("({text})"),
            _ => text,
        }
    }

    fn receiver(&mut self, e: &Expr) -> String {
        let text = self.expr(e);
        match &e.kind {
            ExprKind::Binary { .. } | ExprKind::Unary { .. } | ExprKind::IfExpr { .. } => format!("({text})"),
            ExprKind::Int(i) if *i < 0 => format!("({text})"),
            _ => text,
        }
    }

    fn args(&mut self, args: &[Expr]) -> String {
        args.iter().map(|a| self.expr(a)).collect::<Vec<_>>().join(", ")
    }

    fn string_literal(&mut self, value: &str, quote: char, span: &Span) -> String {
        if quote == '\'' && is_date_literal(value) {
            return format!("deluge_date({})", rhai_str(value));
        }
        if let Some(host) = url_host(value) {
            self.hosts.insert(host);
        }
        if let Some((_, q)) = value.split_once('?') {
            for pair in q.split('&') {
                if let Some(("client_id", id)) = pair.split_once('=')
                    && !id.is_empty()
                {
                    self.client_id.get_or_insert_with(|| id.to_string());
                }
            }
        }
        let (clean, kinds) = redact_query_credentials(value);
        for kind in kinds {
            self.credentials.push(Credential { kind, span: span.clone() });
        }
        if clean != value {
            return format!("{} /* hard-coded credentials left out of the URL */", rhai_str(&clean));
        }
        rhai_str(value)
    }

    fn expr(&mut self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(i) => i.to_string(),
            ExprKind::Decimal(d) => d.clone(),
            ExprKind::Str { value, quote } => self.string_literal(value, *quote, &e.span),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Null => "()".to_string(),
            ExprKind::Var(v) => {
                if !self.assigned.contains(v) && !self.inputs.iter().any(|i| &i.name == v) {
                    if v.eq_ignore_ascii_case("now") {
                        return "now()".to_string();
                    }
                    if v.eq_ignore_ascii_case("today") {
                        return "today()".to_string();
                    }
                }
                var_name(v)
            }
            ExprKind::Map(entries) => self.map(entries),
            ExprKind::List(items) => format!("[{}]", self.args(items)),
            ExprKind::Field { object, name } => {
                let zoho = matches!(&object.kind, ExprKind::Var(v) if v.eq_ignore_ascii_case("zoho") && !self.assigned.contains(v));
                if zoho {
                    let field = canonical(ZOHO_VALUES, &name.name)
                        .map(str::to_string)
                        .unwrap_or_else(|| name.name.to_ascii_lowercase());
                    return format!("zoho.{field}");
                }
                let obj = self.receiver(object);
                format!("{obj}.{}", builtin(&name.name))
            }
            ExprKind::Call { func, args } => {
                let args = self.args(args);
                format!("{}({args})", builtin(&func.name))
            }
            ExprKind::Method { receiver, name, args } => {
                let zoho_ns = dotted(receiver).filter(|p| p.len() == 1).and_then(|p| {
                    let root = root_var(receiver)?;
                    (root.eq_ignore_ascii_case("zoho") && !self.assigned.contains(root))
                        .then(|| p[0].name.to_ascii_lowercase())
                });
                let method = match zoho_ns.as_deref() {
                    Some("crm") => canonical(CRM_TASKS, &name.name).map(str::to_string),
                    Some("desk") => canonical(DESK_TASKS, &name.name).map(str::to_string),
                    Some("encryption") => canonical(ENCRYPTION_FUNCTIONS, &name.name).map(str::to_string),
                    _ => None,
                }
                .unwrap_or_else(|| builtin(&name.name));
                if let Some(ns) = zoho_ns {
                    let args = self.args(args);
                    return format!("zoho.{ns}.{method}({args})");
                }
                let recv = self.receiver(receiver);
                if let [key, v] = args.as_slice()
                    && method == "put"
                    && let (ExprKind::Str { value: k, .. }, ExprKind::Str { value, .. }) = (&key.kind, &v.kind)
                    && let Some(kind) = credential_kind(k)
                    && !value.is_empty()
                {
                    self.credentials.push(Credential { kind: kind.clone(), span: args[1].span.clone() });
                    let key = self.expr(&args[0]);
                    return format!(
                        "{recv}.put({key}, \"\" /* hard-coded {kind} left out: keep it in a connection */)"
                    );
                }
                // Deluge's text is a value, Rhai's `trim` and `remove` change a variable in place.
                let place = matches!(&receiver.kind, ExprKind::Var(_) | ExprKind::Field { .. });
                if place && method == "trim" && args.is_empty() {
                    return format!("deluge_trim({recv})");
                }
                let one_arg = args.len() == 1;
                let args = self.args(args);
                if place && method == "remove" && one_arg {
                    return format!("{recv}.deluge_remove({args})");
                }
                format!("{recv}.{method}({args})")
            }
            ExprKind::Unary { op, expr } => {
                let inner = self.receiver(expr);
                match op {
                    UnaryOp::Not => format!("!{inner}"),
                    UnaryOp::Neg => format!("-{inner}"),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let p = prec(*op);
                let l = self.sub(lhs, p, false);
                let r = self.sub(rhs, p, true);
                format!("{l} {} {r}", op.symbol())
            }
            ExprKind::IfExpr { cond, then, otherwise } => {
                let c = self.expr(cond);
                let t = self.expr(then);
                let o = self.expr(otherwise);
                format!("if {c} {{ {t} }} else {{ {o} }}")
            }
            ExprKind::InvokeUrl(params) => {
                let items: Vec<String> = params
                    .iter()
                    .map(|(k, v)| {
                        let key = if k.name.contains('-') { rhai_str(&k.name) } else { k.name.clone() };
                        // `type: POST` names the method with a bare word.
                        let value = match (&v.kind, k.name.as_str()) {
                            (ExprKind::Var(m), "type") if !self.assigned.contains(m) => {
                                rhai_str(&m.to_ascii_uppercase())
                            }
                            (ExprKind::Var(m), "response-format") if !self.assigned.contains(m) => rhai_str(m),
                            _ => self.expr(v),
                        };
                        format!("{key}: {value}")
                    })
                    .collect();
                format!("invoke_url(#{{ {} }})", items.join(", "))
            }
        }
    }

    fn map(&mut self, entries: &[(Expr, Expr)]) -> String {
        let literal_keys = entries.iter().all(|(k, _)| matches!(&k.kind, ExprKind::Str { quote: '"', .. }));
        if literal_keys {
            let items: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let ExprKind::Str { value: key, .. } = &k.kind else { unreachable!("checked above") };
                    if let ExprKind::Str { value, .. } = &v.kind
                        && key.eq_ignore_ascii_case("client_id")
                    {
                        self.client_id.get_or_insert_with(|| value.clone());
                    }
                    let value = match (credential_kind(key), &v.kind) {
                        (Some(kind), ExprKind::Str { value, .. }) if !value.is_empty() => {
                            self.credentials.push(Credential { kind: kind.clone(), span: v.span.clone() });
                            format!("\"\" /* hard-coded {kind} left out: keep it in a connection */")
                        }
                        _ => self.expr(v),
                    };
                    format!("{}: {value}", rhai_str(key))
                })
                .collect();
            return format!("#{{{}}}", items.join(", "));
        }
        let puts: Vec<String> =
            entries.iter().map(|(k, v)| format!("m__.put({}, {});", self.expr(k), self.expr(v))).collect();
        format!("{{ let m__ = #{{}}; {} m__ }}", puts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str) -> Result<Translation, Vec<ParseError>> {
        translate(&crate::parse(src).expect("parses"), src, "t.dg")
    }

    fn rhai(src: &str) -> String {
        tr(src).expect("translates").rhai
    }

    fn refusal(src: &str) -> String {
        tr(src).expect_err("refused")[0].message.clone()
    }

    #[test]
    fn variables_are_declared_once_at_the_top_and_keywords_renamed() {
        let out = rhai("if (true) { module = \"Leads\"; }\ninfo module;");
        assert!(out.contains("let module_;"), "{out}");
        assert!(out.contains("module_ = \"Leads\";"), "{out}");
        assert!(out.contains("info(module_);"), "{out}");
    }

    #[test]
    fn free_variables_of_a_body_are_inputs_and_undefined_ones_in_a_function_are_refused() {
        let t = tr("info email + x;\nx = 1;").unwrap();
        let names: Vec<&str> = t.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["email", "x"]);
        assert!(t.rhai.contains("let email = deluge_arg(\"email\", \"\");"), "{}", t.rhai);
        let m = refusal("void f(String a) { info a + b; }");
        assert!(m.contains("variable `b` is not defined"), "{m}");
    }

    #[test]
    fn builtin_names_take_their_documented_spelling() {
        let out = rhai("s = \"a\";\ninfo s.TOUPPERCASE() + s.touppercase() + ifNull(s, \"\");");
        assert!(out.contains("s.toUpperCase() + s.toUpperCase() + ifnull(s, \"\")"), "{out}");
    }

    #[test]
    fn unsupported_tasks_are_refused_with_their_name() {
        assert!(refusal("r = zoho.writer.mergeAndDownload(1, \"pdf\");").contains("`zoho.writer.mergeAndDownload`"));
        assert!(refusal("r = zoho.crm.sendMail(1);").contains("`zoho.crm.sendMail`"));
        assert!(refusal("sendmail [ to: \"a@b.c\" subject: \"x\" message: \"y\" ]").contains("`sendmail`"));
        let out = rhai("r = zoho.CRM.createrecord(\"Leads\", {\"Last_Name\": \"X\"});");
        assert!(out.contains("zoho.crm.createRecord(\"Leads\", #{\"Last_Name\": \"X\"})"), "{out}");
        assert!(refusal("h = zoho.encryption.md5(\"x\");").contains("`zoho.encryption.md5`"));
        // A method of a `zoho` value is not a task.
        let out = rhai("later = zoho.currenttime.addHour(1);\nd = zoho.currentDate.addDay(1);");
        assert!(out.contains("later = zoho.currenttime.addHour(1);"), "{out}");
        assert!(out.contains("d = zoho.currentdate.addDay(1);"), "{out}");
        assert!(refusal("x = zoho.adminuser.addHour(1);").contains("`zoho.adminuser.addHour`"));
    }

    #[test]
    fn trim_and_remove_on_a_variable_leave_text_as_it_was() {
        let out = rhai("s = \" a \";\nt = s.trim();\nu = s.remove(\"a\");\nv = s.trim().remove(\"a\");");
        assert!(out.contains("t = deluge_trim(s);"), "{out}");
        assert!(out.contains("u = s.deluge_remove(\"a\");"), "{out}");
        assert!(out.contains("v = deluge_trim(s).remove(\"a\");"), "{out}");
    }

    #[test]
    fn invokeurl_dates_and_conditions() {
        let out = rhai(
            "r = invokeurl [ url: \"/x\" type: POST content-type: \"application/json\" ];\nd = '01-Jan-2024';\nt = 'text';\nif (a = 1 && b) { info if(a > 1, \"y\", \"n\"); }",
        );
        assert!(
            out.contains("invoke_url(#{ url: \"/x\", type: \"POST\", \"content-type\": \"application/json\" })"),
            "{out}"
        );
        assert!(out.contains("d = deluge_date(\"01-Jan-2024\");"), "{out}");
        assert!(!out.contains("deluge_arg(\"POST\""), "a method word is not an input: {out}");
        assert!(out.contains("t = \"text\";"), "{out}");
        assert!(out.contains("if a == 1 && b {"), "{out}");
        assert!(out.contains("info(if a > 1 { \"y\" } else { \"n\" });"), "{out}");
    }

    #[test]
    fn precedence_is_kept_with_parentheses() {
        let out = rhai("x = (1 + 2) * 3 - (4 - 5);\ny = !(x > 1);");
        assert!(out.contains("x = (1 + 2) * 3 - (4 - 5);"), "{out}");
        assert!(out.contains("y = !(x > 1);"), "{out}");
    }

    #[test]
    fn hard_coded_credentials_are_left_out() {
        let t = tr("m = {\"client_secret\": \"abc123\", \"client_id\": \"1000.X\"};\nrefresh_token = \"1000.rt\";\nu = \"https://accounts.zoho.com/oauth/v2/token?refresh_token=1000.zz&grant_type=refresh_token\";",)
        .unwrap();
        for secret in ["abc123", "1000.rt", "1000.zz"] {
            assert!(!t.rhai.contains(secret), "{secret} in {}", t.rhai);
        }
        assert!(t.rhai.contains("1000.X"), "a client id is not a secret: {}", t.rhai);
        let kinds: Vec<&str> = t.credentials.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["client_secret", "refresh_token", "refresh_token"]);
        assert!(t.hosts.contains(&"accounts.zoho.com".to_string()));
    }

    #[test]
    fn try_records_the_line_of_each_statement() {
        let t = tr("try {\n  x = 1;\n} catch (e) {\n  info e.message + e.LINENO;\n}").unwrap();
        assert!(t.rhai.contains("line__ = 2; x = 1;"), "{}", t.rhai);
        assert!(t.rhai.contains("let e = deluge_error(err__, line__);"), "{}", t.rhai);
        assert!(t.rhai.contains("info(e.message + e.lineNo);"), "{}", t.rhai);
        // The Rhai line of `x = 1` maps back to its Deluge line and column.
        let line = t.rhai.lines().position(|l| l.contains("x = 1")).unwrap() + 1;
        assert_eq!(t.origin(line), Some((2, 3)));
    }

    #[test]
    fn date_literals() {
        assert!(is_date_literal("01-Jan-2024"));
        assert!(is_date_literal("1-Jan-2024 10:30:00"));
        assert!(!is_date_literal("Partner"));
        assert!(!is_date_literal("2024-01-01"));
    }

    #[test]
    fn put_on_a_variable_is_an_index_assignment_and_self_sums_are_op_assignments() {
        let out =
            rhai("m = Map();\nk = 5;\nm.put(\"a\", 1);\nm.put(k, 2);\nn = 0;\nn = n + 1;\nn = n - 2;\nn = 3 - n;");
        assert!(out.contains("m[\"a\"] = 1;"), "{out}");
        assert!(out.contains("m[deluge_key(k)] = 2;"), "{out}");
        assert!(out.contains("n += 1;") && out.contains("n -= 2;") && out.contains("n = 3 - n;"), "{out}");
    }
}
