//! HTTP: the lowest layer of a call, used by the auth layer and the invoker alike.
//!
//! | module      | concern |
//! |-------------|---------|
//! | [`client`]  | the lazily built, shared reqwest clients (plain and TLS), proxies, the runtime |
//! | [`request`] | [`Outgoing`] (a request ready to send), [`Body`], [`Response`] |
//! | [`rules`]   | host rules: allow-list with ports, HTTPS except loopback, same origin, redaction |
//! | [`mod@send`] | the one send path: timeout, size cap, redirects hop by hop, traces |
//! | [`error`]   | [`InvokeError`] and its [`ErrorKind`], what scripts catch |
//! | [`method`]  | [`HttpMethod`], the methods a request may use |
//! | [`retry`]   | the retry policy: which answers and failures are retried, waits, attempts |
//! | [`budget`]  | rate budgets: requests in flight and started per span, per connection |
//! | [`pagination`] | the pagination styles: where the records and the next page are in an answer |
//!
//! Nothing here knows connections, the vault or scripts: the auth layer hands [`send()`] a
//! [`send::Credentials`] implementation that decides what each hop carries.

pub mod budget;
pub mod client;
pub mod error;
pub mod method;
pub mod pagination;
pub mod request;
pub mod retry;
pub mod rules;
pub mod send;

pub use client::{Clients, runtime, server_runtime};
pub use error::{ErrorKind, InvokeError};
pub use method::HttpMethod;
pub use request::{Body, Outgoing, Response};
pub use send::{NoCredentials, SendOptions, send};
