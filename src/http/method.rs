//! The HTTP methods a request may use: Deluge's `invokeurl` set.

use reqwest::Method;

/// A method `invoke_url` sends (and a service's `[example]` may name): GET, POST, PUT, PATCH,
/// DELETE or HEAD, spelt upper case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
    strum::Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
}

impl HttpMethod {
    /// The name, upper case.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<HttpMethod> for Method {
    fn from(m: HttpMethod) -> Method {
        match m {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
            HttpMethod::Head => Method::HEAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantNames as _;

    #[test]
    fn names_are_upper_case_and_map_to_reqwest_methods() {
        for name in HttpMethod::VARIANTS {
            let m: HttpMethod = name.parse().unwrap();
            assert_eq!(m.as_str(), *name);
            assert_eq!(Method::from(m).as_str(), *name);
        }
        assert!("get".parse::<HttpMethod>().is_err());
        assert!("FETCH".parse::<HttpMethod>().is_err());
    }
}
