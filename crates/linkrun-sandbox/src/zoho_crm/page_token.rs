//! Paging tokens: the opaque `page_token` that continues a listing past the discrete limit,
//! and its expiry.

use super::*;

/// Where the next page starts: after `(key, id)` in the `sort` order.
pub(super) struct PageToken {
    pub(super) sort: SortBy,
    pub(super) desc: bool,
    pub(super) key: i64,
    pub(super) id: String,
    pub(super) page: usize,
    pub(super) issued_ms: i64,
}

impl PageToken {
    pub(super) fn encode(&self) -> String {
        let raw = format!(
            "{}.{}.{}.{}.{}.{}",
            self.sort.code(),
            if self.desc { 'd' } else { 'a' },
            self.key,
            self.id,
            self.page,
            self.issued_ms
        );
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub(super) fn decode(token: &str) -> Option<PageToken> {
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..token.len()).step_by(2).map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok()).collect();
        let raw = String::from_utf8(bytes?).ok()?;
        let parts: Vec<&str> = raw.split('.').collect();
        let &[sort, dir, key, id, page, issued] = parts.as_slice() else { return None };
        let sort = match sort {
            "i" => SortBy::Id,
            "c" => SortBy::Created,
            "m" => SortBy::Modified,
            _ => return None,
        };
        let desc = match dir {
            "d" => true,
            "a" => false,
            _ => return None,
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(PageToken {
            sort,
            desc,
            key: key.parse().ok()?,
            id: id.to_string(),
            page: page.parse().ok()?,
            issued_ms: issued.parse().ok()?,
        })
    }
}
