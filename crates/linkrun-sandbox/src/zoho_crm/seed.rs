//! Seed data: a small deterministic generator and the names, companies and values of the seeded
//! Leads, Contacts and Deals.

use super::*;

pub(super) use crate::seed_rng::{Rng, fnv1a};

pub(super) const FIRST_NAMES: [&str; 40] = [
    "John",
    "Patricia",
    "Michael",
    "Linda",
    "James",
    "Barbara",
    "Robert",
    "Elizabeth",
    "David",
    "Jennifer",
    "William",
    "Maria",
    "Richard",
    "Susan",
    "Joseph",
    "Margaret",
    "Thomas",
    "Dorothy",
    "Charles",
    "Lisa",
    "Priya",
    "Arjun",
    "Ananya",
    "Rahul",
    "Kavya",
    "Vikram",
    "Meera",
    "Sanjay",
    "Aiko",
    "Kenji",
    "Sofia",
    "Lucas",
    "Chloe",
    "Mateo",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Ethan",
];

pub(super) const LAST_NAMES: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Boyle",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Sharma",
    "Iyer",
    "Reddy",
    "Nair",
    "Patel",
    "Gupta",
    "Tanaka",
    "Sato",
    "Rossi",
    "Müller",
];

pub(super) const COMPANIES: [&str; 24] = [
    "Zylker Corp",
    "Zylker Inc",
    "Zylker Systems",
    "Zylker Technologies",
    "Zylker Foods",
    "Zylker Logistics",
    "Zillum",
    "Zillum Labs",
    "Zoomcorp",
    "Zenith Traders",
    "Chemel",
    "Benton",
    "Chanay",
    "Feltz Printing Service",
    "Printing Dimensions",
    "Commercial Press",
    "Morlong Associates",
    "Chapman",
    "Grayson",
    "Dal Tile",
    "Truhlar And Truhlar Attys",
    "Rangoni Of Florence",
    "Kwik Kopy Printing",
    "Oh My Goodknits Inc",
];

pub(super) const LEAD_STATUSES: [&str; 8] = [
    "Not Contacted",
    "Attempted to Contact",
    "Contact in Future",
    "Contacted",
    "Junk Lead",
    "Lost Lead",
    "Pre-Qualified",
    "Not Qualified",
];

pub(super) const LEAD_SOURCES: [&str; 12] = [
    "Advertisement",
    "Cold Call",
    "Employee Referral",
    "External Referral",
    "Online Store",
    "Partner",
    "Public Relations",
    "Seminar Partner",
    "Trade Show",
    "Web Download",
    "Web Research",
    "Chat",
];

pub(super) const INDUSTRIES: [&str; 8] = [
    "Technology",
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Financial Services",
    "Education",
    "Government/Military",
    "Real Estate",
];

pub(super) const TITLES: [&str; 8] = [
    "CEO",
    "CTO",
    "VP Sales",
    "Sales Manager",
    "Marketing Manager",
    "Purchasing Manager",
    "Operations Director",
    "IT Administrator",
];

pub(super) const STAGES: [(&str, i64); 8] = [
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 40),
    ("Identify Decision Makers", 60),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
];

pub(super) fn domain_of(company: &str) -> String {
    let d: String = company.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    format!("{d}.com")
}

pub(super) fn ascii_name(s: &str) -> String {
    s.chars()
        .map(|c| if c == 'ü' { 'u' } else { c })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

pub(super) fn phone(rng: &mut Rng) -> String {
    format!("+1-555-{:03}-{:04}", 100 + rng.below(900), rng.below(10_000))
}

/// `first.last@domain`, with a number added until it is not in `taken` (which it joins).
pub(super) fn unique_email(first: &str, last: &str, domain: &str, taken: &mut HashSet<String>) -> String {
    let base = format!("{}.{}", ascii_name(first), ascii_name(last));
    let mut email = format!("{base}@{domain}");
    let mut n = 2;
    while taken.contains(&email) {
        email = format!("{base}{n}@{domain}");
        n += 1;
    }
    taken.insert(email.clone());
    email
}

pub(super) fn seed_lead(rng: &mut Rng, emails: &mut HashSet<String>) -> Map<String, Value> {
    let (first, last, company) = (rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES), rng.pick(&COMPANIES));
    let email = unique_email(first, last, &domain_of(company), emails);
    let mut m = Map::new();
    m.insert("First_Name".into(), first.into());
    m.insert("Last_Name".into(), last.into());
    m.insert("Full_Name".into(), format!("{first} {last}").into());
    m.insert("Company".into(), company.into());
    m.insert("Email".into(), email.into());
    m.insert("Phone".into(), phone(rng).into());
    m.insert("Mobile".into(), phone(rng).into());
    m.insert("Lead_Status".into(), rng.pick(&LEAD_STATUSES).into());
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m.insert("Industry".into(), rng.pick(&INDUSTRIES).into());
    m.insert("Designation".into(), rng.pick(&TITLES).into());
    m.insert("No_of_Employees".into(), json!(10 * (1 + rng.below(500))));
    m
}

pub(super) fn seed_contact(rng: &mut Rng, emails: &mut HashSet<String>) -> Map<String, Value> {
    let (first, last, company) = (rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES), rng.pick(&COMPANIES));
    let email = unique_email(first, last, &domain_of(company), emails);
    let mut m = Map::new();
    m.insert("First_Name".into(), first.into());
    m.insert("Last_Name".into(), last.into());
    m.insert("Full_Name".into(), format!("{first} {last}").into());
    m.insert("Email".into(), email.into());
    m.insert("Phone".into(), phone(rng).into());
    m.insert("Mobile".into(), phone(rng).into());
    m.insert("Title".into(), rng.pick(&TITLES).into());
    m.insert(
        "Department".into(),
        rng.pick(&["Sales", "Marketing", "Finance", "Operations", "IT", "Purchasing"]).into(),
    );
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m.insert(
        "Mailing_City".into(),
        rng.pick(&["Austin", "Pleasanton", "Chennai", "New York", "Seattle", "Denver"]).into(),
    );
    m
}

pub(super) fn seed_deal(rng: &mut Rng, now: i64, offset_secs: i64) -> Map<String, Value> {
    let company = rng.pick(&COMPANIES);
    let what = rng.pick(&["Renewal", "Expansion", "Pilot", "Enterprise License", "Services", "Upgrade"]);
    let (stage, probability) = STAGES[rng.below(STAGES.len() as u64) as usize];
    let closing = now + (rng.below(120) as i64 - 60) * 86_400_000;
    let mut m = Map::new();
    m.insert("Deal_Name".into(), format!("{company} - {what}").into());
    m.insert("Stage".into(), stage.into());
    m.insert("Probability".into(), probability.into());
    m.insert("Amount".into(), json!(500 * (2 + rng.below(199))));
    m.insert("Closing_Date".into(), format_date(closing, offset_secs).into());
    m.insert("Type".into(), rng.pick(&["New Business", "Existing Business"]).into());
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m
}
