//! The permission checks of `linkrun connection test`: each `[[checks]]` entry of the service is
//! one GET on the connection, and its answer is judged as
//!
//! - `forbidden`: HTTP 401 or 403, or an error code of the check's `forbidden_codes` at its
//!   `code_path` (default `code`) whatever the status (Zoho's `OAUTH_SCOPE_MISMATCH` and
//!   `NO_PERMISSION`, ServiceNow's `User Not Authorized`);
//! - `hidden`: a 2xx answer with no records (an empty list at `records`, a 204 or an empty body)
//!   where the check says records should be visible (`expect_records`): what a ServiceNow
//!   row-level ACL does;
//! - `failed`: any other answer outside 2xx (5xx, 404, ...), or a request that could not be made
//!   (network, timeout, host rules), with the message;
//! - `permitted`: any other 2xx answer. One without a list at `records` is permitted too (the
//!   server let the read through), its detail saying that the records were not counted.
//!
//! Forbidden and hidden results carry the check's `fix`, `{link}` replaced by the link name.
//! Nothing of an answer's body is shown but the error code at `code_path` (at most 80
//! characters), and errors are the invoker's, whose URLs are redacted.

use serde::Serialize;
use serde_json::Value;

use crate::invoke::{Failure, Invoker, ScriptRequest};
use crate::link_name::LinkName;
use crate::service::CheckDef;

/// The longest error code quoted from an answer.
const MAX_CODE: usize = 80;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// The read was answered with success.
    Permitted,
    /// The read was refused (401, 403, a forbidden error code).
    Forbidden,
    /// The read succeeded with no records where records should be visible.
    Hidden,
    /// Another error: the check could not tell.
    Failed,
}

/// One check's result, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check's `name`.
    pub name: String,
    /// The outcome.
    pub status: Outcome,
    /// The answer's HTTP status, when there was one.
    pub http_status: Option<u16>,
    /// What was found, in words (none for a plain `permitted`).
    pub detail: Option<String>,
    /// What to grant (forbidden and hidden only).
    pub fix: Option<String>,
}

impl CheckResult {
    /// The terminal line: `permitted  Leads`, `forbidden  Deals: HTTP 401 ...; fix: ...`.
    pub fn line(&self) -> String {
        let mut s = format!("{:<9}  {}", <&str>::from(self.status), self.name);
        if let Some(d) = &self.detail {
            s.push_str(": ");
            s.push_str(d);
        }
        if let Some(f) = &self.fix {
            s.push_str(if self.detail.is_some() { "; fix: " } else { ": fix: " });
            s.push_str(f);
        }
        s
    }
}

/// Makes every check of `checks` on connection `link`, one after the other. A fatal failure (the
/// vault cannot be read) ends them.
pub async fn run(invoker: &Invoker, link: &LinkName, checks: &[CheckDef]) -> crate::Result<Vec<CheckResult>> {
    let mut out = Vec::with_capacity(checks.len());
    for c in checks {
        let req = ScriptRequest {
            url: c.url.get_ref().clone(),
            method: Some("GET".into()),
            connection: Some(link.clone()),
            ..Default::default()
        };
        let result = match invoker.send(&req, crate::invoke::DEFAULT_TIMEOUT).await {
            Ok(r) => judge(c, r.status, &r.body, link),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Invoke(e)) => CheckResult {
                name: c.name.get_ref().clone(),
                status: Outcome::Failed,
                http_status: None,
                detail: Some(e.message),
                fix: None,
            },
        };
        out.push(result);
    }
    Ok(out)
}

/// Judges one answer (see the module doc).
pub fn judge(c: &CheckDef, status: u16, body: &[u8], link: &str) -> CheckResult {
    let name = c.name.get_ref().clone();
    let fix = || Some(c.fix.get_ref().replace("{link}", link));
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let code = json
        .as_ref()
        .and_then(|v| at_path(v, c.code_path.as_deref().unwrap_or("code")))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_CODE && !s.chars().any(char::is_control))
        .map(str::to_string);
    let http = || match &code {
        Some(code) => format!("HTTP {status} `{code}`"),
        None => format!("HTTP {status}"),
    };
    let listed = code.as_ref().is_some_and(|k| c.forbidden_codes.iter().any(|f| f == k));
    let result = |status_: Outcome, detail: Option<String>, fix: Option<String>| CheckResult {
        name: name.clone(),
        status: status_,
        http_status: Some(status),
        detail,
        fix,
    };
    if status == 401 || status == 403 || listed {
        return result(Outcome::Forbidden, Some(http()), fix());
    }
    if !(200..300).contains(&status) {
        return result(Outcome::Failed, Some(http()), None);
    }
    let Some(path) = c.records.as_deref() else { return result(Outcome::Permitted, None, None) };
    let empty_answer = status == 204 || body.iter().all(u8::is_ascii_whitespace);
    let count = match (&json, empty_answer) {
        (_, true) => Some(0),
        (Some(v), false) => at_path(v, path).and_then(Value::as_array).map(Vec::len),
        (None, false) => None,
    };
    match count {
        Some(0) if c.expect_records => result(
            Outcome::Hidden,
            Some(format!(
                "{} with no records where records should be visible: the table may be empty, or access rules hide its records from the connection's user",
                http()
            )),
            fix(),
        ),
        Some(_) => result(Outcome::Permitted, None, None),
        None => result(
            Outcome::Permitted,
            Some(format!("{}; records not counted: the answer has no list at `{path}`", http())),
            None,
        ),
    }
}

/// The value at a dotted path of object keys (a number also indexes an array).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: &str) -> CheckDef {
        let text = format!("name = \"Leads\"\nurl = \"/crm/v7/Leads\"\nfix = \"grant it to {{link}}\"\n{extra}");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn refusals_are_forbidden_with_the_fix_and_the_code() {
        let c = check("records = \"data\"\nforbidden_codes = [\"OAUTH_SCOPE_MISMATCH\", \"NO_PERMISSION\"]\n");
        let r = judge(&c, 401, br#"{"code":"OAUTH_SCOPE_MISMATCH","message":"Unauthorized"}"#, "crm");
        assert_eq!((r.status, r.http_status), (Outcome::Forbidden, Some(401)));
        assert_eq!(r.line(), "forbidden  Leads: HTTP 401 `OAUTH_SCOPE_MISMATCH`; fix: grant it to crm");
        // A listed code is forbidden whatever the status.
        assert_eq!(judge(&c, 200, br#"{"code":"NO_PERMISSION"}"#, "crm").status, Outcome::Forbidden);
        let r = judge(&c, 403, b"<html>no</html>", "crm");
        assert_eq!(r.detail.as_deref(), Some("HTTP 403"));
        let sn = check("code_path = \"error.message\"\nforbidden_codes = [\"User Not Authorized\"]\n");
        let r = judge(&sn, 403, br#"{"error":{"message":"User Not Authorized"},"status":"failure"}"#, "sn");
        assert_eq!(r.detail.as_deref(), Some("HTTP 403 `User Not Authorized`"));
    }

    #[test]
    fn empty_answers_look_hidden_only_where_records_are_expected() {
        let c = check("records = \"result\"\nexpect_records = true\n");
        for (status, body) in [(200, &br#"{"result":[]}"#[..]), (204, b""), (200, b" ")] {
            let r = judge(&c, status, body, "sn");
            assert_eq!(r.status, Outcome::Hidden, "{status}");
            assert_eq!(r.fix.as_deref(), Some("grant it to sn"));
        }
        assert_eq!(judge(&c, 200, br#"{"result":[{"sys_id":"1"}]}"#, "sn").line(), "permitted  Leads");
        let lax = check("records = \"result\"\n");
        assert_eq!(judge(&lax, 204, b"", "sn").status, Outcome::Permitted);
        let r = judge(&c, 200, br#"{"path":"/x"}"#, "sn");
        assert_eq!(r.status, Outcome::Permitted);
        assert_eq!(r.detail.as_deref(), Some("HTTP 200; records not counted: the answer has no list at `result`"));
    }

    #[test]
    fn other_errors_fail_without_a_fix() {
        let c = check("records = \"data\"\n");
        let r = judge(&c, 500, br#"{"code":"INTERNAL_ERROR"}"#, "crm");
        assert_eq!((r.status, r.fix.as_deref()), (Outcome::Failed, None));
        assert_eq!(r.line(), "failed     Leads: HTTP 500 `INTERNAL_ERROR`");
        assert_eq!(judge(&c, 404, b"", "crm").status, Outcome::Failed);
        // A long or multi-line "code" is not quoted.
        let long = format!("{{\"code\":\"{}\"}}", "x".repeat(81));
        assert_eq!(judge(&c, 500, long.as_bytes(), "crm").detail.as_deref(), Some("HTTP 500"));
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let v: Value = serde_json::json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(at_path(&v, "a.b.1.c"), Some(&Value::from("x")));
        assert_eq!(at_path(&v, "a.z"), None);
        assert_eq!(at_path(&v, "a.b.x"), None);
    }
}
