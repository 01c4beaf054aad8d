//! The `zoho` namespace of scripts: `zoho.crm.createRecord("Leads", m)`, `zoho.currenttime`,
//! `zoho.encryption.urlEncode(s)` read in Rhai exactly as in Deluge.
//!
//! Rhai has no namespaces for values, so `zoho` is a constant of the unit type [`Zoho`] in every
//! script's scope, and each part of it is a property getter returning another unit type
//! ([`ZohoCrm`], [`ZohoDesk`], [`ZohoEncryption`]) on which the tasks are methods. The parts
//! register themselves: the time getters and `encryption` in `deluge_time` / `deluge_encoding`,
//! `crm` and `desk` in `zoho_tasks`. A script cannot assign to `zoho` (it is a constant).

use rhai::{Engine, Scope};

/// The type of the `zoho` constant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zoho;

/// The type of `zoho.crm`: the CRM integration tasks are its methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZohoCrm;

/// The type of `zoho.desk`: the Desk integration tasks are its methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZohoDesk;

/// The type of `zoho.encryption`: the encoding functions are its methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZohoEncryption;

/// The name of the constant in a script's scope.
pub const NAME: &str = "zoho";

/// Registers the namespace types (with the names `zoho`, `zoho.crm`... in messages).
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Zoho>("zoho");
    engine.register_type_with_name::<ZohoCrm>("zoho.crm");
    engine.register_type_with_name::<ZohoDesk>("zoho.desk");
    engine.register_type_with_name::<ZohoEncryption>("zoho.encryption");
    engine.register_get("crm", |_: &mut Zoho| ZohoCrm);
    engine.register_get("desk", |_: &mut Zoho| ZohoDesk);
    engine.register_get("encryption", |_: &mut Zoho| ZohoEncryption);
}

/// Puts the `zoho` constant into a script's scope.
pub fn push(scope: &mut Scope) {
    scope.push_constant(NAME, Zoho);
}
