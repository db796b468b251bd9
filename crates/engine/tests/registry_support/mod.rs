//! Real parts for the registry tests: a `docker-registry` process (the
//! CNCF distribution registry from Debian) on a free loopback port with
//! its own storage, a test CA and server certificate (rcgen), an
//! htpasswd file (bcrypt), a token server (`token`), a fault-injecting
//! stub (`stub`), and a small image with real gzip tar layers.
#![allow(dead_code)]

pub mod http;
pub mod stub;
pub mod token;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_engine::digest::Digest;
use hoist_engine::registry::{BlobRef, ClientOptions, CredentialStore, RetryPolicy};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a server certificate for `127.0.0.1` and `localhost`.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_certs(dir: &Path) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hoist test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let certs = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&certs.ca, ca.pem()).unwrap();
    std::fs::write(&certs.cert, cert.pem()).unwrap();
    std::fs::write(&certs.key, key.serialize_pem()).unwrap();
    certs
}

/// An htpasswd file with one bcrypt entry.
pub fn htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("htpasswd");
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
    path
}

pub enum Auth {
    None,
    Basic {
        htpasswd: PathBuf,
    },
    Token {
        realm: String,
        service: String,
        issuer: String,
        bundle: PathBuf,
    },
}

/// A running `docker-registry serve`, killed on drop.
pub struct RegistryProc {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl RegistryProc {
    /// Start on a free port; a port taken between probing and binding
    /// (another test) is retried with a new one.
    pub fn start(tls: Option<&Certs>, auth: Auth) -> RegistryProc {
        for _ in 0..3 {
            if let Some(registry) = RegistryProc::try_start(tls, &auth) {
                return registry;
            }
        }
        panic!("docker-registry could not bind a free port three times");
    }

    fn try_start(tls: Option<&Certs>, auth: &Auth) -> Option<RegistryProc> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let tls = match tls {
            Some(c) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.cert.display(),
                c.key.display()
            ),
            None => String::new(),
        };
        let auth = match auth {
            Auth::None => String::new(),
            Auth::Basic { htpasswd } => {
                format!(
                    "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                bundle,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                bundle.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: hoist-test-secret\n{tls}{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        let mut registry = RegistryProc { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                let log = registry.log();
                if log.contains("address already in use") {
                    return None;
                }
                panic!("docker-registry exited with {status}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(registry)
    }

    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries that keep tests fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        max_elapsed: Duration::from_secs(10),
    }
}

/// Options with a private Docker config dir and fast retries.
pub fn options(docker_config: &Path) -> ClientOptions {
    ClientOptions {
        credentials: CredentialStore::new(docker_config),
        retry: fast_retry(),
        ..ClientOptions::default()
    }
}

/// A `config.json` with basic credentials for `domain`.
pub fn write_docker_config(dir: &Path, domain: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({"auths": {domain: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

/// A small OCI image: config, gzip tar layers, manifest (raw JSON).
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl TestImage {
    pub fn new(seed: &str, layer_count: usize) -> TestImage {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for i in 0..layer_count {
            let mut tar = tar::Builder::new(Vec::new());
            let body = format!("layer {i} of {seed}\n").repeat(200 + i);
            let mut header = tar::Header::new_ustar();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("file{i}.txt"), body.as_bytes())
                .unwrap();
            let tar = tar.into_inner().unwrap();
            diff_ids.push(Digest::of(&tar).to_string());
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&tar).unwrap();
            layers.push(gz.finish().unwrap());
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let desc = |media: &str, bytes: &[u8]| serde_json::json!({"mediaType": media, "digest": Digest::of(bytes).to_string(), "size": bytes.len()});
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>(),
        }))
        .unwrap();
        TestImage {
            config,
            layers,
            manifest,
        }
    }

    /// Config first, then the layers.
    pub fn blobs(&self) -> Vec<(BlobRef, Vec<u8>)> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .map(|b| (BlobRef::of(b), b.clone()))
            .collect()
    }
}
