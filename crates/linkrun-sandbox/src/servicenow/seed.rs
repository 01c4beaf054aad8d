//! Seed data: a small deterministic generator and the seeded companies, accounts, contacts,
//! models, purchase orders and cases.

use super::*;

pub(super) use crate::seed_rng::Rng;

pub(super) const FIRST_NAMES: [&str; 32] = [
    "Abel", "Beth", "Carlos", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kara", "Liam", "Maya",
    "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Amit",
    "Bianca", "Chen", "Diego", "Emma", "Fatima",
];

pub(super) const LAST_NAMES: [&str; 32] = [
    "Tuter",
    "Anderson",
    "Garcia",
    "Nakamura",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Patel",
    "Nguyen",
    "Müller",
    "O'Brien",
    "Silva",
    "Dubois",
    "Kim",
    "Novak",
    "Fischer",
    "Moreau",
    "Lopez",
    "Ivanova",
    "Baker",
    "Chandra",
    "Hughes",
    "Lindqvist",
    "Mendes",
    "Tanaka",
    "Walsh",
    "Yilmaz",
    "Zhang",
    "Brooks",
];

pub(super) const NAME_PARTS: [&str; 20] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Massive Dynamic",
    "Aperture",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Nakatomi",
    "Zorg",
];

pub(super) const NAME_SUFFIXES: [&str; 6] = ["Corp", "Inc.", "Ltd", "Group", "Holdings", "Industries"];

pub(super) const CITIES: [(&str, &str); 10] = [
    ("San Diego", "USA"),
    ("Chicago", "USA"),
    ("New York", "USA"),
    ("Austin", "USA"),
    ("London", "UK"),
    ("Berlin", "Germany"),
    ("Toronto", "Canada"),
    ("Chennai", "India"),
    ("Sydney", "Australia"),
    ("Paris", "France"),
];

pub(super) const TITLES: [&str; 8] = [
    "CEO",
    "CTO",
    "IT Manager",
    "Procurement Lead",
    "Office Manager",
    "Sales Director",
    "Support Engineer",
    "Operations Analyst",
];

pub(super) const PRODUCT_KINDS: [&str; 10] =
    ["Laptop", "Desktop", "Monitor", "Router", "Switch", "Printer", "Docking Station", "Headset", "Tablet", "Server"];

pub(super) const CASE_SUBJECTS: [&str; 10] = [
    "Cannot log in to the portal",
    "Device does not power on",
    "Invoice shows the wrong amount",
    "Request for a replacement unit",
    "Slow network after the update",
    "Printer jams on every job",
    "Warranty question",
    "Shipment arrived damaged",
    "License key not accepted",
    "Screen flickers intermittently",
];

/// A fictional phone number (555-01xx) in one of several formats.
pub(super) fn phone(rng: &mut Rng) -> String {
    let area = rng.pick(&["555", "212", "415", "312", "646", "617", "206"]);
    let line = format!("01{:02}", rng.below(100));
    match rng.below(8) {
        0 => format!("+1 {area}-555-{line}"),
        1 => format!("({area}) 555-{line}"),
        2 => format!("{area}555{line}"),
        3 => format!("{area}-555-{line}"),
        4 => format!("+1{area}555{line}"),
        5 => format!("{area}.555.{line}"),
        6 => format!("+1 555-{line}"),
        _ => format!("+1 ({area}) 555 {line}"),
    }
}

pub(super) fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .filter_map(
            |c| if c.is_ascii_alphanumeric() { Some(c.to_ascii_lowercase()) } else { (c == ' ').then_some('-') },
        )
        .collect();
    s.trim_matches('-').to_string()
}

pub(super) fn ascii_lower(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'ü' => Some('u'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

pub(super) fn obj(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect()
}

/// Every seed record: `(table, record, updated ms)`, referenced records before their referrers.
pub(super) fn seed_records(now: i64) -> Vec<(&'static str, Map<String, Value>, i64)> {
    let mut rng = Rng(0x5e41_ce00_0000_0001);
    let mut out: Vec<(&'static str, Map<String, Value>, i64)> = Vec::new();
    let push = |out: &mut Vec<(&'static str, Map<String, Value>, i64)>,
                rng: &mut Rng,
                table: &'static str,
                mut rec: Map<String, Value>|
     -> String {
        let hour = 3600 * 1000;
        let created = now - hour - rng.below(42 * 24 * hour as u64) as i64;
        let room = (now - hour - created).min(7 * 24 * hour);
        let updated = created + rng.below(room.max(0) as u64 + 1) as i64;
        let id = rng.sys_id();
        let user = rng.pick(&["admin", "abel.tuter", "beth.anglin", "system"]);
        stamp(&mut rec, table, &id, created, updated, user, rng.below(5));
        out.push((table, rec, updated));
        id
    };
    let mut names = HashSet::new();
    // Names from a part and a suffix (a place added once the plain ones run short).
    let mut company_name = |rng: &mut Rng| {
        for attempt in 0.. {
            let mut n = format!("{} {}", rng.pick(&NAME_PARTS), rng.pick(&NAME_SUFFIXES));
            if attempt > 20 {
                n = format!("{} {n}", CITIES[rng.below(CITIES.len() as u64) as usize].0);
            }
            if names.insert(n.clone()) {
                return n;
            }
        }
        String::new()
    };
    // Companies: 30 vendors (every third a manufacturer), 15 customers.
    let mut vendors = Vec::new();
    let mut manufacturers = Vec::new();
    let mut customers = Vec::new();
    for i in 0..45 {
        let name = company_name(&mut rng);
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let vendor = i < 30;
        let manufacturer = vendor && i % 3 == 0;
        let rec = obj(&[
            ("name", name.clone()),
            ("vendor", vendor.to_string()),
            ("customer", (!vendor).to_string()),
            ("manufacturer", manufacturer.to_string()),
            ("phone", phone(&mut rng)),
            ("city", city.into()),
            ("country", country.into()),
            ("website", format!("https://www.{}.example.com", slug(&name))),
            ("notes", String::new()),
        ]);
        let id = push(&mut out, &mut rng, "core_company", rec);
        if manufacturer {
            manufacturers.push((id.clone(), name.clone()));
        }
        if vendor { vendors.push(id) } else { customers.push(id) }
    }
    // Models.
    let mut models = Vec::new();
    for i in 0..40 {
        let (maker, maker_name) = manufacturers[rng.below(manufacturers.len() as u64) as usize].clone();
        let kind = rng.pick(&PRODUCT_KINDS);
        let name = format!("{kind} {}{}", rng.pick(&["X", "Pro ", "S", "Z", "Elite "]), 100 + i * 7);
        let cost = 49 + rng.below(2950);
        let rec = obj(&[
            ("name", name.clone()),
            ("display_name", format!("{maker_name} {name}")),
            ("model_number", format!("MN-{:04}", 1000 + i * 13)),
            ("manufacturer", maker),
            ("cost", format!("{cost}.00")),
            ("short_description", format!("{kind} from {maker_name}")),
            ("status", if i % 10 == 9 { "Retired".into() } else { "In Production".into() }),
        ]);
        models.push((push(&mut out, &mut rng, "cmdb_model", rec), cost));
    }
    // Accounts (primary contacts are set once the contacts exist).
    let mut accounts = Vec::new();
    for i in 0..80 {
        let name = company_name(&mut rng);
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let rec = obj(&[
            ("name", name.clone()),
            ("number", format!("ACC{:07}", 1001 + i)),
            ("phone", phone(&mut rng)),
            ("primary_contact", String::new()),
            ("customer", "true".into()),
            ("city", city.into()),
            ("country", country.into()),
            ("website", format!("https://www.{}.example.com", slug(&name))),
            ("notes", String::new()),
        ]);
        let idx = out.len();
        let id = push(&mut out, &mut rng, "customer_account", rec);
        accounts.push((id, slug(&name), idx));
    }
    // Contacts.
    let mut emails = HashSet::new();
    let mut contacts = Vec::new();
    for i in 0..300 {
        let first = rng.pick(&FIRST_NAMES);
        let last = rng.pick(&LAST_NAMES);
        let (account, domain, acc_idx) = accounts[rng.below(accounts.len() as u64) as usize].clone();
        let base = format!("{}.{}", ascii_lower(first), ascii_lower(last));
        let mut email = format!("{base}@{domain}.example.com");
        let mut n = 2;
        while !emails.insert(email.clone()) {
            email = format!("{base}{n}@{domain}.example.com");
            n += 1;
        }
        let company = if rng.below(2) == 0 {
            customers[rng.below(customers.len() as u64) as usize].clone()
        } else {
            String::new()
        };
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let rec = obj(&[
            ("first_name", first.into()),
            ("last_name", last.into()),
            ("name", format!("{first} {last}")),
            ("email", email.clone()),
            ("phone", phone(&mut rng)),
            ("mobile_phone", if rng.below(3) == 0 { String::new() } else { phone(&mut rng) }),
            ("account", account.clone()),
            ("company", company),
            ("title", rng.pick(&TITLES).into()),
            ("user_name", email.split('@').next().unwrap_or_default().to_string()),
            ("active", (i % 10 != 7).to_string()),
            ("city", city.into()),
            ("country", country.into()),
        ]);
        let id = push(&mut out, &mut rng, "customer_contact", rec);
        if let Some((_, acc, _)) = out.get_mut(acc_idx)
            && str_of(acc, "primary_contact").is_empty()
        {
            acc.insert("primary_contact".into(), Value::String(id.clone()));
        }
        contacts.push((id, account));
    }
    // Cases.
    for i in 0..200 {
        let (contact, account) = contacts[rng.below(contacts.len() as u64) as usize].clone();
        let channel = rng.pick(&["chat", "email", "phone", "phone", "social", "web"]);
        let subject = rng.pick(&CASE_SUBJECTS);
        let recording = if channel == "phone" {
            format!("https://recordings.example.com/calls/{:012x}.mp3", rng.next_u64() >> 16)
        } else {
            String::new()
        };
        let state = rng.pick(&["1", "10", "18", "6", "3"]);
        let rec = obj(&[
            ("number", format!("CS{:07}", 1001 + i)),
            ("short_description", subject.into()),
            ("description", format!("{subject}. Reported by the customer via {channel}.")),
            ("contact", contact),
            ("account", account),
            ("contact_type", channel.into()),
            ("state", state.into()),
            ("priority", rng.pick(&["1", "2", "3", "3", "4", "4"]).into()),
            ("product", models[rng.below(models.len() as u64) as usize].0.clone()),
            ("opened_at", String::new()),
            ("closed_at", String::new()),
            ("u_call_recording_url", recording),
        ]);
        push(&mut out, &mut rng, "sn_customerservice_case", rec);
        if let Some((_, r, _)) = out.last_mut() {
            let opened = str_of(r, "sys_created_on");
            r.insert("opened_at".into(), Value::String(opened.clone()));
            if state == "3" {
                r.insert("closed_at".into(), Value::String(str_of(r, "sys_updated_on")));
            }
        }
    }
    // Purchase orders and their lines.
    let mut line_no = 1001;
    for i in 0..120 {
        let vendor = vendors[rng.below(vendors.len() as u64) as usize].clone();
        let lines: Vec<(String, u64, u64)> = (0..1 + rng.below(3))
            .map(|_| {
                let (m, cost) = models[rng.below(models.len() as u64) as usize].clone();
                (m, 1 + rng.below(20), cost)
            })
            .collect();
        let total: u64 = lines.iter().map(|(_, q, c)| q * c).sum();
        let status = rng.pick(&["requested", "approved", "ordered", "received", "canceled"]);
        let rec = obj(&[
            ("number", format!("PO{:07}", 1001 + i)),
            ("short_description", format!("Purchase of {} item lines", lines.len())),
            ("description", String::new()),
            ("vendor", vendor),
            ("status", status.into()),
            ("total_cost", format!("{total}.00")),
            ("ordered", String::new()),
            ("expected_delivery", String::new()),
            ("requested_by", rng.pick(&["abel.tuter", "beth.anglin", "admin"]).into()),
        ]);
        let po = push(&mut out, &mut rng, "proc_po", rec);
        if let Some((_, r, _)) = out.last_mut() {
            let created = str_of(r, "sys_created_on");
            r.insert("ordered".into(), Value::String(created.get(..10).unwrap_or_default().to_string()));
        }
        for (model, qty, cost) in lines {
            let rec = obj(&[
                ("number", format!("POL{line_no:07}")),
                ("purchase_order", po.clone()),
                ("model", model),
                ("short_description", String::new()),
                ("ordered_quantity", qty.to_string()),
                ("cost", format!("{cost}.00")),
                ("total_cost", format!("{}.00", qty * cost)),
                ("status", status.into()),
            ]);
            line_no += 1;
            push(&mut out, &mut rng, "proc_po_item", rec);
        }
    }
    out
}

/// `n` more `customer_contact` records for volume tests (`ServiceNow::seed_contacts`): names from
/// the seed's lists, e-mails `first.last.N@bulk.example.com` (unique by N, from `from`), phones
/// in the seed's formats, times spread over the past six weeks (all at least an hour old). The
/// same `from` and `n` give the same records; only the times follow the clock.
pub(super) fn bulk_contacts(now: i64, from: usize, n: usize) -> Vec<(Map<String, Value>, i64)> {
    let mut rng = Rng(0xb01c_c047_0000_0001 ^ from as u64);
    let hour = 3600 * 1000;
    (from..from + n)
        .map(|i| {
            let first = rng.pick(&FIRST_NAMES);
            let last = rng.pick(&LAST_NAMES);
            let email = format!("{}.{}.{i}@bulk.example.com", ascii_lower(first), ascii_lower(last));
            let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
            let mut rec = obj(&[
                ("first_name", first.into()),
                ("last_name", last.into()),
                ("name", format!("{first} {last}")),
                ("email", email.clone()),
                ("phone", phone(&mut rng)),
                ("mobile_phone", String::new()),
                ("account", String::new()),
                ("company", String::new()),
                ("title", rng.pick(&TITLES).into()),
                ("user_name", email.split('@').next().unwrap_or_default().to_string()),
                ("active", "true".into()),
                ("city", city.into()),
                ("country", country.into()),
            ]);
            let created = now - hour - rng.below(42 * 24 * hour as u64) as i64;
            let room = (now - hour - created).min(7 * 24 * hour);
            let updated = created + rng.below(room.max(0) as u64 + 1) as i64;
            let id = rng.sys_id();
            stamp(&mut rec, "customer_contact", &id, created, updated, "admin", rng.below(5));
            (rec, updated)
        })
        .collect()
}
