//! The Deluge integration tasks of Zoho CRM and Zoho Desk as methods of `zoho.crm` and
//! `zoho.desk` (docs/api-facts.md §6.3): `zoho.crm.createRecord("Leads", m)` reads in Rhai exactly
//! as in Deluge, and the Deluge translator emits the same calls.
//!
//! Every task is a request through the very path of `invoke_url` ([`super::invoke::send_one`]):
//! the connection's credentials, token refresh, host rules, data-center-portable URLs, limits
//! and `--verbose` traces all apply, and the script never sees a secret. CRM tasks call
//! `/crm/v7/...` relative to the connection's base URL (writes in the `data` envelope); Desk
//! tasks call `/{module}` relative to the Desk base URL (`.../api/v1`) with the `orgId` header.
//!
//! Arguments follow Zoho's documented order; `connection` (text) is always last and optional.
//! Without it, the task uses the default connection of service `zoho_crm` or `zoho_desk`
//! (`linkrun connection default SERVICE LINK`); with none set, the task raises the catchable
//! `connection` error that `invoke_url` raises for an unknown connection (exit 4 uncaught).
//! Results are Deluge's: a write gives the record's details (`id`, times, users) or the API's
//! error item (`code`, `message`, `details`, `status`), returned rather than thrown; reads give
//! the record, or a list (empty for 204). Options maps (`{"trigger": ["workflow"]}`) go into the
//! request body; without `trigger`, `[]` is sent, because Deluge tasks run no workflows unless
//! asked (docs/api-facts.md §2.4b).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position};
use serde_json::{Map as JsonMap, Value, json};

use super::invoke::{send_one, throw, too_large};
use super::zoho::{ZohoCrm, ZohoDesk};
use super::{RunState, Stop, builtins};
use crate::invoke::{Failure, InvokeError, Parameters, ScriptRequest, connection_name};
use crate::link_name::LinkName;

/// The service whose default connection `zoho.crm.*` uses.
pub const CRM_SERVICE: &str = "zoho_crm";
/// The service whose default connection `zoho.desk.*` uses.
pub const DESK_SERVICE: &str = "zoho_desk";
/// The CRM API version the tasks call.
pub const CRM_API: &str = "/crm/v7";
/// The most fields a CRM list request may name (docs/api-facts.md §2.5).
const MAX_FIELDS: usize = 50;

/// Fields asked for when a CRM list has no `fields` and the org's field list cannot be read
/// (`/settings/fields`): the common fields of the standard modules (docs/api-facts.md §2.7).
pub const FALLBACK_FIELDS: &str = "Owner,First_Name,Last_Name,Full_Name,Email,Phone,Mobile,Company,Account_Name,Contact_Name,Deal_Name,Stage,Amount,Closing_Date,Lead_Status,Lead_Source,Subject,Status,Description,Note_Title,Note_Content,Parent_Id,Created_Time,Modified_Time,Created_By,Modified_By";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    Crm,
    Desk,
}

impl Product {
    fn service(self) -> &'static str {
        match self {
            Product::Crm => CRM_SERVICE,
            Product::Desk => DESK_SERVICE,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Product::Crm => "zoho.crm",
            Product::Desk => "zoho.desk",
        }
    }
}

/// One task: its name, its arguments as documented (required, then optional ones before
/// `connection`), and what it does with them.
struct Task {
    product: Product,
    name: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    run: fn(&Call<'_>, &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>>,
}

impl Task {
    fn full_name(&self) -> String {
        format!("{}.{}", self.product.prefix(), self.name)
    }

    fn signature(&self) -> String {
        let mut s = format!("{}({}", self.full_name(), self.required.join(", "));
        for o in self.optional {
            s.push_str(&format!("[, {o}]"));
        }
        s.push_str("[, connection])");
        s
    }
}

const TASKS: &[Task] = &[
    Task {
        product: Product::Crm,
        name: "createRecord",
        required: &["module", "map"],
        optional: &["options"],
        run: crm_create,
    },
    Task {
        product: Product::Crm,
        name: "getRecordById",
        required: &["module", "id"],
        optional: &[],
        run: crm_get_by_id,
    },
    Task {
        product: Product::Crm,
        name: "getRecords",
        required: &["module"],
        optional: &["page", "per_page", "query"],
        run: crm_get_records,
    },
    Task {
        product: Product::Crm,
        name: "searchRecords",
        required: &["module", "criteria"],
        optional: &["page", "per_page", "query"],
        run: crm_search,
    },
    Task {
        product: Product::Crm,
        name: "updateRecord",
        required: &["module", "id", "map"],
        optional: &["options"],
        run: crm_update,
    },
    Task {
        product: Product::Crm,
        name: "upsert",
        required: &["module", "map"],
        optional: &["options"],
        run: crm_upsert,
    },
    Task {
        product: Product::Crm,
        name: "getRelatedRecords",
        required: &["relation", "parent_module", "id"],
        optional: &["page", "per_page"],
        run: crm_related,
    },
    Task {
        product: Product::Crm,
        name: "bulkUpdate",
        required: &["module", "list"],
        optional: &["options"],
        run: crm_bulk_update,
    },
    Task {
        product: Product::Crm,
        name: "getOrgVariable",
        required: &["api_name"],
        optional: &[],
        run: crm_org_variable,
    },
    Task {
        product: Product::Desk,
        name: "create",
        required: &["orgId", "module", "map"],
        optional: &[],
        run: desk_create,
    },
    Task {
        product: Product::Desk,
        name: "getRecordById",
        required: &["orgId", "module", "id"],
        optional: &[],
        run: desk_get_by_id,
    },
    Task {
        product: Product::Desk,
        name: "getRecords",
        required: &["orgId", "module"],
        optional: &["from", "limit", "query"],
        run: desk_get_records,
    },
    Task {
        product: Product::Desk,
        name: "searchRecords",
        required: &["orgId", "module", "criteria"],
        optional: &["from", "limit"],
        run: desk_search,
    },
    Task {
        product: Product::Desk,
        name: "update",
        required: &["orgId", "module", "id", "map"],
        optional: &[],
        run: desk_update,
    },
];

/// What the tasks keep during a run: the field list of each (connection, module) a CRM list
/// asked for without `fields`.
#[derive(Default)]
pub(crate) struct TaskState {
    fields: RefCell<HashMap<(String, String), String>>,
}

/// One call of a task.
struct Call<'a> {
    state: &'a RunState,
    tasks: &'a TaskState,
    task: &'a Task,
    link: LinkName,
    pos: Position,
}

/// Extra request headers (name, value).
type Headers = Vec<(String, String)>;

type Native = Rc<dyn Fn(&NativeCallContext, Vec<Dynamic>) -> Result<Dynamic, Box<EvalAltResult>>>;

macro_rules! register_arity {
    ($engine:expr, $ty:ty, $name:expr, $f:expr, $($a:ident),*) => {{
        let f: Native = $f.clone();
        $engine.register_fn(
            $name,
            move |ctx: NativeCallContext, _: &mut $ty, $($a: Dynamic),*| -> Result<Dynamic, Box<EvalAltResult>> {
                f(&ctx, vec![$($a),*])
            },
        );
    }};
}

/// Registers every task as a method of `zoho.crm` / `zoho.desk`, once per arity from the
/// required arguments to all of them plus `connection`.
/// The tasks are registered once per engine and reach the run through `slot`, which holds the
/// state of the run in progress (a serve worker's engine runs one script after another).
pub(crate) fn register(engine: &mut Engine, slot: &super::RunSlot) {
    for task in TASKS {
        let slot = slot.clone();
        let f: Native = Rc::new(move |ctx: &NativeCallContext, args: Vec<Dynamic>| {
            let Some(st) = slot.borrow().clone() else {
                return Err(format!("`{}` was called outside a run", task.full_name()).into());
            };
            run_task(&st, task, args, ctx.call_position())
        });
        let most = task.required.len() + task.optional.len() + 1;
        for n in task.required.len()..=most {
            match task.product {
                Product::Crm => register_n::<ZohoCrm>(engine, task.name, &f, n),
                Product::Desk => register_n::<ZohoDesk>(engine, task.name, &f, n),
            }
        }
    }
}

fn register_n<T: Clone + 'static>(engine: &mut Engine, name: &'static str, f: &Native, n: usize) {
    match n {
        1 => register_arity!(engine, T, name, f, a),
        2 => register_arity!(engine, T, name, f, a, b),
        3 => register_arity!(engine, T, name, f, a, b, c),
        4 => register_arity!(engine, T, name, f, a, b, c, d),
        5 => register_arity!(engine, T, name, f, a, b, c, d, e),
        6 => register_arity!(engine, T, name, f, a, b, c, d, e, g),
        _ => register_arity!(engine, T, name, f, a, b, c, d, e, g, h),
    }
}

fn bad(message: String) -> InvokeError {
    InvokeError::bad_request(message, None)
}

fn run_task(
    state: &RunState,
    task: &Task,
    mut args: Vec<Dynamic>,
    pos: Position,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let required = task.required.len();
    let link_text = if args.len() > required && args.last().is_some_and(Dynamic::is_string) {
        args.pop().map(|d| d.to_string())
    } else {
        // A connection given as `()` (a Deluge null) is no connection.
        if args.len() > required + task.optional.len() && args.last().is_some_and(Dynamic::is_unit) {
            args.pop();
        }
        None
    };
    if args.len() > required + task.optional.len() {
        let last = args.last().map(shown).unwrap_or_default();
        return Err(throw(
            &bad(format!(
                "`{}` got too many arguments: its last argument, the connection, must be text, not {last}",
                task.signature()
            )),
            pos,
        ));
    }
    args.resize(required + task.optional.len(), Dynamic::UNIT);
    let link = match link_text.filter(|t| !t.is_empty()) {
        Some(t) => connection_name(&t).map_err(|e| throw(&e, pos))?,
        None => match state.invoker.default_connection(task.product.service()) {
            Ok(Some(l)) => l,
            Ok(None) => {
                let service = task.product.service();
                let e = InvokeError::new(
                    crate::http::ErrorKind::Connection,
                    format!(
                        "`{}` has no connection: service `{service}` has no default connection; run `linkrun connection default {service} LINK`, or pass the link name as the last argument",
                        task.full_name()
                    ),
                    None,
                );
                return Err(throw(&e, pos));
            }
            Err(Failure::Fatal(e)) => return Err(state.halt(Stop::Fatal(e), pos)),
            Err(Failure::Invoke(e)) => return Err(throw(&e, pos)),
        },
    };
    let call = Call { state, tasks: &state.tasks, task, link, pos };
    let out = (task.run)(&call, &args)?;
    if let Err(what) = super::check_data_size(&out) {
        return Err(throw(
            &too_large(format!("the answer to {} has {what}: ask for less (paging, fewer fields)", task.full_name())),
            pos,
        ));
    }
    Ok(out)
}

impl Call<'_> {
    fn fail(&self, message: String) -> Box<EvalAltResult> {
        throw(&InvokeError::bad_request(message, Some(&self.link)), self.pos)
    }

    /// The `i`-th argument (0-based) named by the task's signature, for messages.
    fn arg_name(&self, i: usize) -> &'static str {
        self.task.required.iter().chain(self.task.optional).nth(i).copied().unwrap_or("argument")
    }

    /// An API name used in a path (a module, a related list, a variable): letters, digits and
    /// `_`, so that nothing can change the path.
    fn name_arg(&self, args: &[Dynamic], i: usize) -> Result<String, Box<EvalAltResult>> {
        let v = &args[i];
        let text = v.read_lock::<rhai::ImmutableString>().map(|s| s.trim().to_string());
        match text {
            Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => Ok(t),
            Some(t) => Err(self.fail(format!(
                "`{}` of {} must be an API name (letters, digits and _), not `{t}`",
                self.arg_name(i),
                self.task.full_name()
            ))),
            None => Err(self.fail(format!(
                "`{}` of {} must be text, not {}",
                self.arg_name(i),
                self.task.full_name(),
                v.type_name()
            ))),
        }
    }

    /// A record id (or an org id): a number, or text of letters, digits, `_` and `-` (CRM ids are
    /// 19 digits, beyond what some clients keep exact, so text is usual).
    fn id_arg(&self, args: &[Dynamic], i: usize) -> Result<String, Box<EvalAltResult>> {
        let v = &args[i];
        let text = if let Ok(n) = v.as_int() {
            Some(n.to_string())
        } else {
            v.read_lock::<rhai::ImmutableString>().map(|s| s.trim().to_string())
        };
        match text {
            Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => Ok(t),
            _ => Err(self.fail(format!(
                "`{}` of {} must be an id (a number or its text), not {}",
                self.arg_name(i),
                self.task.full_name(),
                shown(v)
            ))),
        }
    }

    /// A map argument as JSON; unit gives an empty map when `optional`.
    fn map_arg(
        &self,
        args: &[Dynamic],
        i: usize,
        optional: bool,
    ) -> Result<JsonMap<String, Value>, Box<EvalAltResult>> {
        let v = &args[i];
        if optional && v.is_unit() {
            return Ok(JsonMap::new());
        }
        if v.is_map()
            && let Ok(Value::Object(m)) = builtins::to_json_value(v)
        {
            return Ok(m);
        }
        Err(self.fail(format!("`{}` of {} must be a map, not {}", self.arg_name(i), self.task.full_name(), shown(v))))
    }

    /// An optional whole number (a page, a size, an index); unit is none.
    fn int_arg(&self, args: &[Dynamic], i: usize) -> Result<Option<i64>, Box<EvalAltResult>> {
        let v = &args[i];
        if v.is_unit() {
            return Ok(None);
        }
        if let Ok(n) = v.as_int() {
            return Ok(Some(n));
        }
        if let Some(n) = v.read_lock::<rhai::ImmutableString>().and_then(|s| s.trim().parse::<i64>().ok()) {
            return Ok(Some(n));
        }
        Err(self.fail(format!(
            "`{}` of {} must be a whole number, not {}",
            self.arg_name(i),
            self.task.full_name(),
            shown(v)
        )))
    }

    /// Sends one request on the call's connection: `path` relative to its base URL, `query` in
    /// the query string, `body` as JSON. Gives the status and the body as JSON (`None` when it is
    /// empty or not JSON, with the text).
    fn send(
        &self,
        method: &str,
        path: String,
        query: JsonMap<String, Value>,
        body: Option<Value>,
        headers: Headers,
    ) -> Result<Answer, Box<EvalAltResult>> {
        let req = ScriptRequest {
            url: path,
            method: Some(method.to_string()),
            parameters: (!query.is_empty()).then_some(Parameters::Map(query)),
            body: body.map(|b| match b {
                Value::Array(a) => Parameters::List(a),
                Value::Object(m) => Parameters::Map(m),
                other => Parameters::Text(other.to_string()),
            }),
            headers,
            connection: Some(self.link.clone()),
            ..Default::default()
        };
        let resp = send_one(self.state, &req, self.pos)?;
        let json = serde_json::from_slice::<Value>(&resp.body).ok();
        let text = if json.is_some() { String::new() } else { String::from_utf8_lossy(&resp.body).into_owned() };
        Ok(Answer { status: resp.status, json, text })
    }

    /// The `fields` a CRM list asks for when the script gave none: the org's fields of the module
    /// (`GET /settings/fields`, the first 50, read once per run), else [`FALLBACK_FIELDS`].
    fn default_fields(&self, module: &str) -> Result<String, Box<EvalAltResult>> {
        let key = (self.link.to_string(), module.to_string());
        if let Some(f) = self.tasks.fields.borrow().get(&key) {
            return Ok(f.clone());
        }
        let mut q = JsonMap::new();
        q.insert("module".into(), json!(module));
        let a = self.send("GET", format!("{CRM_API}/settings/fields"), q, None, Vec::new())?;
        let names: Vec<&str> = match (&a.json, a.status) {
            (Some(v), 200..=299) => v["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["api_name"].as_str()).filter(|n| *n != "id").collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let fields = if names.is_empty() {
            FALLBACK_FIELDS.to_string()
        } else {
            names.into_iter().take(MAX_FIELDS).collect::<Vec<_>>().join(",")
        };
        self.tasks.fields.borrow_mut().insert(key, fields.clone());
        Ok(fields)
    }
}

/// An answer: status, and the body as JSON when it is JSON, else its text.
struct Answer {
    status: u16,
    json: Option<Value>,
    text: String,
}

impl Answer {
    /// The error map of an answer that is not what the task expects: the API's own error object
    /// when it sent one (`code`, `message`, `details`, `status`), else one made in its shape.
    fn error(self) -> Value {
        match self.json {
            Some(Value::Object(m)) if !m.is_empty() => Value::Object(m),
            _ => {
                let text: String = self.text.trim().chars().take(200).collect();
                json!({
                    "code": "UNEXPECTED_RESPONSE",
                    "message": if text.is_empty() { format!("HTTP {}", self.status) } else { format!("HTTP {}: {text}", self.status) },
                    "details": {"status_code": self.status},
                    "status": "error",
                })
            }
        }
    }
}

/// A value's type as scripts name it (`int`, `float`, `string`, `map`...), `nothing` for `()`.
fn shown(v: &Dynamic) -> String {
    match v.type_name() {
        "()" => "nothing",
        "i64" | "i32" => "int",
        "f64" | "f32" => "float",
        other => other,
    }
    .to_string()
}

fn to_script(v: Value) -> Dynamic {
    rhai::serde::to_dynamic(&v).unwrap_or(Dynamic::UNIT)
}

/// The body of a CRM write: `{"data": [...]}` plus the options (`trigger`, `duplicate_check_fields`,
/// ...), with `"trigger": []` unless the options name one (Deluge tasks run no workflows unless
/// asked).
fn crm_body(data: Vec<Value>, options: JsonMap<String, Value>) -> Value {
    let mut body = JsonMap::new();
    body.insert("data".into(), Value::Array(data));
    for (k, v) in options {
        if k != "data" {
            body.insert(k, v);
        }
    }
    body.entry("trigger").or_insert_with(|| json!([]));
    Value::Object(body)
}

/// The result of a CRM write of one record, as Deluge gives it: the item's `details` (`id`,
/// `Created_Time`, `Modified_Time`, `Created_By`, `Modified_By`; upserts add `action` and
/// `duplicate_field`) on success, else the error item or the API's error.
fn crm_write_result(a: Answer) -> Dynamic {
    let item = a.json.as_ref().and_then(|v| v["data"].as_array()).and_then(|d| d.first()).cloned();
    match item {
        Some(Value::Object(item)) if item.get("status").and_then(Value::as_str) == Some("success") => {
            let mut details = item.get("details").and_then(Value::as_object).cloned().unwrap_or_default();
            for k in ["action", "duplicate_field"] {
                if let Some(v) = item.get(k) {
                    details.insert(k.to_string(), v.clone());
                }
            }
            to_script(Value::Object(details))
        }
        Some(Value::Object(item)) => to_script(Value::Object(item)),
        _ => to_script(a.error()),
    }
}

/// The records of a CRM or Desk list answer: `data`, an empty list for 204 or no body, else the
/// error map.
fn list_result(a: Answer) -> Dynamic {
    if a.status == 204 || (a.json.is_none() && a.text.trim().is_empty() && (200..300).contains(&a.status)) {
        return Dynamic::from_array(Vec::new());
    }
    let items = a.json.as_ref().and_then(|v| v["data"].as_array()).cloned();
    match items {
        Some(items) if (200..300).contains(&a.status) => to_script(Value::Array(items)),
        _ => to_script(a.error()),
    }
}

fn paging(page: Option<i64>, per_page: Option<i64>, names: (&str, &str), q: &mut JsonMap<String, Value>) {
    if let Some(p) = page {
        q.insert(names.0.into(), json!(p));
    }
    if let Some(p) = per_page {
        q.insert(names.1.into(), json!(p));
    }
}

// ------------------------------------------------------------------------------ Zoho CRM

fn crm_create(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    crm_write(c, args, "POST", format!("{CRM_API}/{module}"), 1)
}

fn crm_update(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    let id = c.id_arg(args, 1)?;
    crm_write(c, args, "PUT", format!("{CRM_API}/{module}/{id}"), 2)
}

fn crm_upsert(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    crm_write(c, args, "POST", format!("{CRM_API}/{module}/upsert"), 1)
}

/// A write of one record: the record map at `args[at]`, optional options after it, sent in the
/// `data` envelope; gives the item's details or its error.
fn crm_write(
    c: &Call<'_>,
    args: &[Dynamic],
    method: &str,
    path: String,
    at: usize,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let record = c.map_arg(args, at, false)?;
    let options = c.map_arg(args, at + 1, true)?;
    let body = crm_body(vec![Value::Object(record)], options);
    let a = c.send(method, path, JsonMap::new(), Some(body), Vec::new())?;
    Ok(crm_write_result(a))
}

/// `bulkUpdate(module, list[, options])`: one `PUT /{module}` of records that each carry their
/// `id`; gives the API's answer as it is (`{"data": [item, ...]}`, an item per record).
fn crm_bulk_update(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    let list = match builtins::to_json_value(&args[1]) {
        Ok(Value::Array(items)) if args[1].is_array() => items,
        _ => {
            return Err(c.fail(format!(
                "`list` of {} must be a list of maps, not {}",
                c.task.full_name(),
                shown(&args[1])
            )));
        }
    };
    let options = c.map_arg(args, 2, true)?;
    let body = crm_body(list, options);
    let a = c.send("PUT", format!("{CRM_API}/{module}"), JsonMap::new(), Some(body), Vec::new())?;
    Ok(match a.json {
        Some(v @ Value::Object(_)) if v.get("data").is_some() => to_script(v),
        _ => to_script(a.error()),
    })
}

fn crm_get_by_id(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    let id = c.id_arg(args, 1)?;
    let a = c.send("GET", format!("{CRM_API}/{module}/{id}"), JsonMap::new(), None, Vec::new())?;
    if a.status == 204 {
        return Ok(Dynamic::from_map(rhai::Map::new()));
    }
    let record = a.json.as_ref().and_then(|v| v["data"].as_array()).and_then(|d| d.first()).cloned();
    Ok(match record {
        Some(r @ Value::Object(_)) if (200..300).contains(&a.status) => to_script(r),
        _ => to_script(a.error()),
    })
}

fn crm_get_records(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    let (page, per_page) = (c.int_arg(args, 1)?, c.int_arg(args, 2)?);
    let mut q = c.map_arg(args, 3, true)?;
    paging(page, per_page, ("page", "per_page"), &mut q);
    if !q.contains_key("fields") {
        q.insert("fields".into(), json!(c.default_fields(&module)?));
    }
    let a = c.send("GET", format!("{CRM_API}/{module}"), q, None, Vec::new())?;
    Ok(list_result(a))
}

/// The query of a CRM search: `(Field:operator:value)` criteria as `criteria`; `email:x`,
/// `phone:x` and `word:x` as the API's `email`, `phone` and `word` searches.
fn search_query(criteria: &str) -> (String, String) {
    let t = criteria.trim();
    if let Some((key, value)) = t.split_once(':') {
        let key = key.trim().to_ascii_lowercase();
        if matches!(key.as_str(), "email" | "phone" | "word") {
            return (key, value.trim().to_string());
        }
    }
    ("criteria".to_string(), t.to_string())
}

fn crm_search(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let module = c.name_arg(args, 0)?;
    let Some(criteria) = args[1].read_lock::<rhai::ImmutableString>().map(|s| s.to_string()) else {
        return Err(c.fail(format!(
            "`criteria` of {} must be text such as \"(Email:equals:a@b.com)\", not {}",
            c.task.full_name(),
            shown(&args[1])
        )));
    };
    let (page, per_page) = (c.int_arg(args, 2)?, c.int_arg(args, 3)?);
    let mut q = c.map_arg(args, 4, true)?;
    let (key, value) = search_query(&criteria);
    q.insert(key, json!(value));
    paging(page, per_page, ("page", "per_page"), &mut q);
    let a = c.send("GET", format!("{CRM_API}/{module}/search"), q, None, Vec::new())?;
    Ok(list_result(a))
}

fn crm_related(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let relation = c.name_arg(args, 0)?;
    let parent = c.name_arg(args, 1)?;
    let id = c.id_arg(args, 2)?;
    let mut q = JsonMap::new();
    paging(c.int_arg(args, 3)?, c.int_arg(args, 4)?, ("page", "per_page"), &mut q);
    q.insert("fields".into(), json!(c.default_fields(&relation)?));
    let a = c.send("GET", format!("{CRM_API}/{parent}/{id}/{relation}"), q, None, Vec::new())?;
    Ok(list_result(a))
}

/// `getOrgVariable(api_name)`: the variable's value, found by API name in `GET /settings/variables`
/// (`{"variables": [{"api_name", "value", ...}]}`; the one-variable URL needs the variable's group
/// too), else the error map.
fn crm_org_variable(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let name = c.name_arg(args, 0)?;
    let a = c.send("GET", format!("{CRM_API}/settings/variables"), JsonMap::new(), None, Vec::new())?;
    if !(200..300).contains(&a.status) {
        return Ok(to_script(a.error()));
    }
    let variables = a.json.as_ref().and_then(|v| v["variables"].as_array());
    let found = variables.and_then(|vs| vs.iter().find(|v| v["api_name"].as_str() == Some(name.as_str())));
    Ok(match found {
        Some(v) => to_script(v.get("value").cloned().unwrap_or(Value::Null)),
        None => to_script(json!({
            "code": "INVALID_DATA",
            "message": format!("the org has no variable `{name}`"),
            "details": {"api_name": name},
            "status": "error",
        })),
    })
}

// ------------------------------------------------------------------------------ Zoho Desk

/// The `orgId` header and the module's path segment (Desk paths are lower case: `tickets`). A
/// connection that sends an `orgId` param of its own would override the header (credentials win
/// over a script's headers), so an `orgId` other than the connection's is refused rather than
/// silently replaced.
fn desk_target(c: &Call<'_>, args: &[Dynamic]) -> Result<(Headers, String), Box<EvalAltResult>> {
    use secrecy::ExposeSecret as _;
    let org = c.id_arg(args, 0)?;
    let module = c.name_arg(args, 1)?.to_ascii_lowercase();
    // An unknown or unusable connection is reported by the request itself.
    if let Ok(live) = c.state.invoker.live(&c.link) {
        let own = live.placed.iter().find(|p| p.key.eq_ignore_ascii_case("orgId"));
        if own.is_some_and(|p| p.value.expose_secret().trim() != org) {
            return Err(c.fail(format!(
                "orgId `{org}` of {} is not the Desk organisation of connection `{}` (its `orgId` param): use a connection of that organisation",
                c.task.full_name(),
                c.link
            )));
        }
    }
    Ok((vec![("orgId".to_string(), org)], module))
}

/// A Desk answer that is one object: the object (`{}` for 204), or the error body.
fn desk_object(a: Answer) -> Dynamic {
    if a.status == 204 {
        return Dynamic::from_map(rhai::Map::new());
    }
    match a.json {
        Some(v @ Value::Object(_)) if (200..300).contains(&a.status) => to_script(v),
        _ => to_script(a.error()),
    }
}

fn desk_create(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let (headers, module) = desk_target(c, args)?;
    let record = c.map_arg(args, 2, false)?;
    let a = c.send("POST", format!("/{module}"), JsonMap::new(), Some(Value::Object(record)), headers)?;
    Ok(desk_object(a))
}

fn desk_update(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let (headers, module) = desk_target(c, args)?;
    let id = c.id_arg(args, 2)?;
    let record = c.map_arg(args, 3, false)?;
    let a = c.send("PATCH", format!("/{module}/{id}"), JsonMap::new(), Some(Value::Object(record)), headers)?;
    Ok(desk_object(a))
}

fn desk_get_by_id(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let (headers, module) = desk_target(c, args)?;
    let id = c.id_arg(args, 2)?;
    let a = c.send("GET", format!("/{module}/{id}"), JsonMap::new(), None, headers)?;
    Ok(desk_object(a))
}

fn desk_get_records(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let (headers, module) = desk_target(c, args)?;
    let (from, limit) = (c.int_arg(args, 2)?, c.int_arg(args, 3)?);
    let mut q = c.map_arg(args, 4, true)?;
    paging(from, limit, ("from", "limit"), &mut q);
    let a = c.send("GET", format!("/{module}"), q, None, headers)?;
    Ok(list_result(a))
}

/// `searchRecords(orgId, module, criteria_map[, from, limit])`: `GET /{module}/search` with the
/// criteria as query parameters (`{"email": "x"}`, `{"subject": "Refund*"}`).
fn desk_search(c: &Call<'_>, args: &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>> {
    let (headers, module) = desk_target(c, args)?;
    let mut q = c.map_arg(args, 2, false)?;
    paging(c.int_arg(args, 3)?, c.int_arg(args, 4)?, ("from", "limit"), &mut q);
    let a = c.send("GET", format!("/{module}/search"), q, None, headers)?;
    Ok(list_result(a))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn searches_by_email_phone_and_word_use_the_apis_own_keys() {
        assert_eq!(search_query("(Email:equals:a@b.c)"), ("criteria".into(), "(Email:equals:a@b.c)".into()));
        assert_eq!(search_query("email:a@b.c"), ("email".into(), "a@b.c".into()));
        assert_eq!(search_query(" Phone: 555-1234"), ("phone".into(), "555-1234".into()));
        assert_eq!(search_query("word:Zylker"), ("word".into(), "Zylker".into()));
        assert_eq!(search_query("((Last_Name:starts_with:Do)and(Company:equals:Z))").0, "criteria");
    }

    #[test]
    fn writes_go_in_the_data_envelope_and_run_no_workflows_unless_asked() {
        let body = crm_body(vec![json!({"Last_Name": "Doe"})], JsonMap::new());
        assert_eq!(body, json!({"data": [{"Last_Name": "Doe"}], "trigger": []}));
        let mut opts = JsonMap::new();
        opts.insert("trigger".into(), json!(["workflow"]));
        opts.insert("duplicate_check_fields".into(), json!(["Email"]));
        let body = crm_body(vec![json!({"Last_Name": "Doe"})], opts);
        assert_eq!(body["trigger"], json!(["workflow"]));
        assert_eq!(body["duplicate_check_fields"], json!(["Email"]));
    }

    #[test]
    fn signatures_name_the_optional_arguments_and_the_connection() {
        let t = TASKS.iter().find(|t| t.name == "searchRecords" && t.product == Product::Crm).unwrap();
        assert_eq!(
            t.signature(),
            "zoho.crm.searchRecords(module, criteria[, page][, per_page][, query][, connection])"
        );
        let answer = Answer { status: 502, json: None, text: "Bad gateway".into() };
        assert_eq!(answer.error()["message"], "HTTP 502: Bad gateway");
    }
}
