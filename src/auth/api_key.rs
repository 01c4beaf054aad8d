//! API-key auth: each key param goes in a header, the query string, the form body or a top-level
//! field of the JSON object body, per the service's `placement` or the param's own (Zoho's "Param
//! Type": Header, Query String, Form Data; `json` for APIs that want the key inside a JSON body).
//! A JSON key is put on each hop the auth layer allows, like every other placement: never on a
//! redirect to another origin, where the body goes as the script wrote it.

use super::{PlacedValue, place_values};
use crate::http::{InvokeError, Outgoing};

/// The key params of a connection.
#[derive(Debug)]
pub struct ApiKey {
    /// Each key and where it goes.
    pub values: Vec<PlacedValue>,
}

impl ApiKey {
    /// Places every key on the request.
    pub fn apply(&self, req: &mut Outgoing, link_name: &str) -> Result<(), InvokeError> {
        place_values(req, &self.values, link_name)
    }
}
