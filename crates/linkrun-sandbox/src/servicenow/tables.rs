//! The emulated tables: their fields, references between them, choice lists and number
//! prefixes, and the names the emulator serves ([`TABLE_NAMES`]).

use super::*;

/// One emulated table.
pub(super) struct TableDef {
    pub(super) name: &'static str,
    /// Its columns besides the `sys_*` ones (custom `u_*` columns are accepted on any table).
    pub(super) columns: &'static [&'static str],
    /// Reference columns and the tables they point at.
    pub(super) refs: &'static [(&'static str, &'static str)],
    /// The column whose value is the record's display value.
    pub(super) display: &'static str,
    /// The prefix of its `number` column, set by the server on insert.
    pub(super) number: Option<&'static str>,
}

impl TableDef {
    pub(super) fn has(&self, field: &str) -> bool {
        SYS_COLUMNS.contains(&field) || self.columns.contains(&field) || is_custom(field)
    }

    pub(super) fn ref_table(&self, field: &str) -> Option<&'static str> {
        self.refs.iter().find(|(f, _)| *f == field).map(|(_, t)| *t)
    }
}

/// The tables the emulator knows.
pub(super) const TABLES: [TableDef; 9] = [
    TableDef {
        name: "customer_contact",
        columns: &[
            "first_name",
            "last_name",
            "name",
            "email",
            "phone",
            "mobile_phone",
            "account",
            "company",
            "title",
            "user_name",
            "active",
            "city",
            "country",
        ],
        refs: &[("account", "customer_account"), ("company", "core_company")],
        display: "name",
        number: None,
    },
    TableDef {
        name: "customer_account",
        columns: &["name", "number", "phone", "primary_contact", "customer", "city", "country", "website", "notes"],
        refs: &[("primary_contact", "customer_contact")],
        display: "name",
        number: Some("ACC"),
    },
    TableDef {
        name: "core_company",
        columns: &["name", "vendor", "customer", "manufacturer", "phone", "city", "country", "website", "notes"],
        refs: &[],
        display: "name",
        number: None,
    },
    TableDef {
        name: "cmdb_model",
        columns: &["name", "display_name", "model_number", "manufacturer", "cost", "short_description", "status"],
        refs: &[("manufacturer", "core_company")],
        display: "display_name",
        number: None,
    },
    TableDef {
        name: "proc_po",
        columns: &[
            "number",
            "short_description",
            "description",
            "vendor",
            "status",
            "total_cost",
            "ordered",
            "expected_delivery",
            "requested_by",
        ],
        refs: &[("vendor", "core_company")],
        display: "number",
        number: Some("PO"),
    },
    TableDef {
        name: "proc_po_item",
        columns: &[
            "number",
            "purchase_order",
            "model",
            "short_description",
            "ordered_quantity",
            "cost",
            "total_cost",
            "status",
        ],
        refs: &[("purchase_order", "proc_po"), ("model", "cmdb_model")],
        display: "number",
        number: Some("POL"),
    },
    TableDef {
        name: "sn_customerservice_case",
        columns: &[
            "number",
            "short_description",
            "description",
            "contact",
            "account",
            "contact_type",
            "state",
            "priority",
            "product",
            "opened_at",
            "closed_at",
            "u_call_recording_url",
            "correlation_id",
        ],
        refs: &[("contact", "customer_contact"), ("account", "customer_account"), ("product", "cmdb_model")],
        display: "number",
        number: Some("CS"),
    },
    // Incidents (ITSM), for scripts that open one from an event; not seeded.
    TableDef {
        name: "incident",
        columns: &[
            "number",
            "short_description",
            "description",
            "caller_id",
            "category",
            "state",
            "priority",
            "impact",
            "urgency",
            "contact_type",
            "opened_at",
            "closed_at",
        ],
        refs: &[("caller_id", "customer_contact")],
        display: "number",
        number: Some("INC"),
    },
    // Deleted records, as the instance's delete audit keeps them: one row per record deleted
    // through the API (`tablename`, `documentkey` = its sys_id, `display_value`), stamped when
    // it was deleted. What a sync reads to carry deletes over.
    TableDef {
        name: "sys_audit_delete",
        columns: &["tablename", "documentkey", "display_value"],
        refs: &[],
        display: "documentkey",
        number: None,
    },
];

/// The names of the tables the emulator seeds (it also serves `incident` and `sys_audit_delete`).
pub const TABLE_NAMES: [&str; 7] = [
    "customer_contact",
    "customer_account",
    "core_company",
    "cmdb_model",
    "proc_po",
    "proc_po_item",
    "sn_customerservice_case",
];

pub(super) fn table_def(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// A custom column name: `u_` then lower-case letters, digits and underscores.
pub(super) fn is_custom(field: &str) -> bool {
    field
        .strip_prefix("u_")
        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// Display labels of choice values.
pub(super) fn choice_label(table: &str, field: &str, value: &str) -> Option<&'static str> {
    let label = match (table, field, value) {
        ("sn_customerservice_case", "state", "1") => "New",
        ("sn_customerservice_case", "state", "10") => "Open",
        ("sn_customerservice_case", "state", "18") => "Awaiting Info",
        ("sn_customerservice_case", "state", "6") => "Resolved",
        ("sn_customerservice_case", "state", "3") => "Closed",
        ("sn_customerservice_case", "priority", "1") => "1 - Critical",
        ("sn_customerservice_case", "priority", "2") => "2 - High",
        ("sn_customerservice_case", "priority", "3") => "3 - Moderate",
        ("sn_customerservice_case", "priority", "4") => "4 - Low",
        ("sn_customerservice_case", "contact_type", "chat") => "Chat",
        ("sn_customerservice_case", "contact_type", "email") => "Email",
        ("sn_customerservice_case", "contact_type", "phone") => "Phone",
        ("sn_customerservice_case", "contact_type", "social") => "Social",
        ("sn_customerservice_case", "contact_type", "web") => "Web",
        _ => return None,
    };
    Some(label)
}
