//! Responses: JSON bodies, ServiceNow's error envelope
//! `{"error":{"message":…,"detail":…},"status":"failure"}` and its status codes.

use super::*;

pub(super) fn json_value(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    r
}

pub(super) fn sn_error(status: StatusCode, message: &str, detail: Value) -> Response {
    json_value(status, &json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

pub(super) fn unauthenticated() -> Response {
    sn_error(StatusCode::UNAUTHORIZED, "User Not Authenticated", json!("Required to provide Auth information"))
}

pub(super) fn not_found() -> Response {
    sn_error(
        StatusCode::NOT_FOUND,
        "No Record found",
        json!("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

/// The fault knob's 500.
pub(super) fn simulated_failure() -> Response {
    sn_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal server error",
        json!("The sandbox simulated a server failure; retry the request"),
    )
}

/// A real failure of the sandbox's storage, said as such.
pub(super) fn storage_error(e: &rusqlite::Error) -> Response {
    let detail = storage_failed(e);
    eprintln!("linkrun sandbox: ServiceNow: {detail}");
    sn_error(StatusCode::INTERNAL_SERVER_ERROR, "Sandbox storage error", json!(detail))
}

pub(super) fn bad_body() -> Response {
    sn_error(StatusCode::BAD_REQUEST, "Exception while reading request", json!("The payload is not valid JSON."))
}

/// The request body as a JSON object.
pub(super) fn body_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Box::new(bad_body())),
    }
}
