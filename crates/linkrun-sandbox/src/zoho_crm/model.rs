//! Organisations (id prefix, time zone, single user) and the CRM's modules, scopes and field
//! rules (mandatory, duplicate-checked, read-only, text-only, lengths) the handlers apply.

use super::*;

/// Who and where an organisation is: its id prefix, time zone and (single) user.
pub(super) struct OrgCtx {
    pub(super) org: String,
    pub(super) prefix: u64,
    pub(super) offset_secs: i64,
    /// `{name, id, email}`.
    pub(super) user: Value,
}

impl OrgCtx {
    pub(super) fn new(org: &str, cfg: &CrmConfig) -> OrgCtx {
        let prefix = match org {
            "us" => 5_725_767,
            "in" => 4_150_868,
            _ => 1_000_000 + fnv1a(org.as_bytes()) % 9_000_000,
        };
        let offset_secs = cfg.utc_offsets.iter().find(|(o, _)| o == org).map_or(0, |(_, m)| i64::from(*m) * 60);
        let (name, email) = match org {
            "us" => ("Patricia Boyle".to_string(), "patricia.boyle@zylker.com".to_string()),
            "in" => ("Priya Raman".to_string(), "priya.raman@zylker.in".to_string()),
            _ => {
                let h = fnv1a(org.as_bytes()) as usize;
                let (first, last) = (FIRST_NAMES[h % FIRST_NAMES.len()], LAST_NAMES[(h / 7) % LAST_NAMES.len()]);
                let domain: String = org.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
                let domain = if domain.is_empty() { "org".to_string() } else { domain.to_ascii_lowercase() };
                (
                    format!("{first} {last}"),
                    format!("{}.{}@{domain}.example.com", first.to_ascii_lowercase(), last.to_ascii_lowercase()),
                )
            }
        };
        let user = json!({"name": name, "id": (prefix * ID_SPLIT + 411_001).to_string(), "email": email});
        OrgCtx { org: org.to_string(), prefix, offset_secs, user }
    }

    pub(super) fn new_id(&self, seq: &mut u64) -> String {
        let id = self.prefix * ID_SPLIT + *seq % ID_SPLIT;
        *seq += 1;
        id.to_string()
    }

    pub(super) fn user_id(&self) -> &str {
        self.user["id"].as_str().unwrap_or("")
    }

    /// The organisation's users, the (administrator) user of every token first, then a standard
    /// user and a deactivated one: `(first, last, email, id, active, admin)`. Deterministic.
    pub(super) fn users(&self) -> Vec<OrgUser> {
        let name = self.user["name"].as_str().unwrap_or("");
        let email = self.user["email"].as_str().unwrap_or("");
        let (first, last) = name.split_once(' ').unwrap_or(("", name));
        let domain = email.split_once('@').map_or("example.com", |(_, d)| d);
        let h = fnv1a(self.org.as_bytes()) as usize;
        let mut users = vec![OrgUser::new(first, last, email, self.user_id(), true, true)];
        for (k, active) in [(2usize, true), (3, false)] {
            let (f, l) =
                (FIRST_NAMES[(h / k + 3 * k) % FIRST_NAMES.len()], LAST_NAMES[(h / (k * 11) + k) % LAST_NAMES.len()]);
            let email = format!("{}.{}@{domain}", ascii_name(f), ascii_name(l));
            let id = (self.prefix * ID_SPLIT + 411_000 + k as u64).to_string();
            users.push(OrgUser::new(f, l, &email, &id, active, false));
        }
        users
    }

    /// An active user of the organisation by id, as a lookup `{name, id, email}`.
    pub(super) fn active_user(&self, id: &str) -> Option<Value> {
        self.users().into_iter().find(|u| u.id == id && u.active).map(|u| u.lookup())
    }
}

/// One CRM user.
pub(super) struct OrgUser {
    pub(super) first: String,
    pub(super) last: String,
    pub(super) email: String,
    pub(super) id: String,
    pub(super) active: bool,
    pub(super) admin: bool,
}

impl OrgUser {
    fn new(first: &str, last: &str, email: &str, id: &str, active: bool, admin: bool) -> OrgUser {
        OrgUser { first: first.into(), last: last.into(), email: email.into(), id: id.into(), active, admin }
    }

    pub(super) fn full_name(&self) -> String {
        format!("{} {}", self.first, self.last).trim().to_string()
    }

    /// `{name, id, email}`, as record owners show it.
    pub(super) fn lookup(&self) -> Value {
        json!({"name": self.full_name(), "id": self.id, "email": self.email})
    }
}

/// Sets the server-owned fields of a new record.
pub(super) fn stamp_new(rec: &mut Map<String, Value>, ctx: &OrgCtx, id: &str, created: i64, modified: i64) {
    rec.insert("id".into(), id.into());
    rec.entry("Owner").or_insert_with(|| ctx.user.clone());
    rec.insert("Created_By".into(), ctx.user.clone());
    rec.insert("Modified_By".into(), ctx.user.clone());
    rec.insert("Created_Time".into(), format_time(created, ctx.offset_secs).into());
    rec.insert("Modified_Time".into(), format_time(modified, ctx.offset_secs).into());
}

// ---------------------------------------------------------------------------------------------
// Modules, scopes, fields

pub(super) fn canonical_module(name: &str) -> Option<&'static str> {
    MODULES.iter().copied().find(|m| m.eq_ignore_ascii_case(name))
}

pub(super) fn mandatory_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" | "Contacts" => &["Last_Name"],
        "Accounts" => &["Account_Name"],
        "Deals" => &["Deal_Name", "Stage"],
        "Products" => &["Product_Name"],
        "Vendors" => &["Vendor_Name"],
        "Purchase_Orders" => &["Subject", "Vendor_Name"],
        "Notes" => &["Note_Content"],
        _ => &[],
    }
}

/// The system duplicate-check fields.
pub(super) fn duplicate_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" | "Contacts" => &["Email"],
        _ => &[],
    }
}

/// The fields an upsert without `duplicate_check_fields` matches on: each module's system
/// duplicate fields (Leads and Contacts `Email`, Accounts `Account_Name`, Deals `Deal_Name`,
/// Campaigns `Campaign_Name`, Products `Product_Name`, Vendors `Vendor_Name`, Price_Books
/// `Price_Book_Name`, Cases, Solutions, Quotes, Sales_Orders, Purchase_Orders and Invoices
/// `Subject`), as zoho/crm-oas documents upsert.
pub(super) fn upsert_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" | "Contacts" => &["Email"],
        "Accounts" => &["Account_Name"],
        "Deals" => &["Deal_Name"],
        "Campaigns" => &["Campaign_Name"],
        "Products" => &["Product_Name"],
        "Vendors" => &["Vendor_Name"],
        "Price_Books" => &["Price_Book_Name"],
        "Cases" | "Solutions" | "Quotes" | "Sales_Orders" | "Purchase_Orders" | "Invoices" => &["Subject"],
        _ => &[],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Read,
    Create,
    Update,
    Delete,
    /// Zoho's upsert accepts `ALL`, `WRITE` or `CREATE`.
    Upsert,
}

/// Whether one of `scopes` covers `op` on `module`: `ZohoCRM.modules.{ALL|READ|...}` or
/// `ZohoCRM.modules.{module}.{ALL|READ|CREATE|UPDATE|DELETE|WRITE}`, the module written in lower
/// case without underscores (`purchaseorders`; with them is accepted too), case-insensitively.
pub(super) fn scope_allows(scopes: &[String], module: &str, op: Op) -> bool {
    let key: String = module.chars().filter(|c| *c != '_').collect();
    scopes.iter().any(|s| {
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.len() < 3 || !parts[0].eq_ignore_ascii_case("ZohoCRM") || !parts[1].eq_ignore_ascii_case("modules") {
            return false;
        }
        let (target_ok, operation) = match parts.len() {
            3 => (true, parts[2]),
            4 => {
                let target: String = parts[2].chars().filter(|c| *c != '_').collect();
                (target.eq_ignore_ascii_case(&key), parts[3])
            }
            _ => return false,
        };
        target_ok && operation_covers(operation, op)
    })
}

/// Whether one of `scopes` covers `op` on a non-module resource: `ZohoCRM.{path[0]}.{OP}` or
/// `ZohoCRM.{path[0]}.{path[1]}.{OP}` (e.g. `ZohoCRM.settings.ALL` and
/// `ZohoCRM.settings.variables.READ` both cover reading variables), case-insensitively.
pub(super) fn scope_covers(scopes: &[String], path: &[&str], op: Op) -> bool {
    scopes.iter().any(|s| {
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.len() < 3 || !parts[0].eq_ignore_ascii_case("ZohoCRM") {
            return false;
        }
        let middle = &parts[1..parts.len() - 1];
        middle.len() <= path.len()
            && middle.iter().zip(path).all(|(a, b)| a.eq_ignore_ascii_case(b))
            && operation_covers(parts[parts.len() - 1], op)
    })
}

pub(super) fn operation_covers(operation: &str, op: Op) -> bool {
    match operation.to_ascii_uppercase().as_str() {
        "ALL" => true,
        "WRITE" => op != Op::Read,
        "READ" => op == Op::Read,
        "CREATE" => matches!(op, Op::Create | Op::Upsert),
        "UPDATE" => op == Op::Update,
        "DELETE" => op == Op::Delete,
        _ => false,
    }
}

/// The fields a module has whether or not a record fills them (COQL refuses other columns unless a
/// record of the module has them).
pub(super) fn standard_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" => &[
            "First_Name",
            "Last_Name",
            "Full_Name",
            "Email",
            "Secondary_Email",
            "Phone",
            "Mobile",
            "Company",
            "Lead_Status",
            "Lead_Source",
            "Industry",
            "Designation",
            "No_of_Employees",
            "Annual_Revenue",
            "Website",
            "Description",
            "Salutation",
            "City",
            "State",
            "Country",
            "Rating",
        ],
        "Contacts" => &[
            "First_Name",
            "Last_Name",
            "Full_Name",
            "Email",
            "Secondary_Email",
            "Phone",
            "Mobile",
            "Title",
            "Department",
            "Lead_Source",
            "Mailing_City",
            "Account_Name",
            "Description",
            "Salutation",
        ],
        "Accounts" => &["Account_Name", "Phone", "Website", "Industry", "Annual_Revenue", "Description"],
        "Deals" => &[
            "Deal_Name",
            "Stage",
            "Probability",
            "Amount",
            "Closing_Date",
            "Type",
            "Lead_Source",
            "Account_Name",
            "Contact_Name",
            "Description",
        ],
        "Notes" => &["Note_Title", "Note_Content", "Parent_Id"],
        "Products" => &["Product_Name", "Unit_Price", "Qty_in_Stock", "Description"],
        "Vendors" => &["Vendor_Name", "Email", "Phone"],
        _ => &["Subject", "Description"],
    }
}

/// The values a picklist takes in the sandbox org (what its admin configured: CRM's defaults
/// plus the values the ServiceNow extension's mappings add); a value outside them is
/// `INVALID_DATA` with `supported_values`. Picklists left open here (`Lead_Source`, which orgs
/// extend the most) take any text.
pub(super) fn picklist(module: &str, field: &str) -> Option<Vec<&'static str>> {
    let values: &[&'static str] = match (module, field) {
        ("Leads", "Lead_Status") => &super::seed::LEAD_STATUSES,
        ("Deals", "Stage") => {
            return Some(super::seed::STAGES.iter().map(|(s, _)| *s).chain(["Closed Lost to Competition"]).collect());
        }
        ("Cases", "Status") => &["New", "Open", "On Hold", "Escalated", "Awaiting Customer", "Resolved", "Closed"],
        ("Cases", "Priority") => &["Critical", "High", "Medium", "Low"],
        ("Cases", "Case_Origin") => &["Email", "Phone", "Web", "Chat", "Social"],
        ("Purchase_Orders" | "Sales_Orders", "Status") => &["Created", "Approved", "Ordered", "Delivered", "Cancelled"],
        _ => return None,
    };
    Some(values.to_vec())
}

/// Date fields (`YYYY-MM-DD`; `INVALID_DATA` with `expected_data_type` `date` otherwise).
pub(super) fn date_field(module: &str, field: &str) -> bool {
    matches!(
        (module, field),
        ("Deals", "Closing_Date")
            | ("Contacts", "Date_of_Birth")
            | ("Purchase_Orders" | "Sales_Orders" | "Quotes" | "Invoices", "Due_Date")
            | ("Purchase_Orders", "PO_Date")
            | ("Sales_Orders", "SO_Date")
            | ("Invoices", "Invoice_Date")
            | ("Quotes", "Valid_Till")
            | ("Tasks", "Due_Date")
            | ("Products", "Sales_Start_Date" | "Sales_End_Date" | "Support_Start_Date" | "Support_Expiry_Date")
    )
}

/// Date-time fields (ISO 8601 with an offset, `2026-12-01T10:00:00+05:30`; `INVALID_DATA`
/// with `expected_data_type` `datetime` otherwise).
pub(super) fn datetime_field(module: &str, field: &str) -> bool {
    matches!(
        (module, field),
        ("Calls", "Call_Start_Time")
            | ("Events", "Start_DateTime" | "End_DateTime")
            | ("Leads" | "Contacts" | "Deals" | "Cases", "Last_Activity_Time")
    )
}

/// The module a lookup field points to (`Account_Name` on a contact → `Accounts`).
pub(super) fn lookup_module(module: &str, field: &str) -> Option<&'static str> {
    match (module, field) {
        ("Accounts", "Account_Name") | ("Vendors", "Vendor_Name") | ("Deals", "Deal_Name") => None,
        (_, "Account_Name") => Some("Accounts"),
        (_, "Contact_Name") => Some("Contacts"),
        (_, "Deal_Name") => Some("Deals"),
        (_, "Vendor_Name") => Some("Vendors"),
        (_, "Product_Name") if module != "Products" => Some("Products"),
        _ => None,
    }
}

/// What a record is called in lists of deleted records, a note's `Parent_Id` and lookups.
pub(super) fn display_name(rec: &Map<String, Value>) -> String {
    let text = |k: &str| rec.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    if let Some(n) = text("Full_Name") {
        return n.to_string();
    }
    if let Some(last) = text("Last_Name") {
        return match text("First_Name") {
            Some(first) => format!("{first} {last}"),
            None => last.to_string(),
        };
    }
    ["Account_Name", "Deal_Name", "Subject", "Product_Name", "Vendor_Name", "Campaign_Name", "Note_Title"]
        .iter()
        .find_map(|k| text(k))
        .map(str::to_string)
        .or_else(|| rec.get("id").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn valid_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Fields that must be text when given (lookups such as `Vendor_Name` on purchase orders are not).
pub(super) fn text_only(module: &str, field: &str) -> bool {
    matches!(
        field,
        "First_Name"
            | "Last_Name"
            | "Email"
            | "Secondary_Email"
            | "Phone"
            | "Mobile"
            | "Deal_Name"
            | "Subject"
            | "Product_Name"
            | "Title"
            | "Lead_Status"
            | "Lead_Source"
            | "Stage"
    ) || (field == "Company" && module == "Leads")
        || (field == "Account_Name" && module == "Accounts")
        || (field == "Vendor_Name" && module == "Vendors")
}

pub(super) fn max_length(field: &str) -> usize {
    match field {
        "First_Name" | "Salutation" => 40,
        "Last_Name" | "Title" | "Designation" => 80,
        "Email" | "Secondary_Email" | "Website" => 100,
        "Phone" | "Mobile" | "Fax" | "Home_Phone" | "Other_Phone" => 30,
        "Deal_Name" | "Vendor_Name" => 120,
        "Company" | "Account_Name" | "Subject" | "Product_Name" => 200,
        _ => 32_000,
    }
}

pub(super) fn numeric_field(field: &str) -> bool {
    matches!(
        field,
        "Amount"
            | "Probability"
            | "Annual_Revenue"
            | "No_of_Employees"
            | "Unit_Price"
            | "Qty_in_Stock"
            | "Expected_Revenue"
            | "Sub_Total"
            | "Grand_Total"
            | "Discount"
            | "Tax"
    )
}

pub(super) fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

pub(super) fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}
