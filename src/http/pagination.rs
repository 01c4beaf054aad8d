//! Pagination: how the pages of a listing follow each other. The `[pagination]` table of a
//! service (and the `pagination` map of a script's request, over it) names a style and where
//! the records and the end signal are in each answer; [`Paging`] then says, from one answer,
//! what the next request changes, or that the listing is over. The script layer
//! (`invoke_pages`, `invoke_records`) sends the requests; this module only decides, so the
//! rules are testable without a server or a script.
//!
//! | style             | next page                                                        | end                                   |
//! |-------------------|------------------------------------------------------------------|---------------------------------------|
//! | `zoho_page_token` | `page_token` = `info.next_page_token`, else `page` + 1           | `info.more_records` is not `true`     |
//! | `link_next`       | the URL of the `Link` header's `rel="next"`                     | no `rel="next"`                       |
//! | `offset`          | `offset` + the records of this page                             | a page shorter than `page_size`       |
//! | `cursor`          | `cursor` = the value at `next_cursor`                            | `next_cursor` absent, null or empty   |
//!
//! Every style also ends on a page without records, and a next token, cursor or URL equal to the
//! one just used is an error (the API would send the same page forever).

use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr, VariantNames};

/// The largest `page_size` a service or request may ask for.
pub const MAX_PAGE_SIZE: u64 = 100_000;

/// Zoho CRM's page size when the table sets none (`per_page` is at most 200).
pub const ZOHO_PAGE_SIZE: u64 = 200;

/// The page size of the `offset` style when the table sets none.
pub const OFFSET_PAGE_SIZE: u64 = 100;

/// The pagination styles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum PageStyle {
    /// Zoho CRM: `page_token` from `info.next_page_token` while `info.more_records`, else `page`.
    ZohoPageToken,
    /// The `Link: <URL>; rel="next"` header (RFC 8288): ServiceNow, GitHub and many others.
    LinkNext,
    /// An offset and a limit in the query (Zoho Desk `from`/`limit`, `sysparm_offset`).
    Offset,
    /// An opaque cursor read from the answer and sent back as a parameter.
    Cursor,
}

impl TryFrom<String> for PageStyle {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|_| format!("unknown pagination style `{s}`: use one of {}", PageStyle::VARIANTS.join(", ")))
    }
}

/// The `[pagination]` table of a service, and the map of a request's `pagination` key. Keys
/// left out take the style's defaults (see [`Paging::resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaginationDef {
    /// The style (required in a service; a request without one keeps the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<PageStyle>,
    /// Dotted path of the records list in each answer (`data`, `result`); `""` is the answer
    /// itself. Default: `data` for `zoho_page_token`, the answer itself otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// The query parameter of the page size (`per_page`; ServiceNow `sysparm_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size_param: Option<String>,
    /// Records asked for per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// `zoho_page_token`: the page-number parameter used while there is no token (`page`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    /// `zoho_page_token`: the token parameter (`page_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_param: Option<String>,
    /// `zoho_page_token`: path of the "more records" flag (`info.more_records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<String>,
    /// `zoho_page_token`: path of the next token (`info.next_page_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// `offset`: the offset parameter (`offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_param: Option<String>,
    /// `offset`: the limit parameter (`limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_param: Option<String>,
    /// `offset`: the offset of the first record (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_offset: Option<u64>,
    /// `cursor`: the cursor parameter (`cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    /// `cursor`: path of the next cursor in the answer (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl PaginationDef {
    /// The keys set, by name, with the styles each belongs to.
    fn keys(&self) -> Vec<(&'static str, &'static [PageStyle])> {
        use PageStyle::*;
        const ALL: &[PageStyle] = &[ZohoPageToken, LinkNext, Offset, Cursor];
        const SIZED: &[PageStyle] = &[ZohoPageToken, LinkNext, Cursor];
        [
            ("records", self.records.is_some(), ALL),
            ("page_size", self.page_size.is_some(), ALL),
            ("page_size_param", self.page_size_param.is_some(), SIZED),
            ("page_param", self.page_param.is_some(), &[ZohoPageToken][..]),
            ("token_param", self.token_param.is_some(), &[ZohoPageToken][..]),
            ("more", self.more.is_some(), &[ZohoPageToken][..]),
            ("next_token", self.next_token.is_some(), &[ZohoPageToken][..]),
            ("offset_param", self.offset_param.is_some(), &[Offset][..]),
            ("limit_param", self.limit_param.is_some(), &[Offset][..]),
            ("first_offset", self.first_offset.is_some(), &[Offset][..]),
            ("cursor_param", self.cursor_param.is_some(), &[Cursor][..]),
            ("next_cursor", self.next_cursor.is_some(), &[Cursor][..]),
        ]
        .into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(k, _, styles)| (k, styles))
        .collect()
    }

    /// Checks a table as a service declares it: `style` is required. The error is the end of
    /// a sentence naming the fault and the fix.
    pub fn check(&self) -> Result<(), String> {
        if self.style.is_none() {
            return Err(format!(
                "`style` is missing: give style = {}",
                PageStyle::VARIANTS.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
            ));
        }
        self.check_keys()
    }

    /// Checks the keys against the style (when one is set) and their values.
    pub fn check_keys(&self) -> Result<(), String> {
        if let Some(style) = self.style
            && let Some((key, styles)) = self.keys().into_iter().find(|(_, s)| !s.contains(&style))
        {
            let owners: Vec<String> = styles.iter().map(|s| format!("`{s}`")).collect();
            return Err(format!(
                "`{key}` is not a key of style `{style}` (it belongs to {}): remove it, or change `style`",
                owners.join(", ")
            ));
        }
        if let Some(n) = self.page_size.filter(|n| !(1..=MAX_PAGE_SIZE).contains(n)) {
            return Err(format!(
                "`page_size` is {n}: give 1 to {MAX_PAGE_SIZE} (at most what the API serves per page)"
            ));
        }
        let names = [
            ("page_size_param", &self.page_size_param),
            ("page_param", &self.page_param),
            ("token_param", &self.token_param),
            ("offset_param", &self.offset_param),
            ("limit_param", &self.limit_param),
            ("cursor_param", &self.cursor_param),
        ];
        if let Some((key, _)) = names.iter().find(|(_, v)| v.as_deref().is_some_and(|s| s.trim().is_empty())) {
            return Err(format!("`{key}` is empty: give the name of the query parameter"));
        }
        let paths = [("more", &self.more), ("next_token", &self.next_token), ("next_cursor", &self.next_cursor)];
        for (key, v) in paths.iter().chain([("records", &self.records)].iter()) {
            let Some(p) = v.as_deref() else { continue };
            if *key == "records" && p.is_empty() {
                continue;
            }
            if p.split('.').any(|s| s.trim().is_empty()) {
                return Err(format!(
                    "`{key}` is `{p}`, which is not a dotted path: give keys joined by dots, such as `info.next_page_token`"
                ));
            }
        }
        Ok(())
    }

    /// This table with the keys of `over` (a request's) replacing its own. When `over` names
    /// another style, it replaces the whole table.
    pub fn with(&self, over: &PaginationDef) -> PaginationDef {
        if over.style.is_some() && over.style != self.style {
            return over.clone();
        }
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        PaginationDef {
            style: over.style.or(self.style),
            records: pick(&self.records, &over.records),
            page_size_param: pick(&self.page_size_param, &over.page_size_param),
            page_size: over.page_size.or(self.page_size),
            page_param: pick(&self.page_param, &over.page_param),
            token_param: pick(&self.token_param, &over.token_param),
            more: pick(&self.more, &over.more),
            next_token: pick(&self.next_token, &over.next_token),
            offset_param: pick(&self.offset_param, &over.offset_param),
            limit_param: pick(&self.limit_param, &over.limit_param),
            first_offset: over.first_offset.or(self.first_offset),
            cursor_param: pick(&self.cursor_param, &over.cursor_param),
            next_cursor: pick(&self.next_cursor, &over.next_cursor),
        }
    }
}

/// A dotted path in an answer, split into keys (empty: the answer itself).
pub type Path = Vec<String>;

fn path(p: &str) -> Path {
    if p.is_empty() { Vec::new() } else { p.split('.').map(|s| s.trim().to_string()).collect() }
}

/// The resolved plan of a listing: a style and every key it needs, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Paging {
    /// The style.
    pub style: PageStyle,
    /// Where the records are.
    pub records: Path,
    /// The page-size parameter, if one is sent.
    pub page_size_param: Option<String>,
    /// The page size asked for (and, for `offset`, the length below which a page is the last).
    pub page_size: Option<u64>,
    /// `zoho_page_token`: the page-number parameter.
    pub page_param: String,
    /// `zoho_page_token`: the number of the first page (1, or the `page` the script sent).
    pub first_page: u64,
    /// `zoho_page_token`: the token parameter; `cursor`: the cursor parameter.
    pub token_param: String,
    /// `zoho_page_token`: the "more records" flag.
    pub more: Path,
    /// `zoho_page_token`: the next token; `cursor`: the next cursor.
    pub next_token: Path,
    /// `offset`: the offset parameter.
    pub offset_param: String,
    /// `offset`: the first offset.
    pub first_offset: u64,
}

/// What the next request changes, or the end of the listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The listing is over.
    End,
    /// Set these query parameters and remove those.
    Params {
        /// Parameters to set.
        set: Vec<(String, String)>,
        /// Parameters to remove.
        remove: Vec<String>,
    },
    /// Request this URL (from a `Link` header) instead, without the original parameters.
    Url(String),
    /// The API gave the same token, cursor or URL as for the page just fetched: `what` is the
    /// key (`info.next_page_token`, `rel="next"`).
    Repeated {
        /// What repeated.
        what: String,
    },
}

/// What [`Paging::next`] reads from an answer.
pub trait Answer {
    /// The value at `path` as text (a string, or a number written out); `None` when it is
    /// absent or null.
    fn text(&self, path: &[String]) -> Option<String>;
    /// The value at `path` when it is a boolean.
    fn flag(&self, path: &[String]) -> Option<bool>;
    /// A response header (lower-case name).
    fn header(&self, name: &str) -> Option<&str>;
}

/// Where a listing is: pages fetched, the next offset, the last token or cursor sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Pages fetched so far.
    pub pages: u64,
    /// The offset of the next page (`offset` style).
    pub offset: u64,
    /// The token, cursor or URL of the page just fetched.
    pub last: Option<String>,
}

impl Paging {
    /// The plan of a listing from the service's table and the request's, the request's keys
    /// over the service's. `Ok(None)`: neither names a style.
    pub fn resolve(service: Option<&PaginationDef>, request: Option<&PaginationDef>) -> Result<Option<Paging>, String> {
        let def = match (service, request) {
            (Some(s), Some(r)) => s.with(r),
            (Some(s), None) => s.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => return Ok(None),
        };
        let Some(style) = def.style else { return Ok(None) };
        def.check_keys()?;
        let text = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        let mut p = Paging {
            style,
            records: path(def.records.as_deref().unwrap_or(if style == PageStyle::ZohoPageToken {
                "data"
            } else {
                ""
            })),
            page_size_param: def.page_size_param.clone(),
            page_size: def.page_size,
            page_param: text(&def.page_param, "page"),
            first_page: 1,
            token_param: text(&def.token_param, "page_token"),
            more: path(def.more.as_deref().unwrap_or("info.more_records")),
            next_token: path(def.next_token.as_deref().unwrap_or("info.next_page_token")),
            offset_param: text(&def.offset_param, "offset"),
            first_offset: def.first_offset.unwrap_or(0),
        };
        match style {
            PageStyle::ZohoPageToken => {
                p.page_size_param.get_or_insert_with(|| "per_page".into());
                p.page_size.get_or_insert(ZOHO_PAGE_SIZE);
            }
            PageStyle::Offset => {
                p.page_size_param = Some(text(&def.limit_param, "limit"));
                p.page_size.get_or_insert(OFFSET_PAGE_SIZE);
            }
            PageStyle::Cursor => {
                p.token_param = text(&def.cursor_param, "cursor");
                let Some(c) = &def.next_cursor else {
                    return Err(
                        "style `cursor` needs `next_cursor`, the path of the next cursor in each answer: give it, e.g. `next_cursor = \"response_metadata.next_cursor\"`"
                            .into(),
                    );
                };
                p.next_token = path(c);
            }
            PageStyle::LinkNext => {}
        }
        if p.page_size_param.is_some() != p.page_size.is_some() {
            let missing = if p.page_size.is_none() { "page_size" } else { "page_size_param" };
            return Err(format!("`page_size_param` and `page_size` go together: give `{missing}` too, or neither"));
        }
        Ok(Some(p))
    }

    /// The parameters of the first request: the page size, and for `offset` the first offset.
    pub fn first(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let (Some(name), Some(size)) = (&self.page_size_param, self.page_size) {
            out.push((name.clone(), size.to_string()));
        }
        if self.style == PageStyle::Offset {
            out.push((self.offset_param.clone(), self.first_offset.to_string()));
        }
        out
    }

    /// The step after a page with `count` records and `answer`, moving `progress` on.
    pub fn next(&self, progress: &mut Progress, answer: &dyn Answer, count: usize) -> Step {
        progress.pages += 1;
        if count == 0 {
            return Step::End;
        }
        let mut fresh = |value: String, what: String| {
            if progress.last.as_deref() == Some(value.as_str()) {
                return Err(Step::Repeated { what });
            }
            progress.last = Some(value.clone());
            Ok(value)
        };
        match self.style {
            PageStyle::ZohoPageToken => {
                if answer.flag(&self.more) != Some(true) {
                    return Step::End;
                }
                match answer.text(&self.next_token).filter(|t| !t.is_empty()) {
                    Some(token) => match fresh(token, self.next_token.join(".")) {
                        Ok(token) => Step::Params {
                            set: vec![(self.token_param.clone(), token)],
                            remove: vec![self.page_param.clone()],
                        },
                        Err(step) => step,
                    },
                    None => Step::Params {
                        set: vec![(self.page_param.clone(), (self.first_page + progress.pages).to_string())],
                        remove: vec![self.token_param.clone()],
                    },
                }
            }
            PageStyle::LinkNext => match answer.header("link").and_then(link_next) {
                Some(url) => match fresh(url, "rel=\"next\"".into()) {
                    Ok(url) => Step::Url(url),
                    Err(step) => step,
                },
                None => Step::End,
            },
            PageStyle::Offset => {
                progress.offset = progress.offset.saturating_add(count as u64);
                if self.page_size.is_some_and(|size| (count as u64) < size) {
                    return Step::End;
                }
                Step::Params { set: vec![(self.offset_param.clone(), progress.offset.to_string())], remove: Vec::new() }
            }
            PageStyle::Cursor => match answer.text(&self.next_token).filter(|c| !c.is_empty()) {
                Some(cursor) => match fresh(cursor, self.next_token.join(".")) {
                    Ok(cursor) => Step::Params { set: vec![(self.token_param.clone(), cursor)], remove: Vec::new() },
                    Err(step) => step,
                },
                None => Step::End,
            },
        }
    }
}

/// The target of the first `rel="next"` link of a `Link` header (RFC 8288): `<URL>; rel="next"`,
/// links separated by commas, `rel` quoted or not and possibly listing several relations.
pub fn link_next(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let tail = &after[close + 1..];
        // The parameters run to the next link (a comma before the next `<`).
        let end = tail.find('<').map(|i| tail[..i].rfind(',').unwrap_or(i)).unwrap_or(tail.len());
        let params = &tail[..end];
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else { return false };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        rest = &tail[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        values: HashMap<String, serde_json::Value>,
        link: Option<String>,
    }

    impl Answer for Fake {
        fn text(&self, path: &[String]) -> Option<String> {
            match self.values.get(&path.join("."))? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        }
        fn flag(&self, path: &[String]) -> Option<bool> {
            self.values.get(&path.join(".")).and_then(|v| v.as_bool())
        }
        fn header(&self, name: &str) -> Option<&str> {
            (name == "link").then_some(self.link.as_deref()).flatten()
        }
    }

    fn fake(pairs: &[(&str, serde_json::Value)]) -> Fake {
        Fake { values: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), link: None }
    }

    fn plan(style: PageStyle) -> Paging {
        Paging::resolve(Some(&PaginationDef { style: Some(style), ..Default::default() }), None).unwrap().unwrap()
    }

    #[test]
    fn zoho_follows_the_token_then_falls_back_to_page_and_ends_on_more_records() {
        let p = plan(PageStyle::ZohoPageToken);
        assert_eq!(p.first(), [("per_page".to_string(), "200".to_string())]);
        assert_eq!(p.records, ["data"]);
        let mut pr = Progress::default();
        let a = fake(&[("info.more_records", true.into()), ("info.next_page_token", "t1".into())]);
        assert_eq!(
            p.next(&mut pr, &a, 200),
            Step::Params { set: vec![("page_token".into(), "t1".into())], remove: vec!["page".into()] }
        );
        let a = fake(&[("info.more_records", true.into()), ("info.next_page_token", serde_json::Value::Null)]);
        assert_eq!(
            p.next(&mut pr, &a, 200),
            Step::Params { set: vec![("page".into(), "3".into())], remove: vec!["page_token".into()] }
        );
        assert_eq!(p.next(&mut pr, &fake(&[("info.more_records", false.into())]), 10), Step::End);
        assert_eq!(p.next(&mut Progress::default(), &fake(&[("info.more_records", true.into())]), 0), Step::End);
        let a = fake(&[("info.more_records", true.into()), ("info.next_page_token", "same".into())]);
        let mut pr = Progress::default();
        assert!(matches!(p.next(&mut pr, &a, 5), Step::Params { .. }));
        assert_eq!(p.next(&mut pr, &a, 5), Step::Repeated { what: "info.next_page_token".into() });
    }

    #[test]
    fn offset_moves_by_the_records_and_ends_on_a_short_page() {
        let def = PaginationDef {
            style: Some(PageStyle::Offset),
            offset_param: Some("sysparm_offset".into()),
            limit_param: Some("sysparm_limit".into()),
            page_size: Some(500),
            records: Some("result".into()),
            ..Default::default()
        };
        let p = Paging::resolve(Some(&def), None).unwrap().unwrap();
        assert_eq!(
            p.first(),
            [("sysparm_limit".to_string(), "500".to_string()), ("sysparm_offset".to_string(), "0".to_string())]
        );
        let mut pr = Progress::default();
        let a = Fake::default();
        assert_eq!(
            p.next(&mut pr, &a, 500),
            Step::Params { set: vec![("sysparm_offset".into(), "500".into())], remove: vec![] }
        );
        assert_eq!(p.next(&mut pr, &a, 499), Step::End);
    }

    #[test]
    fn link_next_and_cursor() {
        let p = plan(PageStyle::LinkNext);
        assert!(p.first().is_empty());
        let mut a = Fake {
            link: Some(r#"<https://x/t?sysparm_offset=0>;rel="first",<https://x/t?a=1,2&sysparm_offset=10>;rel="next",<https://x/t?o=90>;rel="last""#.into()),
            ..Default::default()
        };
        let mut pr = Progress::default();
        assert_eq!(p.next(&mut pr, &a, 10), Step::Url("https://x/t?a=1,2&sysparm_offset=10".into()));
        assert_eq!(p.next(&mut pr, &a, 10), Step::Repeated { what: "rel=\"next\"".into() });
        a.link = Some(r#"<https://x/t>; rel="first""#.into());
        assert_eq!(p.next(&mut Progress::default(), &a, 10), Step::End);
        let def = PaginationDef {
            style: Some(PageStyle::Cursor),
            next_cursor: Some("meta.next".into()),
            ..Default::default()
        };
        let p = Paging::resolve(Some(&def), None).unwrap().unwrap();
        let mut pr = Progress::default();
        assert_eq!(
            p.next(&mut pr, &fake(&[("meta.next", "c2".into())]), 3),
            Step::Params { set: vec![("cursor".into(), "c2".into())], remove: vec![] }
        );
        assert_eq!(p.next(&mut pr, &fake(&[("meta.next", "".into())]), 3), Step::End);
    }

    #[test]
    fn link_headers_of_several_forms() {
        assert_eq!(link_next(r#"<a>; rel=next"#).as_deref(), Some("a"));
        assert_eq!(link_next(r#"<a>; rel="prev", <b>; REL="last next""#).as_deref(), Some("b"));
        assert_eq!(link_next(r#"<a>; title="x, y"; rel="prev""#), None);
        assert_eq!(link_next("garbage"), None);
        assert_eq!(link_next("<unclosed; rel=next"), None);
        assert_eq!(link_next(""), None);
    }

    #[test]
    fn keys_are_checked_against_the_style_and_requests_override_services() {
        let e = PaginationDef::default().check().unwrap_err();
        assert!(e.starts_with("`style` is missing: give style = \"zoho_page_token\""), "{e}");
        let bad = PaginationDef { style: Some(PageStyle::Offset), token_param: Some("t".into()), ..Default::default() };
        assert_eq!(
            bad.check().unwrap_err(),
            "`token_param` is not a key of style `offset` (it belongs to `zoho_page_token`): remove it, or change `style`"
        );
        let bad = PaginationDef { style: Some(PageStyle::LinkNext), page_size: Some(0), ..Default::default() };
        assert!(bad.check().unwrap_err().starts_with("`page_size` is 0: give 1 to 100000"));
        let bad =
            PaginationDef { style: Some(PageStyle::Cursor), next_cursor: Some("a..b".into()), ..Default::default() };
        assert!(bad.check().unwrap_err().starts_with("`next_cursor` is `a..b`, which is not a dotted path"));
        let e = Paging::resolve(Some(&PaginationDef { style: Some(PageStyle::Cursor), ..Default::default() }), None);
        assert!(e.unwrap_err().starts_with("style `cursor` needs `next_cursor`"));
        let e = Paging::resolve(
            Some(&PaginationDef { style: Some(PageStyle::LinkNext), page_size: Some(5), ..Default::default() }),
            None,
        );
        assert!(e.unwrap_err().starts_with("`page_size_param` and `page_size` go together: give `page_size_param`"));
        // A request's keys go over the service's; another style replaces the table.
        let service = PaginationDef {
            style: Some(PageStyle::LinkNext),
            records: Some("result".into()),
            page_size_param: Some("sysparm_limit".into()),
            page_size: Some(1000),
            ..Default::default()
        };
        let over = PaginationDef { page_size: Some(50), ..Default::default() };
        let p = Paging::resolve(Some(&service), Some(&over)).unwrap().unwrap();
        assert_eq!((p.style, p.page_size, p.records.clone()), (PageStyle::LinkNext, Some(50), vec!["result".into()]));
        let other = PaginationDef { style: Some(PageStyle::Offset), ..Default::default() };
        let p = Paging::resolve(Some(&service), Some(&other)).unwrap().unwrap();
        assert_eq!((p.style, p.records.len(), p.page_size), (PageStyle::Offset, 0, Some(OFFSET_PAGE_SIZE)));
        assert_eq!(Paging::resolve(None, Some(&over)).unwrap(), None);
        assert_eq!(Paging::resolve(None, None).unwrap(), None);
        let e = PageStyle::try_from("pages".to_string()).unwrap_err();
        assert_eq!(e, "unknown pagination style `pages`: use one of zoho_page_token, link_next, offset, cursor");
    }
}
