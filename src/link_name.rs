//! The link-name rule, shared by services and connections: Zoho's "service link name" rule.

use std::fmt;

/// A validated link name: `[a-z][a-z0-9_]{0,49}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
}
