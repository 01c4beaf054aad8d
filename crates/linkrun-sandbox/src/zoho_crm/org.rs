//! The organisation around the records: `GET /org`, its users (`GET /users`, `GET /users/{id}`)
//! and its org variables (`GET /settings/variables[/{id_or_api_name}]`, what Deluge's
//! `zoho.crm.getOrgVariable` reads), all deterministic per organisation (`docs/api-facts.md` §2.4e).

use super::*;

/// The IANA name shown for a UTC offset.
fn time_zone(offset_secs: i64) -> String {
    match offset_secs {
        0 => "Etc/UTC".into(),
        -25_200 => "America/Los_Angeles".into(),
        19_800 => "Asia/Kolkata".into(),
        s if s % 3600 == 0 => format!("Etc/GMT{:+}", -s / 3600),
        _ => "Etc/UTC".into(),
    }
}

impl OrgCtx {
    fn domain(&self) -> String {
        self.user["email"].as_str().and_then(|e| e.split_once('@')).map_or("example.com", |(_, d)| d).to_string()
    }

    fn org_id(&self) -> String {
        (self.prefix * ID_SPLIT + 400_001).to_string()
    }

    /// The organisation as `GET /org` shows it.
    pub(super) fn org_json(&self) -> Value {
        let (currency, iso, country, country_code, locale) = match self.org.as_str() {
            "in" => ("₹", "INR", "India", "IN", "en_IN"),
            "us" => ("$", "USD", "United States", "US", "en_US"),
            _ => ("$", "USD", "United States", "US", "en_US"),
        };
        let company = match self.org.as_str() {
            "us" => "Zylker Corp".to_string(),
            "in" => "Zylker India".to_string(),
            o => format!("Zylker ({o})"),
        };
        json!({
            "id": self.org_id(),
            "company_name": company,
            "alias": Value::Null,
            "primary_email": self.user["email"],
            "primary_zuid": (self.prefix * 100 + 1).to_string(),
            "zgid": (self.prefix * 100 + 2).to_string(),
            "domain_name": format!("org{}", self.prefix * 100 + 2),
            "time_zone": time_zone(self.offset_secs),
            "currency_symbol": currency,
            "iso_code": iso,
            "currency_locale": locale,
            "currency": iso,
            "country": country,
            "country_code": country_code,
            "phone": "+1-555-010-0100",
            "website": format!("https://www.{}", self.domain()),
            "type": "production",
            "mc_status": false,
            "gapps_enabled": false,
            "privacy_settings": true,
            "license_details": {"paid": true, "paid_type": "enterprise", "users_license_purchased": 10, "trial_expiry": Value::Null},
        })
    }

    /// The org variables: `(api_name, name, type, value, description)`.
    fn variables(&self) -> Vec<Value> {
        let group =
            json!({"api_name": "General", "name": "General", "id": (self.prefix * ID_SPLIT + 450_001).to_string()});
        [
            (
                "Support_Email",
                "Support Email",
                "email",
                json!(format!("support@{}", self.domain())),
                "Where customers write to",
            ),
            ("Discount_Rate", "Discount Rate", "integer", json!(10), "Default discount in percent"),
            (
                "Region_Code",
                "Region Code",
                "text",
                json!(format!("{}-01", self.org.to_ascii_uppercase())),
                "Sales region of this organisation",
            ),
        ]
        .iter()
        .enumerate()
        .map(|(k, (api, name, ty, value, desc))| {
            json!({
                "api_name": api,
                "name": name,
                "id": (self.prefix * ID_SPLIT + 460_001 + k as u64).to_string(),
                "type": ty,
                "value": value,
                "description": desc,
                "variable_group": group,
            })
        })
        .collect()
    }
}

impl OrgUser {
    /// The user as `GET /users` shows them.
    fn to_json(&self, ctx: &OrgCtx) -> Value {
        let (role, profile) = if self.admin { ("CEO", "Administrator") } else { ("Manager", "Standard") };
        let ids = |n: u64| (ctx.prefix * ID_SPLIT + n).to_string();
        json!({
            "id": self.id,
            "full_name": self.full_name(),
            "first_name": self.first,
            "last_name": self.last,
            "email": self.email,
            "status": if self.active { "active" } else { "disabled" },
            "confirm": true,
            "role": {"name": role, "id": ids(if self.admin { 420_001 } else { 420_002 })},
            "profile": {"name": profile, "id": ids(if self.admin { 430_001 } else { 430_002 })},
            "time_zone": time_zone(ctx.offset_secs),
            "created_by": short_user(Some(&ctx.user)),
        })
    }
}

impl Crm {
    pub(super) fn org_info(&self, org: &str) -> Response {
        json_value(StatusCode::OK, &json!({"org": [self.org_ctx(org).org_json()]}))
    }

    /// `GET /users?type=…` and `GET /users/{id}`.
    pub(super) fn users(&self, org: &str, id: Option<&str>, query: Option<&str>) -> Response {
        let ctx = self.org_ctx(org);
        let users = ctx.users();
        if let Some(id) = id {
            return match users.iter().find(|u| u.id == id) {
                Some(u) => json_value(StatusCode::OK, &json!({"users": [u.to_json(&ctx)]})),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "the id given seems to be invalid",
                    json!({"resource_path_index": 1}),
                ),
            };
        }
        let p = Params::parse(query);
        let keep: fn(&OrgUser) -> bool = match p.get("type").unwrap_or("AllUsers") {
            "AllUsers" => |_| true,
            "ActiveUsers" | "ActiveConfirmedUsers" | "ConfirmedUsers" => |u| u.active,
            "DeactiveUsers" => |u| !u.active,
            "AdminUsers" | "ActiveConfirmedAdmins" | "CurrentUser" => |u| u.admin,
            "NotConfirmedUsers" | "DeletedUsers" => |_| false,
            _ => return bad_param("type"),
        };
        let (page, per_page) = match parse_paging(&p, self.inner.cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return *r,
        };
        let all: Vec<Value> = users.iter().filter(|u| keep(u)).map(|u| u.to_json(&ctx)).collect();
        let more = all.len() > page * per_page;
        let shown: Vec<Value> = all.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        if shown.is_empty() {
            return StatusCode::NO_CONTENT.into_response();
        }
        let info = json!({"per_page": per_page, "count": shown.len(), "page": page, "more_records": more});
        json_value(StatusCode::OK, &json!({"users": shown, "info": info}))
    }

    /// `GET /settings/variables` and `GET /settings/variables/{id or api_name}`.
    pub(super) fn variables(&self, org: &str, key: Option<&str>) -> Response {
        let vars = self.org_ctx(org).variables();
        let Some(key) = key else { return json_value(StatusCode::OK, &json!({"variables": vars})) };
        match vars
            .into_iter()
            .find(|v| v["id"] == key || v["api_name"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(key)))
        {
            Some(v) => json_value(StatusCode::OK, &json!({"variables": [v]})),
            None => error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "the id given seems to be invalid",
                json!({"resource_path_index": 2}),
            ),
        }
    }
}
