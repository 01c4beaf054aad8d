//! Ticket creation: field checks, the contact found or created by e-mail or name, ticket numbers,
//! and the e-mail and time rules (also used by the Campaigns emulator).

use super::*;

/// A string field: absent, `null` and blank are `None`; anything but a string is an error.
pub(super) fn opt_str(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// An id field: a string of digits or a non-negative integer.
pub(super) fn opt_id(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(()),
    }
}

/// Reads an optional string field, noting an error under `/key` when it is not a string.
pub(super) fn take_str(
    fields: &Map<String, Value>,
    key: &str,
    pointer_prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    opt_str(fields, key).unwrap_or_else(|()| {
        errors.push(FieldError::invalid(&format!("{pointer_prefix}/{key}"), "The value must be a string."));
        None
    })
}

/// Validates `fields` against organisation `org` and stores the ticket (and a new contact if
/// needed); gives the ticket as the API shows it, or every field error found.
pub(super) fn insert_ticket(
    st: &mut DeskState,
    org: &str,
    fields: &Map<String, Value>,
    base_url: &str,
) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(o) = st.orgs.get(org) else { return Err(vec![FieldError::missing("/departmentId")]) };

    let subject = match opt_str(fields, "subject") {
        Ok(None) => {
            errors.push(FieldError::missing("/subject"));
            None
        }
        Ok(Some(s)) if s.chars().count() > MAX_SUBJECT_CHARS => {
            errors.push(FieldError::invalid("/subject", "The subject can be at most 255 characters long."));
            None
        }
        Ok(Some(s)) => Some(s),
        Err(()) => {
            errors.push(FieldError::invalid("/subject", "The value must be a string."));
            None
        }
    };

    match opt_id(fields, "departmentId") {
        Ok(None) => errors.push(FieldError::missing("/departmentId")),
        Ok(Some(d)) if d == o.department_id => {}
        _ => errors.push(FieldError::invalid("/departmentId", "")),
    }

    // The contact: an existing one by id, else one found by email or created from `contact`.
    enum Who {
        Existing(usize),
        New {
            first: Option<String>,
            last: String,
            email: Option<String>,
            phone: Option<String>,
            mobile: Option<String>,
        },
        Unknown,
    }
    let who = match opt_id(fields, "contactId") {
        Ok(Some(id)) => match o.contacts.iter().position(|c| c.id == id) {
            Some(i) => Who::Existing(i),
            None => {
                errors.push(FieldError::invalid("/contactId", "No contact has this id."));
                Who::Unknown
            }
        },
        Err(()) => {
            errors.push(FieldError::invalid("/contactId", "No contact has this id."));
            Who::Unknown
        }
        Ok(None) => match fields.get("contact") {
            None | Some(Value::Null) => {
                errors.push(FieldError::missing("/contactId"));
                Who::Unknown
            }
            Some(Value::Object(c)) => {
                let first = take_str(c, "firstName", "/contact", &mut errors);
                let last = take_str(c, "lastName", "/contact", &mut errors);
                let phone = take_str(c, "phone", "/contact", &mut errors);
                let mobile = take_str(c, "mobile", "/contact", &mut errors);
                let email = take_str(c, "email", "/contact", &mut errors);
                let email_ok = email.as_deref().is_none_or(valid_email);
                if !email_ok {
                    errors.push(FieldError::invalid("/contact/email", "The email address is not valid."));
                }
                let existing =
                    email.as_deref().and_then(|e| o.contacts.iter().position(|x| same_email(x.email.as_deref(), e)));
                if email.is_none() && last.is_none() {
                    // A last name that was not a string is already reported as invalid.
                    if opt_str(c, "lastName").is_ok() {
                        errors.push(FieldError::missing("/contact/lastName"));
                    }
                    Who::Unknown
                } else if !email_ok {
                    Who::Unknown
                } else if let Some(i) = existing {
                    Who::Existing(i)
                } else {
                    // Desk requires a last name; with only an email, the part before `@` stands in.
                    let last = last.unwrap_or_else(|| {
                        email.as_deref().and_then(|e| e.split('@').next()).unwrap_or("").to_string()
                    });
                    Who::New { first, last, email, phone, mobile }
                }
            }
            Some(_) => {
                errors.push(FieldError::invalid("/contact", "The contact must be an object."));
                Who::Unknown
            }
        },
    };

    let email = take_str(fields, "email", "", &mut errors);
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        errors.push(FieldError::invalid("/email", "The email address is not valid."));
    }
    let phone = take_str(fields, "phone", "", &mut errors);
    let description = take_str(fields, "description", "", &mut errors);
    let category = take_str(fields, "category", "", &mut errors);
    let sub_category = take_str(fields, "subCategory", "", &mut errors);
    let language = take_str(fields, "language", "", &mut errors);
    let classification = take_str(fields, "classification", "", &mut errors);
    let priority = take_str(fields, "priority", "", &mut errors);
    let channel = take_str(fields, "channel", "", &mut errors).unwrap_or_else(|| "Web".to_string());
    let product_id = opt_id(fields, "productId").unwrap_or_else(|()| {
        errors.push(FieldError::invalid("/productId", "The value must be an id."));
        None
    });
    let assignee_id = check_assignee(o, fields, &mut errors);
    let (status, status_type) = match take_str(fields, "status", "", &mut errors) {
        None => ("Open", "Open"),
        Some(s) => match s.trim().to_ascii_lowercase().as_str() {
            "open" => ("Open", "Open"),
            "on hold" => ("On Hold", "On Hold"),
            "escalated" => ("Escalated", "Open"),
            "closed" => ("Closed", "Closed"),
            _ => {
                errors.push(FieldError::invalid("/status", "The status must be Open, On Hold, Escalated or Closed."));
                ("Open", "Open")
            }
        },
    };
    let due_date = take_str(fields, "dueDate", "", &mut errors);
    if due_date.as_deref().is_some_and(|d| !valid_time(d)) {
        errors.push(FieldError::invalid("/dueDate", "The date must look like 2018-10-19T06:34:43.000Z."));
    }
    let cf = match fields.get("cf") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.push(FieldError::invalid("/cf", "The custom fields must be an object."));
            Map::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let now = now_time();
    let contact_idx = match who {
        Who::Existing(i) => i,
        Who::New { first, last, email, phone, mobile } => {
            let id = st.new_record_id();
            let Some(o) = st.orgs.get_mut(org) else { return Err(vec![FieldError::missing("/departmentId")]) };
            o.contacts.push(Contact {
                id,
                first_name: first,
                last_name: last,
                email,
                phone,
                mobile,
                created: now.clone(),
            });
            o.contacts.len() - 1
        }
        Who::Unknown => return Err(vec![FieldError::missing("/contactId")]),
    };
    let id = st.new_record_id();
    let Some(o) = st.orgs.get_mut(org) else { return Err(vec![FieldError::missing("/departmentId")]) };
    let contact = &o.contacts[contact_idx];
    let number = o.next_ticket_number;
    o.next_ticket_number += 1;
    let ticket = json!({
        "id": id,
        "ticketNumber": number.to_string(),
        "subject": subject,
        "description": description,
        "status": status,
        "statusType": status_type,
        "priority": priority,
        "channel": channel,
        "email": email.or_else(|| contact.email.clone()),
        "phone": phone.or_else(|| contact.phone.clone()),
        "contactId": contact.id,
        "departmentId": o.department_id,
        "assigneeId": assignee_id,
        "accountId": null,
        "teamId": null,
        "productId": product_id,
        "category": category,
        "subCategory": sub_category,
        "classification": classification,
        "language": language,
        "dueDate": due_date,
        "closedTime": (status_type == "Closed").then(|| now.clone()),
        "cf": cf.clone(),
        "customFields": cf,
        "isDeleted": false,
        "isSpam": false,
        "createdTime": now,
        "modifiedTime": now,
        "webUrl": format!("{base_url}/support/{org}/ShowHomePage.do#Cases/dv/{id}"),
    });
    if let Value::Object(m) = &ticket {
        o.tickets.push(m.clone());
    }
    Ok(ticket)
}

/// `assigneeId`: absent, or one of the organisation's agents (else an `invalid` error as the real
/// Desk gives it, with an empty message).
pub(super) fn check_assignee(o: &OrgData, fields: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    match opt_id(fields, "assigneeId") {
        Ok(None) => None,
        Ok(Some(a)) if o.agents().iter().any(|g| g.id == a) => Some(a),
        _ => {
            errors.push(FieldError::invalid("/assigneeId", ""));
            None
        }
    }
}

pub(super) fn same_email(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.trim().eq_ignore_ascii_case(b.trim()))
}

/// A plain address check: one `@`, a local part without spaces, and a dotted domain whose labels
/// are letters, digits and inner hyphens, ending in a top-level domain of two letters or more.
pub(crate) fn valid_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else { return false };
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
}

/// `YYYY-MM-DDTHH:MM:SSZ` or with milliseconds, `.sssZ`.
pub(super) fn valid_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    shape && (&s[19..] == "Z" || (s.len() == 24 && b[19] == b'.' && digits(20..23) && b[23] == b'Z'))
}

/// Now in Desk's time format, `2018-10-19T06:34:43.000Z` (UTC).
pub(crate) fn now_time() -> String {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format_time(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, by the civil-from-days algorithm.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
