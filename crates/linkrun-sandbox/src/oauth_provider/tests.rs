//! Tests of the provider through HTTP, both flavours, on a free port.

use super::*;

const CLIENT: &str = "1000.CLIENTID";
const SECRET: &str = "s3cret";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn zoho_cfg() -> ProviderConfig {
    let mut c = ProviderConfig::zoho("");
    c.clients = vec![ClientConfig::new(CLIENT, SECRET, "org_us"), ClientConfig::new("other", "other_s", "org_b")];
    c.api_domain = Some("https://www.zohoapis.com".into());
    c
}

fn sn_cfg() -> ProviderConfig {
    let mut c = ProviderConfig::servicenow("");
    c.clients = vec![ClientConfig::new("sn_client", "sn_secret", "acme")];
    c.users = vec![("admin".into(), "pw1".into()), ("abel.tuter".into(), "pw2".into())];
    c
}

struct T {
    p: Provider,
    base: String,
    http: reqwest::Client,
}

async fn start(cfg: ProviderConfig) -> T {
    let p = Provider::new(cfg);
    let (addr, _server) = serve(p.router()).await.unwrap();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    T { p, base, http }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl T {
    async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    async fn post_query(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}?{}", self.base, form(pairs))).send().await.unwrap();
        answer(r).await
    }

    async fn get(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http.get(format!("{}{path}?{}", self.base, form(pairs))).send().await.unwrap()
    }

    async fn call(&self, method: reqwest::Method, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        answer(rb.send().await.unwrap()).await
    }

    /// Headless approval; returns the redirect's query pairs.
    async fn approve(&self, path: &str, pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let r = self.get(path, pairs).await;
        assert_eq!(r.status().as_u16(), 302, "{:?}", r.text().await);
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(
            format!("{}://{}{}", loc.scheme(), loc.host_str().unwrap(), loc.path()),
            "http://127.0.0.1/callback"
        );
        loc.query_pairs().into_owned().collect()
    }

    /// A Zoho grant code via headless approval with `extra` parameters.
    async fn zoho_code(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.READ"),
            ("approve", "yes"),
        ];
        pairs.extend_from_slice(extra);
        self.approve("/oauth/v2/auth", &pairs).await["code"].clone()
    }

    /// Exchanges a Zoho code (query-string parameters, as Zoho's docs show).
    async fn zoho_exchange(&self, code: &str) -> Value {
        let (status, v) = self
            .post_query(
                "/oauth/v2/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("redirect_uri", REDIRECT),
                    ("code", code),
                ],
            )
            .await;
        assert_eq!(status, 200);
        v
    }

    async fn zoho_refresh(&self, refresh: &str) -> Value {
        let (status, v) = self
            .post_form(
                "/oauth/v2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("refresh_token", refresh),
                ],
            )
            .await;
        assert_eq!(status, 200);
        v
    }

    async fn crm(&self, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, "/crm/v7/Leads", Some(&format!("Zoho-oauthtoken {token}"))).await
    }

    async fn sn_token(&self, pairs: &[(&str, &str)]) -> (u16, Value) {
        self.post_form("/oauth_token.do", pairs).await
    }

    async fn sn_password(&self, user: &str, password: &str) -> (u16, Value) {
        self.sn_token(&[
            ("grant_type", "password"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("username", user),
            ("password", password),
        ])
        .await
    }

    async fn now(&self, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, "/api/now/table/incident", Some(&format!("Bearer {token}"))).await
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no string `{k}` in {v}")).to_string()
}

fn is_zoho_token(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 3
        && parts[0] == "1000"
        && parts[1..].iter().all(|p| p.len() == 32 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn err(e: &str) -> Value {
    json!({ "error": e })
}

fn sn_token_error() -> Value {
    json!({"error_description": "access_denied", "error": "server_error"})
}

fn sn_unauthorized() -> Value {
    json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"})
}

#[tokio::test]
async fn zoho_code_grant_offline_end_to_end() {
    let t = start(zoho_cfg()).await;
    t.p.update_config(|c| c.base_url = t.base.clone());
    let q = t
        .approve(
            "/oauth/v2/auth",
            &[
                ("client_id", CLIENT),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.READ"),
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("state", "st&1 2"),
                ("approve", "yes"),
            ],
        )
        .await;
    assert_eq!(q["state"], "st&1 2");
    assert_eq!(q["location"], "us");
    assert_eq!(q["accounts-server"], t.base);
    assert!(is_zoho_token(&q["code"]), "{}", q["code"]);

    let v = t.zoho_exchange(&q["code"]).await;
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "api_domain", "expires_in", "refresh_token", "token_type"]);
    assert!(is_zoho_token(&s(&v, "access_token")) && is_zoho_token(&s(&v, "refresh_token")));
    assert_eq!(v["api_domain"], "https://www.zohoapis.com");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);

    // One use only.
    assert_eq!(t.zoho_exchange(&q["code"]).await, err("invalid_code"));

    let access = s(&v, "access_token");
    let (status, body) = t.crm(&access).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": [{"id": "1", "echo_path": "/crm/v7/Leads", "echo_method": "GET"}],
                   "info": {"org": "org_us", "scopes": ["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"]}})
    );
    let (status, body) =
        t.call(reqwest::Method::POST, "/crm/v8/Deals/upsert", Some(&format!("zoho-oauthtoken {access}"))).await;
    assert_eq!((status, &body["data"][0]["echo_method"]), (200, &json!("POST")));

    let info = t.p.token_owner(&access).unwrap();
    assert_eq!(
        info,
        TokenInfo {
            client_id: CLIENT.into(),
            org: "org_us".into(),
            scopes: vec!["ZohoCRM.modules.ALL".into(), "ZohoCRM.settings.READ".into()],
            user: None,
            expired: false
        }
    );
    let stats = t.p.stats();
    assert_eq!(stats.token_requests_by_grant, BTreeMap::from([("authorization_code".to_string(), 2)]));
    assert_eq!((stats.resource_requests, stats.resource_401), (2, 0));
}

#[tokio::test]
async fn zoho_online_access_type_gets_no_refresh_token_and_base_url_defaults_to_host() {
    let t = start(zoho_cfg()).await;
    let r = t
        .get(
            "/oauth/v2/auth",
            &[("client_id", CLIENT), ("response_type", "code"), ("redirect_uri", REDIRECT), ("approve", "yes")],
        )
        .await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let q: HashMap<String, String> = url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
    assert!(!q.contains_key("state"));
    assert_eq!(q["accounts-server"], t.base);
    let v = t.zoho_exchange(&q["code"]).await;
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert!(v.get("access_token").is_some());
}

#[tokio::test]
async fn zoho_consent_page_form_and_denial() {
    let t = start(zoho_cfg()).await;
    let params = [
        ("client_id", CLIENT),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "ZohoCRM.modules.ALL"),
        ("access_type", "offline"),
        ("state", "<x>"),
    ];
    let r = t.get("/oauth/v2/auth", &params).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"<form method="post" action="/oauth/v2/auth/approve">"#), "{page}");
    assert!(page.contains(r#"<input type="hidden" name="state" value="&lt;x&gt;">"#), "{page}");
    assert!(page.contains(r#"name="approve" value="yes""#) && page.contains("<li>ZohoCRM.modules.ALL</li>"));

    // What the form posts.
    let mut posted = params.to_vec();
    posted.push(("approve", "yes"));
    let r = t
        .http
        .post(format!("{}/oauth/v2/auth/approve", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&posted))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "<x>");
    assert!(t.zoho_exchange(&q["code"]).await.get("refresh_token").is_some());

    let mut denied = params.to_vec();
    denied.push(("approve", "no"));
    let q = t.approve("/oauth/v2/auth", &denied).await;
    assert_eq!(q, HashMap::from([("error".into(), "access_denied".into()), ("state".into(), "<x>".into())]));
}

#[tokio::test]
async fn zoho_authorize_refusals_are_html_400() {
    let t = start(zoho_cfg()).await;
    let r = t
        .get("/oauth/v2/auth", &[("client_id", "nobody"), ("response_type", "code"), ("redirect_uri", REDIRECT)])
        .await;
    assert_eq!(r.status().as_u16(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("Invalid Client") && page.contains("invalid client"), "{page}");
    for bad in [
        vec![("client_id", CLIENT), ("response_type", "token"), ("redirect_uri", REDIRECT)],
        vec![("client_id", CLIENT), ("response_type", "code")],
        vec![("client_id", CLIENT), ("response_type", "code"), ("redirect_uri", "/relative")],
        vec![
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", "x"),
            ("code_challenge_method", "S512"),
        ],
    ] {
        let mut bad = bad;
        bad.push(("approve", "yes"));
        assert_eq!(t.get("/oauth/v2/auth", &bad).await.status().as_u16(), 400, "{bad:?}");
    }
}

#[tokio::test]
async fn zoho_token_errors_are_http_200_bodies() {
    let t = start(zoho_cfg()).await;
    let code = t.zoho_code(&[]).await;
    let base = [("grant_type", "authorization_code"), ("redirect_uri", REDIRECT), ("code", code.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with(&[("client_id", "nobody"), ("client_secret", SECRET)]), "invalid_client"),
        (with(&[("client_secret", SECRET)]), "invalid_client"),
        (with(&[("client_id", CLIENT), ("client_secret", "wrong")]), "invalid_client_secret"),
        (with(&[("client_id", CLIENT)]), "invalid_client_secret"),
        // A code issued to another client.
        (with(&[("client_id", "other"), ("client_secret", "other_s")]), "invalid_code"),
    ];
    for (pairs, want) in cases {
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err(want)), "{pairs:?}");
    }
    let client = [("client_id", CLIENT), ("client_secret", SECRET)];
    let mut pairs = client.to_vec();
    pairs.extend([("grant_type", "authorization_code"), ("code", code.as_str())]);
    assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_redirect_uri")));
    pairs.push(("redirect_uri", "http://127.0.0.1:9/other"));
    assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_redirect_uri")));
    let mut pairs = client.to_vec();
    pairs.extend([("grant_type", "authorization_code"), ("code", "1000.nope.nope"), ("redirect_uri", REDIRECT)]);
    assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_code")));
    let mut pairs = client.to_vec();
    pairs.push(("grant_type", "implicit"));
    assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("unsupported_grant_type")));
    assert_eq!(t.post_form("/oauth/v2/token", &client).await, (200, err("unsupported_grant_type")));
    // ServiceNow's password grant is not Zoho's.
    let mut pairs = client.to_vec();
    pairs.extend([("grant_type", "password"), ("username", "a"), ("password", "b")]);
    assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("unsupported_grant_type")));

    // The failed attempts did not use the code up; it still works once.
    assert!(t.zoho_exchange(&code).await.get("access_token").is_some());
    let stats = t.p.stats();
    assert_eq!(stats.token_requests_by_grant["authorization_code"], 9);
    assert_eq!(stats.token_requests_by_grant["(missing)"], 1);
    assert_eq!(stats.token_requests_by_grant["implicit"], 1);
}

#[tokio::test]
async fn zoho_grant_code_expires_after_two_minutes() {
    let t = start(zoho_cfg()).await;
    let fresh = t.zoho_code(&[]).await;
    let stale = t.zoho_code(&[]).await;
    t.p.advance_clock(119);
    assert!(t.zoho_exchange(&fresh).await.get("access_token").is_some());
    t.p.advance_clock(1);
    assert_eq!(t.zoho_exchange(&stale).await, err("invalid_code"));
}

#[tokio::test]
async fn zoho_pkce_s256_and_plain() {
    let t = start(zoho_cfg()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636 appendix B.
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let exchange = |code: String, verifier: Option<&'static str>| {
        let t = &t;
        async move {
            let mut pairs = vec![
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("redirect_uri", REDIRECT),
                ("code", code.as_str()),
            ];
            pairs.extend(verifier.map(|v| ("code_verifier", v)));
            t.post_form("/oauth/v2/token", &pairs).await.1
        }
    };
    let code = t.zoho_code(&[("code_challenge", challenge), ("code_challenge_method", "S256")]).await;
    assert_eq!(exchange(code.clone(), None).await, err("invalid_code_verifier"));
    assert_eq!(
        exchange(code.clone(), Some("wrong-verifier-wrong-verifier-wrong-verifier")).await,
        err("invalid_code_verifier")
    );
    assert_eq!(exchange(code.clone(), Some(challenge)).await, err("invalid_code_verifier"));
    assert!(exchange(code, Some(verifier)).await.get("access_token").is_some());

    let code = t.zoho_code(&[("code_challenge", "plain-value")]).await;
    assert_eq!(exchange(code.clone(), Some(verifier)).await, err("invalid_code_verifier"));
    assert!(exchange(code, Some("plain-value")).await.get("access_token").is_some());

    // No challenge: a verifier is ignored.
    let code = t.zoho_code(&[]).await;
    assert!(exchange(code, Some(verifier)).await.get("access_token").is_some());
}

#[tokio::test]
async fn zoho_refresh_and_dead_refresh_tokens() {
    let t = start(zoho_cfg()).await;
    let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
    let (first, refresh) = (s(&v, "access_token"), s(&v, "refresh_token"));

    let r = t.zoho_refresh(&refresh).await;
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "api_domain", "expires_in", "token_type"]);
    let second = s(&r, "access_token");
    assert_ne!(first, second);
    // Both stay valid (no limit on active tokens is emulated).
    assert_eq!(t.crm(&first).await.0, 200);
    assert_eq!(t.crm(&second).await.0, 200);

    assert_eq!(t.zoho_refresh("1000.dead.dead").await, err("invalid_code"));
    let (_, other) = t
        .post_form(
            "/oauth/v2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "other"),
                ("client_secret", "other_s"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    assert_eq!(other, err("invalid_code"));
    let (_, bad_secret) = t
        .post_form(
            "/oauth/v2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT),
                ("client_secret", "x"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    assert_eq!(bad_secret, err("invalid_client_secret"));

    // Revoked: refresh fails, its access tokens die.
    assert_eq!(
        t.post_query("/oauth/v2/token/revoke", &[("token", &refresh)]).await,
        (200, json!({"status": "success"}))
    );
    assert_eq!(t.zoho_refresh(&refresh).await, err("invalid_code"));
    assert_eq!(t.crm(&first).await.1["code"], "INVALID_TOKEN");
    assert_eq!(t.crm(&second).await.1["code"], "INVALID_TOKEN");
    let stats = t.p.stats();
    assert_eq!((stats.refreshes_ok, stats.refresh_failures, stats.revocations), (1, 4, 1));
    assert_eq!(stats.token_requests_by_grant["refresh_token"], 5);
}

#[tokio::test]
async fn zoho_rotation_invalidates_the_old_refresh_token() {
    let mut cfg = zoho_cfg();
    cfg.rotate_refresh_token = true;
    let t = start(cfg).await;
    let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
    let (first_access, r1) = (s(&v, "access_token"), s(&v, "refresh_token"));
    let v2 = t.zoho_refresh(&r1).await;
    let r2 = s(&v2, "refresh_token");
    assert!(is_zoho_token(&r2) && r2 != r1);
    assert_eq!(t.zoho_refresh(&r1).await, err("invalid_code"));
    let v3 = t.zoho_refresh(&r2).await;
    let r3 = s(&v3, "refresh_token");
    // Access tokens follow their refresh token's line: revoking the newest revokes them all.
    assert_eq!(t.post_query("/oauth/v2/token/revoke", &[("token", &r3)]).await.0, 200);
    for a in [first_access, s(&v2, "access_token"), s(&v3, "access_token")] {
        assert_eq!(t.crm(&a).await.0, 401);
    }
}

#[tokio::test]
async fn zoho_revocation_endpoints() {
    let t = start(zoho_cfg()).await;
    let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
    let (access, refresh) = (s(&v, "access_token"), s(&v, "refresh_token"));

    // An access token alone; the refresh token lives on. Form body accepted too.
    assert_eq!(t.post_form("/oauth/v2/token/revoke", &[("token", &access)]).await, (200, json!({"status": "success"})));
    assert_eq!(t.crm(&access).await.0, 401);
    assert!(t.zoho_refresh(&refresh).await.get("access_token").is_some());
    // Unknown or already revoked.
    let failure = (400, json!({"error": "invalid_token", "status": "failure"}));
    assert_eq!(t.post_query("/oauth/v2/token/revoke", &[("token", &access)]).await, failure);
    assert_eq!(t.post_query("/oauth/v2/token/revoke", &[]).await, failure);

    // The newer endpoint wants Basic client authentication and the client's own token.
    let url =
        format!("{}/oauth/v2/revoke/token?{}", t.base, form(&[("token", &refresh), ("token_type", "refresh_token")]));
    let r = answer(t.http.post(&url).send().await.unwrap()).await;
    assert_eq!(r, (401, json!({"error": "invalid_client", "status": "failure"})));
    let r = answer(t.http.post(&url).basic_auth(CLIENT, Some("wrong")).send().await.unwrap()).await;
    assert_eq!(r.0, 401);
    let r = answer(t.http.post(&url).basic_auth("other", Some("other_s")).send().await.unwrap()).await;
    assert_eq!(r, failure);
    let r = answer(t.http.post(&url).basic_auth(CLIENT, Some(SECRET)).send().await.unwrap()).await;
    assert_eq!(r, (200, json!({"status": "success"})));
    assert_eq!(t.zoho_refresh(&refresh).await, err("invalid_code"));
    assert_eq!(t.p.stats().revocations, 2);
}

#[tokio::test]
async fn zoho_self_client_code_one_use_three_minutes() {
    let t = start(zoho_cfg()).await;
    let exchange = |code: String| {
        let t = &t;
        async move {
            t.post_form(
                "/oauth/v2/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("code", &code),
                ],
            )
            .await
            .1
        }
    };
    let code = t.p.mint_self_client_code(CLIENT, &["ZohoCRM.modules.ALL"]);
    assert!(is_zoho_token(&code));
    let v = exchange(code.clone()).await;
    assert!(v.get("refresh_token").is_some(), "{v}");
    assert_eq!(t.p.token_owner(&s(&v, "access_token")).unwrap().scopes, ["ZohoCRM.modules.ALL"]);
    assert_eq!(exchange(code).await, err("invalid_code"));

    // The HTTP helper, with query or form parameters.
    let (status, v) = t
        .post_form(
            "/oauth/v2/self-client/code",
            &[("client_id", CLIENT), ("scope", "ZohoCRM.users.ALL,ZohoCRM.org.ALL")],
        )
        .await;
    assert_eq!(status, 200);
    let via_http = s(&v, "code");
    assert_eq!(v.as_object().unwrap().len(), 1);
    let (_, v) = t.post_query("/oauth/v2/self-client/code", &[("client_id", CLIENT)]).await;
    let late = s(&v, "code");
    assert_eq!(
        t.post_query("/oauth/v2/self-client/code", &[("client_id", "nobody")]).await,
        (400, err("invalid_client"))
    );

    t.p.advance_clock(179);
    let v = exchange(via_http).await;
    assert_eq!(t.p.token_owner(&s(&v, "access_token")).unwrap().scopes, ["ZohoCRM.users.ALL", "ZohoCRM.org.ALL"]);
    t.p.advance_clock(1);
    assert_eq!(exchange(late).await, err("invalid_code"));
}

#[tokio::test]
async fn zoho_client_credentials_needs_soid_and_gives_no_refresh_token() {
    let t = start(zoho_cfg()).await;
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("scope", "ZohoCRM.modules.ALL"),
    ];
    assert_eq!(t.post_query("/oauth/v2/token", &pairs).await, (200, err("missing_org_info")));
    pairs.push(("soid", "ZohoCRM.6000000012345"));
    let (status, v) = t.post_query("/oauth/v2/token", &pairs).await;
    assert_eq!(status, 200);
    assert!(v.get("refresh_token").is_none() && v.get("access_token").is_some(), "{v}");
    let info = t.p.token_owner(&s(&v, "access_token")).unwrap();
    assert_eq!((info.org.as_str(), info.user), ("org_us", None));
    assert_eq!(t.crm(&s(&v, "access_token")).await.0, 200);
}

#[tokio::test]
async fn expires_styles() {
    let cases = [
        (ExpiresStyle::Number, json!(3600), None),
        (ExpiresStyle::String, json!("3600"), None),
        (ExpiresStyle::LegacySec, json!(3600000), Some(json!(3600))),
        (ExpiresStyle::Missing, Value::Null, None),
    ];
    for (style, expires_in, expires_in_sec) in cases {
        let mut cfg = zoho_cfg();
        cfg.expires_style = style;
        let t = start(cfg).await;
        let v = t.zoho_exchange(&t.zoho_code(&[]).await).await;
        assert_eq!(v.get("expires_in").cloned().unwrap_or(Value::Null), expires_in, "{style:?}");
        assert_eq!(v.get("expires_in_sec").cloned(), expires_in_sec, "{style:?}");
    }
    let mut cfg = sn_cfg();
    cfg.expires_style = ExpiresStyle::String;
    let t = start(cfg).await;
    assert_eq!(t.sn_password("admin", "pw1").await.1["expires_in"], "1799");
}

#[tokio::test]
async fn zoho_resource_401_shapes_expiry_and_controls() {
    let t = start(zoho_cfg()).await;
    let access = s(&t.zoho_exchange(&t.zoho_code(&[]).await).await, "access_token");
    let auth_failure =
        json!({"code": "AUTHENTICATION_FAILURE", "details": {}, "message": "Authentication failed", "status": "error"});
    let invalid = json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"});
    assert_eq!(t.call(reqwest::Method::GET, "/crm/v7/Leads", None).await, (401, auth_failure.clone()));
    // Another scheme counts as no credentials.
    assert_eq!(
        t.call(reqwest::Method::GET, "/crm/v7/Leads", Some(&format!("Bearer {access}"))).await,
        (401, auth_failure)
    );
    assert_eq!(t.crm("1000.abc.def").await, (401, invalid.clone()));
    assert_eq!(t.crm(&access).await.0, 200);

    t.p.expire_access_tokens();
    assert_eq!(t.crm(&access).await, (401, invalid.clone()));
    assert!(t.p.token_owner(&access).unwrap().expired);
    assert_eq!(t.p.token_owner("1000.abc.def"), None);

    // Natural expiry with a short life set over HTTP.
    assert_eq!(t.post_query("/_sandbox/oauth/ttl", &[("secs", "5")]).await, (200, json!({"access_ttl_secs": 5})));
    assert_eq!(t.post_query("/_sandbox/oauth/ttl", &[("secs", "-1")]).await.0, 400);
    let v = t.zoho_exchange(&t.zoho_code(&[]).await).await;
    assert_eq!(v["expires_in"], 5);
    let short = s(&v, "access_token");
    assert_eq!(t.crm(&short).await.0, 200);
    assert_eq!(t.post_query("/_sandbox/oauth/advance", &[("secs", "5")]).await, (200, json!({"advanced_secs": 5})));
    assert_eq!(t.crm(&short).await, (401, invalid));

    t.p.set_access_ttl(3600);
    let fresh = s(&t.zoho_exchange(&t.zoho_code(&[]).await).await, "access_token");
    assert_eq!(t.post_query("/_sandbox/oauth/expire", &[]).await, (200, json!({"expired": 1})));
    assert_eq!(t.crm(&fresh).await.0, 401);

    let r = t.http.get(format!("{}/_sandbox/oauth/stats", t.base)).send().await.unwrap();
    let (status, stats) = answer(r).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({
            "token_requests_by_grant": {"authorization_code": 3},
            "refreshes_ok": 0, "refresh_failures": 0, "revocations": 0,
            "refreshes_throttled": 0, "access_tokens_killed": 0, "refresh_tokens_deleted": 0,
            "resource_requests": 8, "resource_401": 6
        })
    );
    // Only the emulated product's paths are protected resources.
    assert_eq!(t.call(reqwest::Method::GET, "/api/now/table/x", None).await.0, 404);
}

#[tokio::test]
async fn servicenow_password_grant_same_tokens_while_valid() {
    let t = start(sn_cfg()).await;
    let (status, v) = t.sn_password("admin", "pw1").await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
    assert_eq!(
        (&v["scope"], &v["token_type"], &v["expires_in"]),
        (&json!("useraccount"), &json!("Bearer"), &json!(1799))
    );
    let access = s(&v, "access_token");
    assert_eq!(access.len(), 64);

    t.p.advance_clock(10);
    let (_, again) = t.sn_password("admin", "pw1").await;
    assert_eq!((s(&again, "access_token"), s(&again, "refresh_token")), (access.clone(), s(&v, "refresh_token")));
    assert_eq!(again["expires_in"], 1789);
    // Another user gets other tokens.
    let (_, abel) = t.sn_password("abel.tuter", "pw2").await;
    assert_ne!(s(&abel, "access_token"), access);
    assert_eq!(t.p.token_owner(&s(&abel, "access_token")).unwrap().user.as_deref(), Some("abel.tuter"));

    let (status, body) = t.now(&access).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"][0]["echo_path"], "/api/now/table/incident");
    assert_eq!(body["result"][0]["sys_id"].as_str().unwrap().len(), 32);

    // Once expired, a new token.
    t.p.expire_access_tokens();
    assert_eq!(t.now(&access).await, (401, sn_unauthorized()));
    let (_, renewed) = t.sn_password("admin", "pw1").await;
    assert_ne!(s(&renewed, "access_token"), access);
    assert_eq!(renewed["expires_in"], 1799);
    assert_eq!(t.p.stats().token_requests_by_grant["password"], 4);
}

#[tokio::test]
async fn servicenow_token_errors_are_one_401_body() {
    let t = start(sn_cfg()).await;
    assert_eq!(t.sn_password("admin", "wrong").await, (401, sn_token_error()));
    assert_eq!(t.sn_password("nobody", "pw1").await, (401, sn_token_error()));
    let bad_client = [
        ("grant_type", "password"),
        ("client_id", "sn_client"),
        ("client_secret", "nope"),
        ("username", "admin"),
        ("password", "pw1"),
    ];
    assert_eq!(t.sn_token(&bad_client).await, (401, sn_token_error()));
    // Query parameters are not read.
    let ok = [
        ("grant_type", "password"),
        ("client_id", "sn_client"),
        ("client_secret", "sn_secret"),
        ("username", "admin"),
        ("password", "pw1"),
    ];
    assert_eq!(t.post_query("/oauth_token.do", &ok).await, (401, sn_token_error()));
    // Nor a form body without its content type.
    let r = t.http.post(format!("{}/oauth_token.do", t.base)).body(form(&ok)).send().await.unwrap();
    assert_eq!(answer(r).await, (401, sn_token_error()));
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", "sn_client"),
        ("client_secret", "sn_secret"),
        ("refresh_token", "x"),
    ];
    assert_eq!(t.sn_token(&refresh).await, (401, sn_token_error()));
    let stats = t.p.stats();
    assert_eq!((stats.refreshes_ok, stats.refresh_failures), (0, 1));
    assert_eq!(stats.token_requests_by_grant["(missing)"], 2);
}

#[tokio::test]
async fn servicenow_refresh_rotation_and_expiry() {
    let mut cfg = sn_cfg();
    cfg.rotate_refresh_token = true;
    let t = start(cfg).await;
    let (_, v) = t.sn_password("admin", "pw1").await;
    let (a1, r1) = (s(&v, "access_token"), s(&v, "refresh_token"));
    let refresh = |rt: String| {
        let t = &t;
        async move {
            t.sn_token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
                ("refresh_token", &rt),
            ])
            .await
        }
    };
    let (status, v2) = refresh(r1.clone()).await;
    assert_eq!(status, 200);
    let (a2, r2) = (s(&v2, "access_token"), s(&v2, "refresh_token"));
    assert!(a2 != a1 && r2 != r1);
    assert_eq!(refresh(r1).await, (401, sn_token_error()));
    // Refreshing again while a2 lives hands back a2.
    let (_, again) = refresh(r2.clone()).await;
    assert_eq!(s(&again, "access_token"), a2);
    // ServiceNow refresh tokens live 100 days.
    t.p.advance_clock(100 * 24 * 3600);
    assert_eq!(refresh(r2).await, (401, sn_token_error()));
    assert_eq!(t.now(&a2).await.0, 401);
}

#[tokio::test]
async fn servicenow_refresh_without_rotation_repeats_the_refresh_token() {
    let t = start(sn_cfg()).await;
    let (_, v) = t.sn_password("admin", "pw1").await;
    let r1 = s(&v, "refresh_token");
    let (_, v2) = t
        .sn_token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("refresh_token", &r1),
        ])
        .await;
    assert_eq!(s(&v2, "refresh_token"), r1);
    assert_ne!(s(&v2, "access_token"), s(&v, "access_token"));
    assert_eq!(t.p.stats().refreshes_ok, 1);
}

#[tokio::test]
async fn servicenow_code_and_client_credentials_grants_and_revoke() {
    let t = start(sn_cfg()).await;
    let r = t
        .get("/oauth_auth.do", &[("response_type", "code"), ("client_id", "sn_client"), ("redirect_uri", REDIRECT)])
        .await;
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"action="/oauth_auth.do""#), "{page}");
    let q = t
        .approve(
            "/oauth_auth.do",
            &[
                ("response_type", "code"),
                ("client_id", "sn_client"),
                ("redirect_uri", REDIRECT),
                ("state", "xyz"),
                ("approve", "yes"),
            ],
        )
        .await;
    assert_eq!(q.keys().count(), 2, "{q:?}");
    assert_eq!(q["state"], "xyz");
    let exchange = |code: String, redirect: &'static str| {
        let t = &t;
        async move {
            t.sn_token(&[
                ("grant_type", "authorization_code"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
                ("code", &code),
                ("redirect_uri", redirect),
            ])
            .await
        }
    };
    assert_eq!(exchange(q["code"].clone(), "http://127.0.0.1:9/x").await, (401, sn_token_error()));
    let (status, v) = exchange(q["code"].clone(), REDIRECT).await;
    assert_eq!(status, 200);
    assert!(v.get("refresh_token").is_some());
    assert_eq!(exchange(q["code"].clone(), REDIRECT).await, (401, sn_token_error()));
    let access = s(&v, "access_token");
    assert_eq!(t.p.token_owner(&access).unwrap().user.as_deref(), Some("admin"));

    let denied = t
        .approve(
            "/oauth_auth.do",
            &[("response_type", "code"), ("client_id", "sn_client"), ("redirect_uri", REDIRECT), ("approve", "no")],
        )
        .await;
    assert_eq!(denied, HashMap::from([("error".into(), "access_denied".into())]));

    let cc = [("grant_type", "client_credentials"), ("client_id", "sn_client"), ("client_secret", "sn_secret")];
    let (status, c1) = t.sn_token(&cc).await;
    assert_eq!(status, 200);
    assert!(c1.get("refresh_token").is_none());
    assert_eq!(s(&t.sn_token(&cc).await.1, "access_token"), s(&c1, "access_token"));

    // Revocation: always 200, empty body; by query (GET or POST) or form body.
    let r = t.http.get(format!("{}/oauth_revoke_token.do?token={}", t.base, access)).send().await.unwrap();
    assert_eq!(answer(r).await, (200, json!("")));
    assert_eq!(t.now(&access).await, (401, sn_unauthorized()));
    assert_eq!(t.post_form("/oauth_revoke_token.do", &[("token", &s(&c1, "access_token"))]).await.0, 200);
    assert_eq!(t.now(&s(&c1, "access_token")).await.0, 401);
    assert_eq!(t.post_query("/oauth_revoke_token.do", &[("token", "unknown")]).await.0, 200);
    assert_eq!(t.p.stats().revocations, 2);
    // Missing or non-Bearer credentials: the same 401.
    assert_eq!(t.call(reqwest::Method::DELETE, "/api/now/table/incident/1", None).await, (401, sn_unauthorized()));
    assert_eq!(
        t.call(reqwest::Method::GET, "/api/now/table/incident", Some(&format!("Zoho-oauthtoken {access}"))).await,
        (401, sn_unauthorized())
    );
}

/// A token request straight to the state.
fn grant(p: &Provider, pairs: &[(&str, &str)]) -> Result<Value, TokenError> {
    let params = Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let mut st = p.lock();
    st.token(&params).map(|issued| st.token_body(issued, "http://127.0.0.1"))
}

#[test]
fn tokens_issued_on_a_data_file_are_accepted_after_reopening_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.db");
    let mut rotating = zoho_cfg();
    rotating.rotate_refresh_token = true;
    let zoho = Provider::open(rotating, Some(&path), "zoho").unwrap();
    let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
    let code = zoho.mint_self_client_code(CLIENT, &["ZohoCRM.modules.ALL"]);
    let first = grant(
        &zoho,
        &[("grant_type", "authorization_code"), ("client_id", CLIENT), ("client_secret", SECRET), ("code", &code)],
    )
    .unwrap();
    let refresh_pairs = |r: &str| -> Vec<(String, String)> {
        [("grant_type", "refresh_token"), ("client_id", CLIENT), ("client_secret", SECRET), ("refresh_token", r)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let pairs = refresh_pairs(&s(&first, "refresh_token"));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Rotation: the second refresh token replaces the first one, for both access tokens.
    let second = grant(&zoho, &pairs).unwrap();
    let kept = grant(
        &zoho,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("code", &zoho.mint_self_client_code(CLIENT, &["x"])),
        ],
    )
    .unwrap();
    assert!(zoho.lock().revoke(&s(&kept, "access_token"), None).unwrap());
    let password = [
        ("grant_type", "password"),
        ("client_id", "sn_client"),
        ("client_secret", "sn_secret"),
        ("username", "admin"),
        ("password", "pw1"),
    ];
    let sn_first = grant(&sn, &password).unwrap();
    drop((zoho, sn));

    let zoho = Provider::open(zoho_cfg(), Some(&path), "zoho").unwrap();
    let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
    let owner = zoho.token_owner(&s(&first, "access_token")).unwrap();
    assert_eq!(
        (owner.client_id.as_str(), owner.org.as_str(), owner.scopes.as_slice(), owner.expired),
        (CLIENT, "org_us", &["ZohoCRM.modules.ALL".to_string()][..], false)
    );
    assert!(zoho.token_owner(&s(&second, "access_token")).is_some());
    assert_eq!(zoho.token_owner(&s(&kept, "access_token")), None, "revoked before the restart");
    assert_eq!(grant(&zoho, &pairs).unwrap_err(), TokenError::InvalidRefreshToken, "rotated away before the restart");
    let pairs = refresh_pairs(&s(&second, "refresh_token"));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(grant(&zoho, &pairs).unwrap()["access_token"].is_string());
    // The two providers' rows stay apart; ServiceNow hands the same live token back.
    assert_eq!(sn.token_owner(&s(&first, "access_token")), None);
    assert_eq!(s(&grant(&sn, &password).unwrap(), "access_token"), s(&sn_first, "access_token"));
    // Expiring is stored too.
    sn.expire_access_tokens();
    drop(sn);
    let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
    assert!(sn.token_owner(&s(&sn_first, "access_token")).unwrap().expired);
    // In memory: nothing is kept.
    let mem = Provider::open(zoho_cfg(), None, "zoho").unwrap();
    assert_eq!(mem.token_owner(&s(&first, "access_token")), None);
}

#[test]
fn pkce_and_helpers() {
    assert!(pkce_matches(
        "S256",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    ));
    assert_eq!(split_scopes(Some("a.b,c.d e.f, ,")), ["a.b", "c.d", "e.f"]);
    assert_eq!(strip_prefix_ignore_case("BEARER x", "bearer "), Some("x"));
    assert_eq!(strip_prefix_ignore_case("é", "bearer "), None);
    assert_eq!(escape_html(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode("id:se:cret")).parse().unwrap());
    assert_eq!(basic_credentials(&h), Some(("id".into(), "se:cret".into())));
}

// Zoho Accounts' token limits (see `limits`).

/// A code exchange for `CLIENT` through the self-client code (no redirect): its answer.
async fn self_client_tokens(t: &T) -> Value {
    let code = t.p.mint_self_client_code(CLIENT, &["ZohoCRM.modules.ALL"]);
    let pairs =
        [("grant_type", "authorization_code"), ("client_id", CLIENT), ("client_secret", SECRET), ("code", &code)];
    let (status, v) = t.post_form("/oauth/v2/token", &pairs).await;
    assert_eq!(status, 200);
    v
}

#[tokio::test]
async fn zoho_the_11th_refresh_in_10_minutes_is_access_denied_with_http_200() {
    let t = start(zoho_cfg()).await;
    let refresh = s(&self_client_tokens(&t).await, "refresh_token");
    for _ in 0..10 {
        assert!(t.zoho_refresh(&refresh).await["access_token"].is_string());
    }
    let denied = t.zoho_refresh(&refresh).await;
    assert_eq!(
        denied,
        json!({"error_description": "You have made too many requests continuously. Please try again after some time.", "error": "Access Denied", "status": "failure"})
    );
    let st = t.p.stats();
    assert_eq!((st.refreshes_ok, st.refresh_failures, st.refreshes_throttled), (10, 1, 1));
    // Another refresh token has a count of its own; the window rolls with the clock.
    let other = s(&self_client_tokens(&t).await, "refresh_token");
    assert!(t.zoho_refresh(&other).await["access_token"].is_string());
    t.p.advance_clock(600);
    assert!(t.zoho_refresh(&refresh).await["access_token"].is_string());
}

#[tokio::test]
async fn zoho_the_16th_live_access_token_of_a_refresh_token_kills_the_oldest() {
    let t = start(zoho_cfg()).await;
    let first = self_client_tokens(&t).await;
    let (oldest, refresh) = (s(&first, "access_token"), s(&first, "refresh_token"));
    let mut tokens = vec![oldest.clone()];
    for i in 0..15 {
        if i == 10 {
            t.p.advance_clock(600);
        }
        tokens.push(s(&t.zoho_refresh(&refresh).await, "access_token"));
    }
    let invalid = json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"});
    assert_eq!(t.crm(&oldest).await, (401, invalid));
    for live in &tokens[1..] {
        assert_eq!(t.crm(live).await.0, 200);
    }
    assert_eq!(t.p.stats().access_tokens_killed, 1);
    // An expired token does not count as live: after an expiry, 15 more fit.
    t.p.expire_access_tokens();
    t.p.advance_clock(600);
    for _ in 0..10 {
        t.zoho_refresh(&refresh).await;
    }
    assert_eq!(t.p.stats().access_tokens_killed, 1);
}

#[tokio::test]
async fn zoho_the_21st_refresh_token_of_a_client_deletes_the_oldest_with_its_access_tokens() {
    let t = start(zoho_cfg()).await;
    let first = self_client_tokens(&t).await;
    for _ in 0..19 {
        self_client_tokens(&t).await;
    }
    assert_eq!(t.p.stats().refresh_tokens_deleted, 0);
    assert!(t.zoho_refresh(&s(&first, "refresh_token")).await["access_token"].is_string());
    self_client_tokens(&t).await;
    assert_eq!(t.p.stats().refresh_tokens_deleted, 1);
    assert_eq!(t.zoho_refresh(&s(&first, "refresh_token")).await, json!({"error": "invalid_code"}));
    assert_eq!(t.crm(&s(&first, "access_token")).await.0, 401);
    assert_eq!(t.p.refresh_tokens(CLIENT).len(), 20);
    // Rotation replaces a refresh token in place: it deletes none.
    t.p.update_config(|c| c.rotate_refresh_token = true);
    let newest = t.p.refresh_tokens(CLIENT).pop().unwrap();
    assert!(t.zoho_refresh(&newest).await["refresh_token"].is_string());
    assert_eq!((t.p.stats().refresh_tokens_deleted, t.p.refresh_tokens(CLIENT).len()), (1, 20));
}

#[tokio::test]
async fn zoho_limits_are_knobs_and_servicenow_has_none() {
    let t = start(zoho_cfg()).await;
    let faults = crate::faults::Faults::new(crate::faults::Knobs {
        zoho_accounts: crate::faults::ZohoAccountsKnobs::off(),
        ..Default::default()
    });
    t.p.use_knobs(faults);
    let refresh = s(&self_client_tokens(&t).await, "refresh_token");
    for _ in 0..25 {
        assert!(t.zoho_refresh(&refresh).await["access_token"].is_string());
    }
    let st = t.p.stats();
    assert_eq!((st.refreshes_throttled, st.access_tokens_killed), (0, 0));
    let t = start(sn_cfg()).await;
    let (_, v) = t.sn_password("admin", "pw1").await;
    let refresh = s(&v, "refresh_token");
    t.p.expire_access_tokens();
    for _ in 0..12 {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("refresh_token", refresh.as_str()),
        ];
        assert_eq!(t.sn_token(&pairs).await.0, 200);
        t.p.expire_access_tokens();
    }
}

#[tokio::test]
async fn zoho_the_redirect_names_the_clients_data_center_and_answers_carry_an_api_domain() {
    let mut cfg = zoho_cfg();
    cfg.api_domain = None;
    cfg.clients[1] = ClientConfig::new("other", "other_s", "org_b").in_dc("in");
    let t = start(cfg).await;
    let pairs = [
        ("client_id", "other"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "ZohoCRM.modules.ALL"),
        ("approve", "yes"),
    ];
    let q = t.approve("/oauth/v2/auth", &pairs).await;
    assert_eq!((q["location"].as_str(), q["accounts-server"].as_str()), ("in", t.base.as_str()));
    let pairs = [
        ("grant_type", "authorization_code"),
        ("client_id", "other"),
        ("client_secret", "other_s"),
        ("redirect_uri", REDIRECT),
        ("code", q["code"].as_str()),
    ];
    let (_, v) = t.post_form("/oauth/v2/token", &pairs).await;
    assert_eq!(v["api_domain"], json!(t.base), "no api_domain configured: this server");
    t.p.update_config(|c| {
        c.clients[1] = ClientConfig::new("other", "other_s", "org_b").with_api_domain("https://www.zohoapis.in")
    });
    let code = t.p.mint_self_client_code("other", &["ZohoCRM.modules.ALL"]);
    let pairs =
        [("grant_type", "authorization_code"), ("client_id", "other"), ("client_secret", "other_s"), ("code", &code)];
    let (_, v) = t.post_form("/oauth/v2/token", &pairs).await;
    assert_eq!(v["api_domain"], "https://www.zohoapis.in");
}
