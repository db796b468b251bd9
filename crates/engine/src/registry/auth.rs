//! Authentication pieces: `WWW-Authenticate` challenges (RFC 7235, as
//! registries send them), token scopes, and the token endpoint (Docker's
//! `GET` with basic credentials, or the OAuth2 refresh-token `POST` for an
//! identity token). Answering a `401` lives in `transport`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use super::transport::{BuildRequest, Registry, basic_header, body_message, send_retrying};
use super::{Client, Credentials, RegistryError, Result};
use crate::reference::Repository;

/// How a registry wants to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Token scopes for one request, e.g. `repository:a/b:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Scope(Vec<String>);

impl Scope {
    /// No repository (the `/v2/` check).
    pub fn none() -> Scope {
        Scope(Vec::new())
    }

    pub fn pull(repo: &Repository) -> Scope {
        Scope(vec![format!("repository:{}:pull", repo.path())])
    }

    pub fn push(repo: &Repository) -> Scope {
        Scope(vec![format!("repository:{}:pull,push", repo.path())])
    }

    /// A scope as written, e.g. `registry:catalog:*`.
    pub fn from_raw(scope: &str) -> Scope {
        Scope(vec![scope.to_string()])
    }

    /// Push to `to` and read from `from` (a cross-repository mount).
    pub fn mount(to: &Repository, from: &Repository) -> Scope {
        let mut s = Scope::push(to);
        s.0.push(format!("repository:{}:pull", from.path()));
        s
    }

    pub fn scopes(&self) -> &[String] {
        &self.0
    }

    /// The token cache key.
    pub fn key(&self) -> String {
        self.0.join(" ")
    }
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

impl Token {
    /// Still good for at least a few more seconds.
    pub fn is_fresh(&self) -> bool {
        Instant::now() + Duration::from_secs(5) < self.expires
    }
}

/// Per-registry auth state: the challenge seen and tokens per scope.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub challenge: Option<Challenge>,
    pub tokens: HashMap<String, Token>,
}

/// A token endpoint's answer that holds no usable token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenAnswerError {
    /// Not the JSON the endpoint should send.
    #[error("bad token answer: {0}")]
    Json(#[source] serde_json::Error),
    /// Neither `token` nor `access_token`.
    #[error("the token answer has no token")]
    NoToken,
}

/// The token endpoint's JSON answer (`token` or `access_token`).
pub(crate) fn parse_token_response(body: &[u8]) -> Result<Token, TokenAnswerError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
        #[serde(default)]
        expires_in: u64,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(TokenAnswerError::Json)?;
    let value = if answer.access_token.is_empty() {
        answer.token
    } else {
        answer.access_token
    };
    if value.is_empty() {
        return Err(TokenAnswerError::NoToken);
    }
    // Docker's minimum: a token lives at least 60 s.
    let lifetime = Duration::from_secs(answer.expires_in.max(60));
    Ok(Token {
        value,
        expires: Instant::now() + lifetime,
    })
}

/// The challenge to answer, from every `WWW-Authenticate` header;
/// `Bearer` wins over `Basic`. Unknown schemes are skipped.
pub(crate) fn challenge_from(headers: &HeaderMap) -> Option<Challenge> {
    let mut best = None;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for (scheme, params) in parse_challenges(text) {
            if scheme.eq_ignore_ascii_case("bearer") {
                if let Some(realm) = params.get("realm") {
                    return Some(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                    });
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                best = Some(Challenge::Basic);
            }
        }
    }
    best
}

/// `Scheme k=v, k="v", Scheme2 k=v` → schemes with lower-cased keys.
fn parse_challenges(text: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let is_token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && is_token(b[i]) {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let word = &text[start..i];
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let mut value = String::new();
            if j < b.len() && b[j] == b'"' {
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    let ch_len = text[j..].chars().next().map_or(1, char::len_utf8);
                    value.push_str(&text[j..j + ch_len]);
                    j += ch_len;
                }
                j += 1;
            } else {
                let vstart = j;
                while j < b.len() && b[j] != b',' && b[j] != b' ' {
                    j += 1;
                }
                value.push_str(&text[vstart..j]);
            }
            if let Some((_, params)) = out.last_mut() {
                params.insert(word.to_ascii_lowercase(), value);
            }
            i = j;
        } else {
            out.push((word.to_string(), HashMap::new()));
        }
    }
    out
}

impl Client {
    /// Ask the realm for a token: a refresh-token `POST` for an identity
    /// token, else a `GET` with basic credentials (or none).
    pub(crate) async fn fetch_token(
        &self,
        registry: &Registry,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<Token> {
        let token_error = |message: String| RegistryError::Token {
            registry: registry.domain.clone(),
            realm: realm.to_string(),
            message,
        };
        let mut url = Url::parse(realm).map_err(|e| token_error(format!("bad realm: {e}")))?;
        let what = format!("token for {:?}", scope.key());
        let mut build: Box<BuildRequest<'_>> = match &registry.credentials {
            Some(Credentials::IdentityToken { token, .. }) => {
                let mut form =
                    Url::parse("http://form/").map_err(|e| token_error(e.to_string()))?;
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", token);
                    pairs.append_pair("client_id", "hoist");
                    if let Some(s) = service {
                        pairs.append_pair("service", s);
                    }
                    if !scope.scopes().is_empty() {
                        pairs.append_pair("scope", &scope.key());
                    }
                }
                let body = form.query().unwrap_or_default().to_string();
                let url = url.clone();
                Box::new(move |http| {
                    Ok(http
                        .post(url.clone())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone()))
                })
            }
            credentials => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(s) = service {
                        pairs.append_pair("service", s);
                    }
                    for s in scope.scopes() {
                        pairs.append_pair("scope", s);
                    }
                }
                let basic = match credentials {
                    Some(Credentials::Basic { username, password }) => {
                        Some(basic_header(username, password))
                    }
                    _ => None,
                };
                Box::new(move |http| {
                    let request = http.get(url.clone());
                    Ok(match &basic {
                        Some(b) => request.header(AUTHORIZATION, b),
                        None => request,
                    })
                })
            }
        };
        let policy = &self.inner.options.retry;
        let resp = send_retrying(
            &registry.http,
            policy,
            self.inner.options.idle_timeout,
            &registry.domain,
            &what,
            true,
            &mut *build,
        )
        .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: registry.domain.clone(),
                what: format!("{what} from {realm}"),
                status: status.as_u16(),
                with_credentials: registry.credentials.is_some(),
                message: body_message(resp).await,
            });
        }
        if !status.is_success() {
            let message = body_message(resp).await;
            return Err(token_error(format!("http {}: {message}", status.as_u16())));
        }
        let body = resp.bytes().await.map_err(|e| token_error(e.to_string()))?;
        parse_token_response(&body).map_err(|e| token_error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let h = headers(&[
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        ]);
        assert_eq!(
            challenge_from(&h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            challenge_from(&headers(&[r#"Basic realm="Registry Realm""#])),
            Some(Challenge::Basic)
        );
        // Bearer preferred, unquoted values, odd spacing, escapes.
        let h = headers(&[
            r#"basic realm=x"#,
            r#"Bearer  realm = http://127.0.0.1:1/t , service="a\"b""#,
        ]);
        assert_eq!(
            challenge_from(&h),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("a\"b".into())
            })
        );
        let both = parse_challenges(r#"Basic realm="r", Bearer realm="t",service="s""#);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].1.get("service").map(String::as_str), Some("s"));
        assert_eq!(challenge_from(&headers(&["Negotiate abc"])), None);
        assert_eq!(challenge_from(&headers(&["Bearer service=x"])), None);
    }

    #[test]
    fn token_answers() {
        let t = parse_token_response(br#"{"token":"abc","expires_in":3600}"#).unwrap();
        assert_eq!(t.value, "abc");
        assert!(t.is_fresh());
        let t = parse_token_response(br#"{"access_token":"xyz","token":"abc"}"#).unwrap();
        assert_eq!(t.value, "xyz");
        assert!(
            parse_token_response(br#"{}"#)
                .unwrap_err()
                .to_string()
                .contains("no token")
        );
        assert!(parse_token_response(b"nope").is_err());
        let repo = Repository::parse("h:5000/a/b").unwrap();
        let from = Repository::parse("h:5000/c").unwrap();
        assert_eq!(
            Scope::mount(&repo, &from).key(),
            "repository:a/b:pull,push repository:c:pull"
        );
    }
}
