//! The link-name rule, shared by services and connections: Zoho's "service link name" rule.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A validated link name: `[a-z][a-z0-9_]{0,49}`. Only [`LinkName::parse`] makes one, so a name
/// that was never checked cannot reach the vault. It reads as a `&str` (`Deref`), and serialises,
/// displays and is stored as the plain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LinkName(String);

/// The rule, as shown in error messages.
pub const LINK_NAME_RULE: &str =
    "a link name starts with a lowercase letter and has at most 50 lowercase letters, digits and underscores";

impl LinkName {
    /// Checks `s` against the rule; the error is the rule itself.
    pub fn parse(s: &str) -> Result<LinkName, &'static str> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && s.len() <= 50 { Ok(LinkName(s.to_string())) } else { Err(LINK_NAME_RULE) }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The plain name; widths and alignment (`{:<12}`) apply as to a `str`.
impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl PartialEq<str> for LinkName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LinkName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Deref for LinkName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LinkName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for LinkName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// How serde (a service file's `link_name`) reads one: the refusal names the key and the rule.
impl TryFrom<String> for LinkName {
    type Error = String;
    fn try_from(s: String) -> Result<LinkName, String> {
        LinkName::parse(&s).map_err(|rule| format!("invalid link_name `{s}`: {rule}"))
    }
}

impl From<LinkName> for String {
    fn from(name: LinkName) -> String {
        name.0
    }
}

impl ToSql for LinkName {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

/// A stored name is checked again: a row edited by hand cannot smuggle in a bad one.
impl FromSql for LinkName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        LinkName::parse(s).map_err(|rule| FromSqlError::Other(format!("stored link name `{s}`: {rule}").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses_like_zoho() {
        for ok in ["a", "crm_us", "z9", &format!("a{}", "b".repeat(49))] {
            assert!(LinkName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "9a", "_a", "Crm", "crm-us", "crm us", "é", &format!("a{}", "b".repeat(50))] {
            assert!(LinkName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serialises_as_the_plain_name_and_reads_only_valid_ones() {
        let n = LinkName::parse("crm_us").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"crm_us\"");
        assert_eq!(format!("{n:<8}|"), "crm_us  |");
        assert_eq!(serde_json::from_str::<LinkName>("\"crm_us\"").unwrap(), n);
        let e = serde_json::from_str::<LinkName>("\"Crm\"").unwrap_err().to_string();
        assert!(e.starts_with("invalid link_name `Crm`: a link name starts"), "{e}");
    }
}
