//! The host rules every outgoing request obeys, and the URL helpers they need: schemes are
//! case-insensitive; credentials go only to allowed hosts and ports (`allowed_hosts` entries,
//! optionally with a port), only over HTTPS except to loopback, and never across a redirect to
//! another origin (scheme, host and port); URLs in traces and messages are redacted. An absolute
//! URL written for another data center of the connection's service may be sent to the
//! connection's own ([`dc_portable_target`]).

use url::Url;

/// Whether `url` starts with `http://` or `https://`, in any case (schemes are case-insensitive).
pub fn has_http_scheme(url: &str) -> bool {
    let starts = |p: &str| url.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p));
    starts("http://") || starts("https://")
}

/// Whether a URL carries a user name or password.
pub fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Removes the user name and password of a URL (reqwest would turn them into an
/// `Authorization` header).
pub fn strip_userinfo(url: &mut Url) {
    let _ = url.set_password(None);
    let _ = url.set_username("");
}

/// Whether two URLs have the same origin: scheme, host and port (default ports included).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().unwrap_or_default().eq_ignore_ascii_case(b.host_str().unwrap_or_default())
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Joins a relative URL to a base by concatenation, keeping the base path.
pub fn join_url(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        return base.to_string();
    }
    if rel.starts_with('?') {
        return format!("{base}{rel}");
    }
    format!("{}/{}", base.trim_end_matches('/'), rel.trim_start_matches('/'))
}

/// `base` with its scheme and host (and port) replaced by those of `origin` (Zoho's `api_domain`).
pub fn with_origin(base: &str, origin: &str) -> String {
    match (Url::parse(base), Url::parse(origin)) {
        (Ok(b), Ok(o)) => {
            let path = b.path().trim_end_matches('/');
            format!("{}{}", o.as_str().trim_end_matches('/'), path)
        }
        _ => base.to_string(),
    }
}

/// Whether a host is loopback (plain HTTP is allowed there).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Query keys always redacted in traces, whatever the service.
const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "key",
    "token",
    "password",
    "client_secret",
    "secret",
    "signature",
    "sig",
    "code",
    "oauth_token",
    "oauth_signature",
    "authtoken",
];

/// A URL for traces and messages: values of credential-bearing query keys and any userinfo
/// password replaced by `[redacted]`.
pub fn redact_url(url: &Url, extra_keys: &[String]) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    let Some(query) = u.query().map(str::to_string) else { return u.to_string() };
    u.set_query(None);
    let parts: Vec<String> = query
        .split('&')
        .map(|seg| {
            let raw_key = seg.split('=').next().unwrap_or_default();
            let key: String =
                url::form_urlencoded::parse(raw_key.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default();
            let secret = extra_keys.iter().any(|x| x.eq_ignore_ascii_case(&key))
                || SENSITIVE_QUERY_KEYS.iter().any(|x| x.eq_ignore_ascii_case(&key));
            if secret { format!("{raw_key}=[redacted]") } else { seg.to_string() }
        })
        .collect();
    format!("{u}?{}", parts.join("&"))
}

/// The default port of `http` and `https`.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port of a base URL, if it is a URL.
pub fn port_of(base: Option<&str>) -> Option<u16> {
    base.and_then(|b| Url::parse(b).ok()).and_then(|u| u.port_or_known_default())
}

/// Splits an `allowed_hosts` entry into its host pattern and its port, if it has one:
/// `api.example.com`, `api.example.com:8443`, `::1`, `[::1]` or `[::1]:8080`. `None` when the
/// port is not a number from 1 to 65535.
pub fn split_host_entry(entry: &str) -> Option<(&str, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n != 0);
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        return match tail {
            "" => Some((host, None)),
            t => Some((host, Some(port(t.strip_prefix(':')?)?))),
        };
    }
    match entry.split_once(':') {
        // One colon: `host:port`; more: a bare IPv6 address, which has no port.
        Some((host, p)) if !p.contains(':') => Some((host, Some(port(p)?))),
        _ => Some((entry, None)),
    }
}

/// Whether `host` matches the host part of one allowed-host entry (any port): `*.example.com`
/// matches subdomains only.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let Some((pattern, _)) = split_host_entry(pattern) else { return false };
    let host = host.trim_matches(['[', ']']).trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1 && host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.')
        }
        None => host == pattern,
    }
}

/// Whether `host` on `port` is allowed by one allowed-host entry: the host must match (see
/// [`host_matches`]); an entry with a port allows only that port, one without allows only
/// `implicit_ports` (the port of the connection's base URL and the scheme's default port).
pub fn host_port_matches(pattern: &str, host: &str, port: u16, implicit_ports: &[u16]) -> bool {
    match split_host_entry(pattern) {
        Some((_, Some(p))) => p == port && host_matches(pattern, host),
        Some((_, None)) => implicit_ports.contains(&port) && host_matches(pattern, host),
        None => false,
    }
}

/// The scheme, host and port of a URL as text (`https://www.zohoapis.com`, `http://127.0.0.1:8780`).
pub fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Where a URL hard-coded for another data center of a service goes instead (data-center-portable
/// URLs): when `url` has the scheme, host and port of one of `other_bases` (the base URLs of the
/// service's other data centers), the same path and query on `own_base`, the connection's own
/// base URL. The other base's path is replaced by the own base's (`https://desk.zoho.com/api/v1/x`
/// becomes `https://desk.zoho.eu/api/v1/x`); a path outside it is kept as it is. Only the exact
/// API host of a data center counts: another subdomain (`sandbox.zohoapis.com`, Zoho's CRM
/// sandbox environment) is a different system and keeps the allow-list rule. Gives the new URL
/// and the origin it replaced.
pub fn dc_portable_target(url: &Url, own_base: &str, other_bases: &[String]) -> Option<(Url, String)> {
    let own = Url::parse(own_base).ok()?;
    for other in other_bases.iter().filter_map(|b| Url::parse(b).ok()) {
        if !same_origin(url, &other) || same_origin(url, &own) {
            continue;
        }
        let prefix = other.path().trim_end_matches('/');
        let path = url.path();
        let mut joined = match path.strip_prefix(prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => join_url(own_base, rest),
            _ => format!("{}{path}", origin_text(&own)),
        };
        if let Some(q) = url.query() {
            joined.push('?');
            joined.push_str(q);
        }
        let mut target = Url::parse(&joined).ok()?;
        target.set_fragment(url.fragment());
        return Some((target, origin_text(&other)));
    }
    None
}

/// Whether `ip` is a public address: not loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
/// link-local (169.254/16 — cloud metadata at 169.254.169.254 — and fe80::/10), shared
/// (100.64/10), unspecified, broadcast, multicast or documentation-only.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0))
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Refuses a URL whose host is, or resolves to, a non-public address ([`is_public`]).
pub async fn check_public(url: &Url, link: Option<&str>) -> Result<(), crate::http::InvokeError> {
    use crate::http::{ErrorKind, InvokeError};
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let refused = |what: String| {
        InvokeError::new(
            ErrorKind::HostRefused,
            format!(
                "refusing `{}`: {what}, and scripts run by linkrun serve may reach private, link-local and loopback addresses only through a connection (against SSRF); set `[serve] allow_private_network = true` in linkrun.toml to allow it",
                redact_url(url, &[])
            ),
            link,
        )
    };
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return if is_public(ip) { Ok(()) } else { Err(refused(format!("{ip} is not a public address"))) };
    }
    let port = url.port_or_known_default().unwrap_or(80);
    match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            match addrs.iter().find(|a| !is_public(a.ip())) {
                Some(a) => Err(refused(format!("`{host}` resolves to {}, not a public address", a.ip()))),
                None => Ok(()),
            }
        }
        // Unresolvable: the send itself reports it.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_for_another_data_center_goes_to_the_own_base_with_its_path_and_query() {
        let others = vec!["https://www.zohoapis.com".to_string(), "https://www.zohoapis.in".to_string()];
        let u = Url::parse("https://WWW.zohoapis.com/crm/v7/Leads?fields=Email&page=2").unwrap();
        let (t, from) = dc_portable_target(&u, "https://www.zohoapis.eu", &others).unwrap();
        assert_eq!(
            (t.as_str(), from.as_str()),
            ("https://www.zohoapis.eu/crm/v7/Leads?fields=Email&page=2", "https://www.zohoapis.com")
        );
        let (t, _) = dc_portable_target(&u, "http://127.0.0.1:8780", &others).unwrap();
        assert_eq!(t.as_str(), "http://127.0.0.1:8780/crm/v7/Leads?fields=Email&page=2");
        // Another subdomain, another port or plain HTTP is not the data center's API host.
        for other in [
            "https://sandbox.zohoapis.com/crm/v7/Leads",
            "https://www.zohoapis.com:8443/x",
            "http://www.zohoapis.com/x",
            "https://evil.example/crm",
        ] {
            assert!(
                dc_portable_target(&Url::parse(other).unwrap(), "https://www.zohoapis.eu", &others).is_none(),
                "{other}"
            );
        }
    }

    #[test]
    fn the_base_path_of_the_other_data_center_becomes_the_own_one() {
        let others = vec!["https://desk.zoho.com/api/v1".to_string()];
        let u = Url::parse("https://desk.zoho.com/api/v1/tickets/12?include=contacts").unwrap();
        let (t, _) = dc_portable_target(&u, "http://127.0.0.1:9/api/v1", &others).unwrap();
        assert_eq!(t.as_str(), "http://127.0.0.1:9/api/v1/tickets/12?include=contacts");
        let u = Url::parse("https://desk.zoho.com/api/v1x/y").unwrap();
        let (t, _) = dc_portable_target(&u, "https://desk.zoho.eu/api/v1", &others).unwrap();
        assert_eq!(t.as_str(), "https://desk.zoho.eu/api/v1x/y");
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "203.0.114.1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
