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
    /// A hash of what the listing was asked for besides its paging (module, fields, per_page,
    /// `If-Modified-Since`): a token used with other ones is `TOKEN_BOUND_DATA_MISMATCH`.
    pub(super) bound: u64,
}

/// The hash a token is bound to.
pub(super) fn bound_to(module: &str, fields: &[String], per_page: usize, since_ms: Option<i64>) -> u64 {
    let text = format!("{module}|{}|{per_page}|{since_ms:?}", fields.join(","));
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl PageToken {
    pub(super) fn encode(&self) -> String {
        let raw = format!(
            "{}.{}.{}.{}.{}.{}.{:x}",
            self.sort.code(),
            if self.desc { 'd' } else { 'a' },
            self.key,
            self.id,
            self.page,
            self.issued_ms,
            self.bound
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
        let &[sort, dir, key, id, page, issued, bound] = parts.as_slice() else { return None };
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
            bound: u64::from_str_radix(bound, 16).ok()?,
        })
    }
}
