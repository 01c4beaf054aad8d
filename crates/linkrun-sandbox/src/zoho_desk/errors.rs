//! Errors: Desk's `{"errorCode":…,"message":…}` bodies, field errors named by JSON Pointers, and
//! the answers to faults, unknown URLs and methods.

use super::*;

/// A field that failed validation, named by a JSON Pointer into the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldError {
    pub(super) pointer: String,
    pub(super) kind: &'static str,
    pub(super) message: String,
}

impl FieldError {
    pub(super) fn missing(pointer: &str) -> FieldError {
        FieldError { pointer: pointer.to_string(), kind: "missing", message: String::new() }
    }

    pub(super) fn invalid(pointer: &str, message: &str) -> FieldError {
        FieldError { pointer: pointer.to_string(), kind: "invalid", message: message.to_string() }
    }
}

pub(super) fn desk_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errorCode": code, "message": message }))).into_response()
}

/// 422 for a bad query or header parameter, in the captured `orgId` wording.
pub(super) fn bad_param(name: &str) -> Response {
    desk_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNPROCESSABLE_ENTITY",
        &format!("The value passed for the '{name}' parameter is invalid."),
    )
}

pub(super) fn field_errors(errors: Vec<FieldError>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({ "fieldName": e.pointer, "errorType": e.kind, "errorMessage": e.message }))
        .collect();
    let body = json!({ "errorCode": "INVALID_DATA", "message": MSG_FIELDS, "errors": errors });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

pub(super) fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after } => {
            let mut r = desk_error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", MSG_TOO_MANY);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        Fault::ServerError { status } => {
            with_status(desk_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL), status)
        }
    }
}

pub(super) async fn url_not_found() -> Response {
    desk_error(StatusCode::NOT_FOUND, "URL_NOT_FOUND", MSG_URL_NOT_FOUND)
}

pub(super) async fn method_not_allowed() -> Response {
    desk_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", MSG_METHOD_NOT_ALLOWED)
}
