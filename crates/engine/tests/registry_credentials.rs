//! Docker credential lookup and storage with real files and a real
//! `docker-credential-*` helper program (a shell script speaking Docker's
//! helper protocol).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hoist_engine::registry::credentials::{config_dir_from, credential_key};
use hoist_engine::registry::{CredentialError, CredentialStore, Credentials};

fn basic(u: &str, p: &str) -> Option<Credentials> {
    Some(Credentials::Basic {
        username: u.into(),
        password: p.into(),
    })
}

fn write_config(dir: &Path, json: serde_json::Value) {
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

/// `docker-credential-NAME`: `get` answers for `known:5000` (echoing the
/// server URL it was given), `<token>` for `tok.example`, "not found"
/// otherwise; `store`/`erase` append their stdin to `calls.log`.
fn helper(dir: &Path, name: &str) -> PathBuf {
    let log = dir.join("calls.log");
    let script = format!(
        r#"#!/bin/sh
input=$(cat)
case "$1" in
get)
  case "$input" in
  known:5000) printf '{{"ServerURL":"%s","Username":"helper-user","Secret":"helper-pass"}}' "$input" ;;
  tok.example) printf '{{"ServerURL":"%s","Username":"<token>","Secret":"refresh-tok"}}' "$input" ;;
  broken.example) echo "helper exploded" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
  esac ;;
store|erase) printf '%s %s\n' "$1" "$input" >> {log} ;;
*) exit 2 ;;
esac
"#,
        log = log.display()
    );
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

#[tokio::test]
async fn registry_credentials_from_auths() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},          // hub:hubpw
            "plain.example:5000": {"username": "u", "password": "p"},
            "https://urlform.example/v1/": {"auth": "dXJsOnB3OmV4dHJh"},     // url:pw:extra
            "idt.example": {"auth": "bWU6", "identitytoken": "refresh"},
            "empty.example": {},
            "bad.example": {"auth": "%%%"},
        }}),
    );
    let store = CredentialStore::new(dir.path());
    assert_eq!(store.get("docker.io").await.unwrap(), basic("hub", "hubpw"));
    assert_eq!(
        store.get("plain.example:5000").await.unwrap(),
        basic("u", "p")
    );
    // A URL-shaped key matches its host; a password may contain ':'.
    assert_eq!(
        store.get("urlform.example").await.unwrap(),
        basic("url", "pw:extra")
    );
    assert_eq!(
        store.get("idt.example").await.unwrap(),
        Some(Credentials::IdentityToken {
            username: "me".into(),
            token: "refresh".into()
        })
    );
    assert_eq!(store.get("empty.example").await.unwrap(), None);
    assert_eq!(store.get("other.example").await.unwrap(), None);
    let err = store.get("bad.example").await.unwrap_err();
    assert!(
        err.to_string().contains("config.json") && err.to_string().contains("bad.example"),
        "{err}"
    );
    // Secrets never show in Debug output.
    assert!(!format!("{:?}", basic("hub", "hubpw")).contains("hubpw"));
    assert_eq!(credential_key("docker.io"), "https://index.docker.io/v1/");

    // A missing file is anonymous; a broken one names its path.
    let none = tempfile::tempdir().unwrap();
    assert_eq!(
        CredentialStore::new(none.path())
            .get("docker.io")
            .await
            .unwrap(),
        None
    );
    std::fs::write(none.path().join("config.json"), "{not json").unwrap();
    let err = CredentialStore::new(none.path())
        .get("docker.io")
        .await
        .unwrap_err();
    assert!(matches!(err, CredentialError::Config { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&none.path().join("config.json").display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn registry_credentials_from_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let log = helper(bin.path(), "hoisttest");
    write_config(
        dir.path(),
        serde_json::json!({
            "auths": {"known:5000": {"auth": "aWdub3JlZDppZ25vcmVk"}},
            "credHelpers": {"known:5000": "hoisttest", "tok.example": "hoisttest", "broken.example": "hoisttest", "gone.example": "absent"},
        }),
    );
    let store = CredentialStore::new(dir.path()).with_helper_dir(bin.path());
    // The helper wins over auths, and got the server name on stdin.
    assert_eq!(
        store.get("known:5000").await.unwrap(),
        basic("helper-user", "helper-pass")
    );
    assert_eq!(
        store.get("tok.example").await.unwrap(),
        Some(Credentials::IdentityToken {
            username: String::new(),
            token: "refresh-tok".into()
        })
    );
    let err = store.get("broken.example").await.unwrap_err().to_string();
    assert!(
        err.contains("docker-credential-hoisttest")
            && err.contains("broken.example")
            && err.contains("helper exploded"),
        "{err}"
    );
    let err = store.get("gone.example").await.unwrap_err().to_string();
    assert!(err.contains("docker-credential-absent"), "{err}");
    // Not in credHelpers and no credsStore: the file.
    assert_eq!(store.get("elsewhere.example").await.unwrap(), None);

    // credsStore covers every registry; "not found" is anonymous.
    write_config(
        dir.path(),
        serde_json::json!({"credsStore": "hoisttest", "HttpHeaders": {"X-Keep": "me"}}),
    );
    assert_eq!(
        store.get("known:5000").await.unwrap(),
        basic("helper-user", "helper-pass")
    );
    assert_eq!(store.get("unknown.example").await.unwrap(), None);

    // login through the store helper: `store` gets the JSON, the file
    // keeps its other fields and an empty auths entry.
    store
        .login("new.example", &basic("n", "pw").unwrap())
        .await
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap();
    let stored = calls
        .lines()
        .find_map(|l| l.strip_prefix("store "))
        .expect("store was called");
    let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": "new.example", "Username": "n", "Secret": "pw"})
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["HttpHeaders"]["X-Keep"], "me");
    assert_eq!(config["auths"]["new.example"], serde_json::json!({}));
    assert!(store.logout("new.example").await.unwrap());
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("erase new.example")
    );
}

#[tokio::test]
async fn registry_credentials_login_logout_write_atomically() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        serde_json::json!({"psFormat": "table", "auths": {"https://keep.example/v1/": {"auth": "azpw"}}}),
    );
    let store = CredentialStore::new(dir.path());
    store
        .login("docker.io", &basic("hub", "pw").unwrap())
        .await
        .unwrap();
    store
        .login(
            "idt.example",
            &Credentials::IdentityToken {
                username: "me".into(),
                token: "rt".into(),
            },
        )
        .await
        .unwrap();
    let path = dir.path().join("config.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec![OsString::from("config.json")],
        "no temp file left"
    );
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(config["psFormat"], "table");
    assert_eq!(
        config["auths"]["https://index.docker.io/v1/"]["auth"],
        "aHViOnB3"
    );
    assert_eq!(config["auths"]["https://keep.example/v1/"]["auth"], "azpw");
    assert_eq!(store.get("docker.io").await.unwrap(), basic("hub", "pw"));
    assert_eq!(
        store.get("idt.example").await.unwrap(),
        Some(Credentials::IdentityToken {
            username: "me".into(),
            token: "rt".into()
        })
    );
    // Re-login replaces; logout removes only that registry.
    store
        .login("docker.io", &basic("hub", "pw2").unwrap())
        .await
        .unwrap();
    assert_eq!(store.get("docker.io").await.unwrap(), basic("hub", "pw2"));
    assert!(store.logout("docker.io").await.unwrap());
    assert!(!store.logout("docker.io").await.unwrap());
    assert_eq!(store.get("docker.io").await.unwrap(), None);
    assert!(store.get("keep.example").await.unwrap().is_some());

    // A symlinked config.json is written through, not replaced.
    let real = tempfile::tempdir().unwrap();
    let link_dir = tempfile::tempdir().unwrap();
    std::fs::write(real.path().join("config.json"), "{}").unwrap();
    std::os::unix::fs::symlink(
        real.path().join("config.json"),
        link_dir.path().join("config.json"),
    )
    .unwrap();
    CredentialStore::new(link_dir.path())
        .login("x.example", &basic("a", "b").unwrap())
        .await
        .unwrap();
    assert!(
        std::fs::symlink_metadata(link_dir.path().join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(real.path().join("config.json"))
            .unwrap()
            .contains("x.example")
    );

    // A new directory is created on first login.
    let fresh = tempfile::tempdir().unwrap();
    let nested = fresh.path().join("a/b");
    CredentialStore::new(&nested)
        .login("y.example", &basic("c", "d").unwrap())
        .await
        .unwrap();
    assert_eq!(
        CredentialStore::new(&nested)
            .get("y.example")
            .await
            .unwrap(),
        basic("c", "d")
    );
}

#[test]
fn registry_credentials_config_dir_like_docker() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        config_dir_from(os("/cfg"), os("/home/u")),
        PathBuf::from("/cfg")
    );
    assert_eq!(
        config_dir_from(None, os("/home/u")),
        PathBuf::from("/home/u/.docker")
    );
    assert_eq!(
        config_dir_from(os(""), os("/home/u")),
        PathBuf::from("/home/u/.docker")
    );
    assert_eq!(config_dir_from(None, None), PathBuf::from(".docker"));
}
