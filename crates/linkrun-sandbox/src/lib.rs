//! The home of linkrun's local emulators of the Zoho and ServiceNow APIs (see `api-facts.md`). The
//! sandbox issue serves them together as `linkrun sandbox`: one axum server on 127.0.0.1 with a
//! module per emulated product, used by the demo, the example scripts and the integration tests.
//!
//! | module             | emulates |
//! |--------------------|----------|
//! | [`oauth_provider`] | the OAuth 2.0 part: Zoho Accounts (`/oauth/v2/...`) and a ServiceNow instance's `oauth_*.do` endpoints, with fault knobs for tests |
//! | [`storage`]        | not a product: the `--data` SQLite file the others share, its tables and its checks |

pub mod faults;
pub mod oauth_provider;
pub mod server;
pub mod servicenow;
pub mod storage;
pub mod zoho_campaigns;
pub mod zoho_crm;
pub mod zoho_desk;
