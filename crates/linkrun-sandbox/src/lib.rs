//! `linkrun-sandbox`: linkrun's local emulators of the Zoho and ServiceNow APIs, as the
//! repository's `docs/api-facts.md` records the real services. `linkrun sandbox` serves them
//! together: one axum server on 127.0.0.1 with a module per emulated product, used by
//! `linkrun demo`, the example scripts and the integration tests. The crate stands alone: it
//! does not depend on `linkrun`.
//!
//! | module             | emulates |
//! |--------------------|----------|
//! | [`server`]         | not a product: the one server that mounts the others, its organisations, seed data and knobs |
//! | [`oauth_provider`] | the OAuth 2.0 part: Zoho Accounts (`/oauth/v2/...`) and a ServiceNow instance's `oauth_*.do` endpoints, with fault knobs for tests |
//! | [`zoho_crm`]       | Zoho CRM records (`/crm/v7`, `/crm/v8`): routes, storage, search criteria, page tokens, seed data |
//! | [`zoho_desk`]      | Zoho Desk organizations, departments and tickets (`/api/v1`) |
//! | [`zoho_campaigns`] | Zoho Campaigns list subscribe (`/api/v1.1/json/listsubscribe`) |
//! | [`servicenow`]     | the ServiceNow Table API (`/api/now/table`): routes, storage, encoded queries, seed data |
//! | [`faults`]         | not a product: the knobs: latency, 5xx, 429 and rate-limit faults shared by every emulator, and each product's limits |
//! | [`request_stats`]  | not a product: the API request counts of `/_sandbox/requests` (total, in flight, by path) |
//! | [`storage`]        | not a product: the `--data` SQLite file the others share, its tables and its checks |
//! | [`seed_rng`]       | not a product: the deterministic generator of every emulator's seed data |

pub mod events;
pub mod faults;
pub mod oauth_provider;
pub mod request_stats;
pub mod seed_rng;
pub mod server;
pub mod servicenow;
pub mod storage;
pub mod zoho_campaigns;
pub mod zoho_crm;
pub mod zoho_desk;
