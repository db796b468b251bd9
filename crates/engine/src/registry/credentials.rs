//! Registry credentials as Docker keeps them: `config.json` in
//! `$DOCKER_CONFIG` (else `~/.docker`), with `auths` entries (base64
//! `auth`, `username`/`password`, `identitytoken`), and the external
//! helpers `docker-credential-<name>` named by `credHelpers` (per
//! registry) or `credsStore` (all registries), spoken to with Docker's
//! `get`/`store`/`erase` protocol on stdin/stdout.
//!
//! [`CredentialStore::login`] and [`CredentialStore::logout`] change the
//! file atomically (a temp file in the same directory, synced, renamed
//! over the old one, mode 0600), keeping every field hoist does not know.
//!
//! Docker Hub's key is `https://index.docker.io/v1/`; other registries
//! are keyed by `host[:port]`, and entries written as URLs
//! (`https://host/v1/`) match too.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::reference::DEFAULT_DOMAIN;

const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// What a helper's `Username` is when `Secret` is an identity token.
const TOKEN_USERNAME: &str = "<token>";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("docker config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("docker config {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper {program} {action} for {registry}: {message}")]
    Helper {
        program: String,
        action: &'static str,
        registry: String,
        message: String,
    },
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the
    /// registry's token endpoint.
    IdentityToken { username: String, token: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, ***)")
            }
        }
    }
}

/// Where credentials come from: one Docker config directory, and where
/// to look for `docker-credential-*` programs.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
    helper_dirs: Vec<PathBuf>,
}

/// The key Docker files a registry's credentials under.
pub fn credential_key(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN || domain == "index.docker.io" || domain == "registry-1.docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// Docker's `ConvertToHostname`: `https://host:5000/v1/` → `host:5000`.
fn key_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`, else `.docker`.
pub fn config_dir_from(docker_config: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (docker_config, home) {
        (Some(d), _) if !d.is_empty() => PathBuf::from(d),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".docker"),
        _ => PathBuf::from(".docker"),
    }
}

impl CredentialStore {
    /// The directory from the environment, as Docker picks it.
    pub fn from_env() -> CredentialStore {
        let dir = config_dir_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"));
        CredentialStore::new(dir)
    }

    pub fn new(dir: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore {
            dir: dir.into(),
            helper_dirs: Vec::new(),
        }
    }

    /// Look for `docker-credential-*` in `dir` before `$PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> CredentialStore {
        self.helper_dirs.push(dir.into());
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn load(&self) -> Result<Map<String, Value>, CredentialError> {
        let path = self.config_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => return Err(CredentialError::Io { path, source }),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(CredentialError::Config {
                path,
                message: "not a JSON object".into(),
            }),
            Err(e) => Err(CredentialError::Config {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// The helper for `domain`: `credHelpers[key]`, else `credsStore`.
    fn helper_for(&self, config: &Map<String, Value>, domain: &str) -> Option<String> {
        let key = credential_key(domain);
        let per_registry = config
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| {
                h.get(&key).or_else(|| {
                    h.iter()
                        .find(|(k, _)| key_hostname(k) == key_hostname(&key))
                        .map(|(_, v)| v)
                })
            });
        per_registry
            .or_else(|| config.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials for the registry `domain` (`docker.io`,
    /// `host:5000`), or `None` for anonymous access.
    pub async fn get(&self, domain: &str) -> Result<Option<Credentials>, CredentialError> {
        let config = self.load()?;
        if let Some(helper) = self.helper_for(&config, domain) {
            return self.helper_get(&helper, domain).await;
        }
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let key = credential_key(domain);
        let entry = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| key_hostname(k) == key_hostname(&key))
                .map(|(_, v)| v)
        });
        match entry {
            Some(entry) => self.parse_entry(&key, entry),
            None => Ok(None),
        }
    }

    fn parse_entry(
        &self,
        key: &str,
        entry: &Value,
    ) -> Result<Option<Credentials>, CredentialError> {
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let bad = |message: String| CredentialError::Config {
            path: self.config_path(),
            message: format!("auths[{key:?}]: {message}"),
        };
        let (mut username, mut password) = (field("username"), field("password"));
        let auth = field("auth");
        if !auth.is_empty() {
            let decoded = STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("auth is not base64: {e}")))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8".into()))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| bad("auth is not base64 of user:password".into()))?;
            (username, password) = (u.to_string(), p.to_string());
        }
        let token = field("identitytoken");
        if !token.is_empty() {
            return Ok(Some(Credentials::IdentityToken { username, token }));
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials::Basic { username, password }))
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        self.helper_dirs
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(name))
    }

    /// Run `docker-credential-<helper> <action>` with `input` on stdin.
    async fn run_helper(
        &self,
        helper: &str,
        action: &'static str,
        domain: &str,
        input: &[u8],
    ) -> Result<(bool, String), CredentialError> {
        let program = self.helper_program(helper);
        let fail = |message: String| CredentialError::Helper {
            program: program.display().to_string(),
            action,
            registry: domain.to_string(),
            message,
        };
        let mut child = tokio::process::Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() {
            return Ok((true, stdout));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Ok((false, if stdout.is_empty() { stderr } else { stdout }))
    }

    async fn helper_get(
        &self,
        helper: &str,
        domain: &str,
    ) -> Result<Option<Credentials>, CredentialError> {
        let key = credential_key(domain);
        let (ok, out) = self
            .run_helper(helper, "get", domain, key.as_bytes())
            .await?;
        if !ok {
            if out.contains("credentials not found") {
                return Ok(None);
            }
            return Err(self.helper_error(helper, "get", domain, out));
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let reply: Reply = serde_json::from_str(&out)
            .map_err(|e| self.helper_error(helper, "get", domain, format!("bad reply: {e}")))?;
        if reply.username == TOKEN_USERNAME {
            return Ok(Some(Credentials::IdentityToken {
                username: String::new(),
                token: reply.secret,
            }));
        }
        Ok(Some(Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        }))
    }

    fn helper_error(
        &self,
        helper: &str,
        action: &'static str,
        domain: &str,
        message: String,
    ) -> CredentialError {
        CredentialError::Helper {
            program: self.helper_program(helper).display().to_string(),
            action,
            registry: domain.to_string(),
            message,
        }
    }

    /// Save credentials for `domain`: through the configured helper, or
    /// into `auths` in `config.json`.
    pub async fn login(
        &self,
        domain: &str,
        credentials: &Credentials,
    ) -> Result<(), CredentialError> {
        let mut config = self.load()?;
        let key = credential_key(domain);
        let entry = if let Some(helper) = self.helper_for(&config, domain) {
            let (username, secret) = match credentials {
                Credentials::Basic { username, password } => (username.as_str(), password.as_str()),
                Credentials::IdentityToken { token, .. } => (TOKEN_USERNAME, token.as_str()),
            };
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": secret});
            let (ok, out) = self
                .run_helper(&helper, "store", domain, input.to_string().as_bytes())
                .await?;
            if !ok {
                return Err(self.helper_error(&helper, "store", domain, out));
            }
            // Docker leaves an empty entry so the registry is listed.
            Value::Object(Map::new())
        } else {
            match credentials {
                Credentials::Basic { username, password } => {
                    serde_json::json!({"auth": STANDARD.encode(format!("{username}:{password}"))})
                }
                Credentials::IdentityToken { username, token } => serde_json::json!({
                    "auth": STANDARD.encode(format!("{username}:")),
                    "identitytoken": token,
                }),
            }
        };
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(auths) = auths.as_object_mut() {
            auths.retain(|k, _| k == &key || key_hostname(k) != key_hostname(&key));
            auths.insert(key, entry);
        }
        self.save(&config)
    }

    /// Forget the credentials for `domain`; true if there were any.
    pub async fn logout(&self, domain: &str) -> Result<bool, CredentialError> {
        let mut config = self.load()?;
        let key = credential_key(domain);
        let mut removed = false;
        if let Some(helper) = self.helper_for(&config, domain) {
            let (ok, out) = self
                .run_helper(&helper, "erase", domain, key.as_bytes())
                .await?;
            if ok {
                removed = true;
            } else if !out.contains("credentials not found") {
                return Err(self.helper_error(&helper, "erase", domain, out));
            }
        }
        if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
            let before = auths.len();
            auths.retain(|k, _| key_hostname(k) != key_hostname(&key));
            removed |= auths.len() != before;
        }
        self.save(&config)?;
        Ok(removed)
    }

    /// Write `config.json` atomically with mode 0600, following a symlink
    /// to the real file as Docker does.
    fn save(&self, config: &Map<String, Value>) -> Result<(), CredentialError> {
        let io = |path: &Path, source| CredentialError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut path = self.config_path();
        if let Ok(real) = std::fs::canonicalize(&path) {
            path = real;
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut text = serde_json::to_vec_pretty(&Value::Object(config.clone()))
            .map_err(|e| io(&path, std::io::Error::other(e)))?;
        text.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(&dir)
            .map_err(|e| io(&dir, e))?;
        tmp.write_all(&text).map_err(|e| io(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| io(tmp.path(), e))?;
        // tempfile creates the file 0600 already.
        tmp.persist(&path).map_err(|e| io(&path, e.error))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
