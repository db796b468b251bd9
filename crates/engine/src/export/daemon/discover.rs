//! Which engine sockets `--load` tries, in order, as the docker and podman
//! clients find theirs: `DOCKER_HOST`, else docker's current context when
//! it is a plain unix socket, else `/var/run/docker.sock`; then podman's
//! Docker-compatible API: `CONTAINER_HOST`, `$XDG_RUNTIME_DIR/podman/podman.sock`
//! (rootless) and `/run/podman/podman.sock` (root).

use std::path::{Path, PathBuf};

/// One place an engine may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What named it: `DOCKER_HOST`, `docker context NAME`, `docker's
    /// default socket`, `CONTAINER_HOST`, `podman's rootless socket`,
    /// `podman's root socket`.
    pub origin: String,
    /// The address as given (`unix:///run/docker.sock`, `tcp://…`).
    pub address: String,
    /// The socket, when the address is a unix one.
    pub socket: Option<PathBuf>,
}

impl Candidate {
    fn new(origin: impl Into<String>, address: impl Into<String>) -> Candidate {
        let address = address.into();
        let socket = address.strip_prefix("unix://").map(PathBuf::from);
        Candidate {
            origin: origin.into(),
            address,
            socket,
        }
    }
}

/// docker's default socket.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// podman's socket when run as root (`podman system service`, systemd's `podman.socket`).
pub const PODMAN_ROOT_SOCKET: &str = "/run/podman/podman.sock";

/// The candidates, in the order they are tried. `env` reads the
/// environment (a parameter for tests); `root` is whether hoist runs as
/// root of the host (podman's root socket then comes first).
pub fn candidates(env: &dyn Fn(&str) -> Option<String>, root: bool) -> Vec<Candidate> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    // docker: DOCKER_HOST wins over any context, as in the docker CLI.
    if let Some(host) = env("DOCKER_HOST") {
        out.push(Candidate::new("DOCKER_HOST", host));
    } else {
        match docker_context(&env) {
            Some((name, host)) => out.push(Candidate::new(format!("docker context {name}"), host)),
            None => out.push(Candidate::new(
                "docker's default socket",
                format!("unix://{DOCKER_SOCKET}"),
            )),
        }
    }
    // podman's Docker-compatible API.
    if let Some(host) = env("CONTAINER_HOST") {
        out.push(Candidate::new("CONTAINER_HOST", host));
    }
    let rootless = env("XDG_RUNTIME_DIR").map(|dir| {
        Candidate::new(
            "podman's rootless socket",
            format!(
                "unix://{}",
                Path::new(&dir).join("podman/podman.sock").display()
            ),
        )
    });
    let rooted = Candidate::new(
        "podman's root socket",
        format!("unix://{PODMAN_ROOT_SOCKET}"),
    );
    if root {
        out.push(rooted);
        out.extend(rootless);
    } else {
        out.extend(rootless);
        out.push(rooted);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.address.clone()));
    out
}

/// docker's current context (`DOCKER_CONTEXT`, else `currentContext` in
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) and its
/// docker endpoint's host, when it is not `default` and its metadata is
/// where the docker CLI keeps it (`contexts/meta/<sha256 of the
/// name>/meta.json`). Anything else: `None` (the default socket).
fn docker_context(env: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))?;
    let name = match env("DOCKER_CONTEXT") {
        Some(n) => n,
        None => {
            let text = std::fs::read(dir.join("config.json")).ok()?;
            let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
            config.get("currentContext")?.as_str()?.to_string()
        }
    };
    if name.is_empty() || name == "default" {
        return None;
    }
    let id = crate::digest::Digest::of(name.as_bytes());
    let meta = dir.join("contexts/meta").join(id.hex()).join("meta.json");
    let text = std::fs::read(meta).ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let host = meta
        .pointer("/Endpoints/docker/Host")?
        .as_str()?
        .to_string();
    Some((name, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn addresses(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.address.as_str()).collect()
    }

    #[test]
    fn docker_first_then_podman_as_their_clients_find_them() {
        let c = candidates(&env(&[("XDG_RUNTIME_DIR", "/run/user/1000")]), false);
        assert_eq!(
            addresses(&c),
            [
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///run/podman/podman.sock"
            ]
        );
        let c = candidates(
            &env(&[
                ("DOCKER_HOST", "unix:///tmp/d.sock"),
                ("CONTAINER_HOST", "unix:///tmp/p.sock"),
                ("XDG_RUNTIME_DIR", "/run/user/0"),
            ]),
            true,
        );
        assert_eq!(
            addresses(&c),
            [
                "unix:///tmp/d.sock",
                "unix:///tmp/p.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/0/podman/podman.sock"
            ]
        );
        assert_eq!(c[0].origin, "DOCKER_HOST");
        assert_eq!(c[0].socket.as_deref(), Some(Path::new("/tmp/d.sock")));
        let tcp = candidates(&env(&[("DOCKER_HOST", "tcp://10.0.0.1:2375")]), true);
        assert_eq!(tcp[0].socket, None);
    }

    #[test]
    fn a_docker_context_with_a_unix_socket_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let id = crate::digest::Digest::of(b"colima");
        let meta = dir.path().join("contexts/meta").join(id.hex());
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///home/u/.colima/docker.sock","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"colima"}"#,
        )
        .unwrap();
        let path = dir.path().display().to_string();
        let get = move |k: &str| (k == "DOCKER_CONFIG").then(|| path.clone());
        let c = candidates(&get, true);
        assert_eq!(c[0].origin, "docker context colima");
        assert_eq!(c[0].address, "unix:///home/u/.colima/docker.sock");
        // `default` (or no context) is the default socket.
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"default"}"#,
        )
        .unwrap();
        assert_eq!(
            candidates(&get, true)[0].address,
            "unix:///var/run/docker.sock"
        );
    }
}
