//! A token server the real registry's `token` auth accepts: ES256 JWTs
//! with the signing certificate in `x5c`, that certificate being the
//! registry's `rootcertbundle`. Basic credentials (`GET`) and refresh
//! tokens (`POST grant_type=refresh_token`) are checked; every requested
//! action is granted to a known user.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use tokio::net::TcpListener;

use super::http::{Request, parse_form, read_request, respond};

pub const SERVICE: &str = "hoist-test-registry";
pub const ISSUER: &str = "hoist-test-issuer";

pub struct TokenServer {
    pub port: u16,
    /// The certificate to put in the registry's `rootcertbundle`.
    pub bundle: PathBuf,
    /// Tokens handed out.
    pub issued: Arc<AtomicUsize>,
    /// Requests refused (bad credentials).
    pub refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

struct Config {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    users: Vec<(String, String)>,
    refresh_tokens: Vec<(String, String)>,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenServer {
    /// `users`: (name, password); `refresh_tokens`: (token, user).
    pub async fn start(
        dir: &Path,
        users: &[(&str, &str)],
        refresh_tokens: &[(&str, &str)],
    ) -> TokenServer {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["hoist-token-signer".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hoist token signer");
        let cert = params.self_signed(&key_pair).unwrap();
        let bundle = dir.join("token-signer.pem");
        std::fs::write(&bundle, cert.pem()).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let issued = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(Config {
            key,
            cert_der: cert.der().to_vec(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            refresh_tokens: refresh_tokens
                .iter()
                .map(|(t, u)| (t.to_string(), u.to_string()))
                .collect(),
            issued: issued.clone(),
            refused: refused.clone(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let (status, body) = config.answer(&request);
                    let headers = [("Content-Type", "application/json".to_string())];
                    respond(&mut stream, status, &headers, body.as_bytes(), false).await;
                });
            }
        });
        TokenServer {
            port,
            bundle,
            issued,
            refused,
            task,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Config {
    fn answer(&self, request: &Request) -> (u16, String) {
        let (user, scopes, service) = match request.method.as_str() {
            "GET" => {
                let user = request
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Basic "))
                    .and_then(|b| STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|pair| {
                        let (u, p) = pair.split_once(':')?;
                        self.users
                            .iter()
                            .any(|(uu, pp)| uu == u && pp == p)
                            .then(|| u.to_string())
                    });
                let service = request.query_all("service").pop().unwrap_or_default();
                (user, request.query_all("scope"), service)
            }
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&request.body));
                let get = |k: &str| form.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
                let user = (get("grant_type").as_deref() == Some("refresh_token"))
                    .then(|| get("refresh_token"))
                    .flatten()
                    .and_then(|t| {
                        self.refresh_tokens
                            .iter()
                            .find(|(tt, _)| *tt == t)
                            .map(|(_, u)| u.clone())
                    });
                let scopes = get("scope")
                    .map(|s| s.split(' ').map(str::to_string).collect())
                    .unwrap_or_default();
                (user, scopes, get("service").unwrap_or_default())
            }
            _ => (None, Vec::new(), String::new()),
        };
        let Some(user) = user else {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return (
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            );
        };
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": user, "aud": service, "exp": now + 600, "nbf": now - 10,
            "iat": now, "jti": format!("t{n}"), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        let jwt = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        );
        let field = if request.method == "POST" {
            "access_token"
        } else {
            "token"
        };
        (
            200,
            serde_json::json!({field: jwt, "expires_in": 600}).to_string(),
        )
    }
}
