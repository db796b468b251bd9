//! Image references (`busybox`, `host:5000/a/b:tag`, `name@sha256:…`),
//! parsed and normalised as docker/distribution's `ParseNormalizedNamed`
//! (module `github.com/distribution/reference`) does.
//!
//! Grammar (distribution's `regexp.go`):
//!
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [ domain "/" ] path-component ( "/" path-component )*
//! domain      := host [ ":" port ]          host: dns labels or "[" ipv6 "]"
//! path-comp   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation: a first component without `.` or `:`, not `localhost`
//! and all lower-case is not a domain, so `busybox` is
//! `docker.io/library/busybox`; `index.docker.io` means `docker.io`.
//! [`Reference::parse`] adds the `latest` tag to a bare name, as
//! `docker pull` does (`TagNameOnly`).
//!
//! Deliberate differences: only `sha256` digests are accepted (the
//! [`Digest`] type), and a name whose first component looks like a
//! domain but is not a valid one (`a_b.com/x`) is rejected instead of
//! being kept with an empty domain.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry a name without a domain belongs to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a bare name gets.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository path (without the domain).
pub const REPOSITORY_PATH_MAX: usize = 255;
const TAG_MAX: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference \"\": repository name must have at least one component")]
    Empty,
    #[error("invalid reference format: {0:?}")]
    InvalidFormat(String),
    #[error("invalid reference format {reference:?}: repository name ({name}) must be lowercase")]
    Uppercase { reference: String, name: String },
    #[error(
        "invalid reference {reference:?}: repository name must not be more than 255 characters (it has {len})"
    )]
    NameTooLong { reference: String, len: usize },
    #[error(
        "invalid repository name ({0}), cannot specify 64-byte hexadecimal strings"
    )]
    HexName(String),
    #[error("invalid reference {reference:?}: {reason}")]
    Digest { reference: String, reason: String },
    #[error("invalid tag {0:?}: expected [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    Tag(String),
}

/// A repository: registry domain plus path (`docker.io` + `library/busybox`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    domain: String,
    path: String,
}

/// A normalised reference: repository, optional tag, optional digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Repository {
    /// A normalised repository name; a tag or digest is an error.
    pub fn parse(s: &str) -> Result<Repository, ReferenceError> {
        let r = Reference::parse_normalized_named(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        Ok(r.repository)
    }

    /// `docker.io`, `host:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox` for `docker.io/library/busybox`, else the full name.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

impl Reference {
    /// Parse and normalise, adding the `latest` tag to a bare name
    /// (what `docker pull NAME` means).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// distribution's `ParseNormalizedNamed`: no default tag is added.
    pub fn parse_normalized_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                reference: s.to_string(),
                name: remote.to_string(),
            });
        }
        let parsed = parse_any(&format!("{domain}/{remainder}"), s)?;
        match parsed.domain {
            Some(domain) => Ok(Reference {
                repository: Repository {
                    domain,
                    path: parsed.path,
                },
                tag: parsed.tag,
                digest: parsed.digest,
            }),
            None => Err(ReferenceError::InvalidFormat(s.to_string())),
        }
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub fn domain(&self) -> &str {
        &self.repository.domain
    }

    pub fn path(&self) -> &str {
        &self.repository.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository and digest with `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same repository and tag with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// What the registry API is asked for: the digest when there is one
    /// (it wins over a tag, as in Docker), else the tag, else `latest`.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The short form Docker prints: `busybox:latest`, `user/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.repository.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, remote) = match name.split_once('/') {
        None => (DEFAULT_DOMAIN, name.to_string()),
        Some((first, rest)) => {
            if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first
            {
                let first = if first == LEGACY_DEFAULT_DOMAIN {
                    DEFAULT_DOMAIN
                } else {
                    first
                };
                (first, rest.to_string())
            } else {
                (DEFAULT_DOMAIN, name.to_string())
            }
        }
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain.to_string(), format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain.to_string(), remote)
}

struct Parsed {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// distribution's `Parse`; errors name `original`.
fn parse_any(s: &str, original: &str) -> Result<Parsed, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let Some(m) = match_reference(s) else {
        let lower = s.to_lowercase();
        if lower != s && match_reference(&lower).is_some() {
            let name = s.split([':', '@']).next().unwrap_or(s);
            return Err(ReferenceError::Uppercase {
                reference: original.to_string(),
                name: name.to_string(),
            });
        }
        return Err(ReferenceError::InvalidFormat(original.to_string()));
    };
    if m.path.len() > REPOSITORY_PATH_MAX {
        return Err(ReferenceError::NameTooLong {
            reference: original.to_string(),
            len: m.path.len(),
        });
    }
    let digest = match m.digest {
        None => None,
        Some(d) => Some(parse_digest(d, original)?),
    };
    Ok(Parsed {
        domain: m.domain.map(str::to_string),
        path: m.path.to_string(),
        tag: m.tag.map(str::to_string),
        digest,
    })
}

fn parse_digest(d: &str, original: &str) -> Result<Digest, ReferenceError> {
    let reason = match d.split_once(':') {
        Some(("sha256", hex)) if hex.len() != 64 => "invalid checksum digest length".to_string(),
        Some(("sha256", _)) => match d.parse::<Digest>() {
            Ok(digest) => return Ok(digest),
            Err(e) => e.to_string(),
        },
        Some((alg, _)) => format!("unsupported digest algorithm {alg:?}"),
        None => "invalid checksum digest format".to_string(),
    };
    Err(ReferenceError::Digest {
        reference: original.to_string(),
        reason,
    })
}

struct Match<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// The anchored `ReferenceRegexp`, written out by hand. The split is
/// unique: `@` starts the digest, and a last `:` with no `/` after it
/// starts the tag (a port is always followed by `/`).
fn match_reference(s: &str) -> Option<Match<'_>> {
    let (left, digest) = match s.split_once('@') {
        Some((left, d)) => (left, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest
        && !is_digest_pattern(d)
    {
        return None;
    }
    let (name, tag) = match left.rfind(':') {
        Some(i) if !left[i + 1..].contains('/') => (&left[..i], Some(&left[i + 1..])),
        _ => (left, None),
    };
    if let Some(t) = tag
        && !is_tag(t)
    {
        return None;
    }
    let (domain, path) = match_name(name)?;
    Some(Match {
        domain,
        path,
        tag,
        digest,
    })
}

fn match_name(name: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = name.split_once('/')
        && is_domain_and_port(first)
        && is_remote_name(rest)
    {
        return Some((Some(first), rest));
    }
    is_remote_name(name).then_some((None, name))
}

fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_pattern(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, rest) = if let Some(inner) = s.strip_prefix('[') {
        let Some((ip, rest)) = inner.split_once(']') else {
            return false;
        };
        let ip_ok = !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (ip_ok, rest)
    } else {
        let (host, rest) = s.split_at(s.find(':').unwrap_or(s.len()));
        (host.split('.').all(is_domain_component), rest)
    };
    host_ok && (rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port))
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*`
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' if b.get(i + 1) == Some(&b'_') => i += 2,
            b'_' => i += 1,
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FF: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn full(s: &str) -> String {
        Reference::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    /// distribution/reference `TestReferenceParse` (the raw `Parse`,
    /// without normalisation): input, domain, path, tag, digest.
    #[test]
    fn raw_parse_matches_distribution_table() {
        let long_path = format!("{}a", "a/".repeat(127));
        let ok: Vec<(String, Option<&str>, String, Option<&str>, Option<&str>)> = vec![
            ("test_com".into(), None, "test_com".into(), None, None),
            ("test.com:tag".into(), None, "test.com".into(), Some("tag"), None),
            ("test.com:5000".into(), None, "test.com".into(), Some("5000"), None),
            ("test.com/repo:tag".into(), Some("test.com"), "repo".into(), Some("tag"), None),
            ("test:5000/repo".into(), Some("test:5000"), "repo".into(), None, None),
            ("test:5000/repo:tag".into(), Some("test:5000"), "repo".into(), Some("tag"), None),
            (format!("test:5000/repo@{FF}"), Some("test:5000"), "repo".into(), None, Some(FF)),
            (format!("test:5000/repo:tag@{FF}"), Some("test:5000"), "repo".into(), Some("tag"), Some(FF)),
            ("lowercase:Uppercase".into(), None, "lowercase".into(), Some("Uppercase"), None),
            (format!("{long_path}:tag-puts-this-over-max"), Some("a"), long_path[2..].to_string(), Some("tag-puts-this-over-max"), None),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(), Some("sub-dom1.foo.com"), "bar/baz/quux".into(), Some("some-long-tag"), None),
            ("b.gcr.io/test.example.com/my-app:test.example.com".into(), Some("b.gcr.io"), "test.example.com/my-app".into(), Some("test.example.com"), None),
            ("xn--n3h.com/myimage:xn--n3h.com".into(), Some("xn--n3h.com"), "myimage".into(), Some("xn--n3h.com"), None),
            ("foo_bar.com:8080".into(), None, "foo_bar.com".into(), Some("8080"), None),
            ("foo/foo_bar.com:8080".into(), Some("foo"), "foo_bar.com".into(), Some("8080"), None),
            ("192.168.1.1".into(), None, "192.168.1.1".into(), None, None),
            ("192.168.1.1:5000".into(), None, "192.168.1.1".into(), Some("5000"), None),
            ("192.168.1.1:5000/repo:5050".into(), Some("192.168.1.1:5000"), "repo".into(), Some("5050"), None),
            ("[2001:db8::1]/repo".into(), Some("[2001:db8::1]"), "repo".into(), None, None),
            ("[2001:db8:1:2:3:4:5:6]/repo:tag".into(), Some("[2001:db8:1:2:3:4:5:6]"), "repo".into(), Some("tag"), None),
            (format!("[2001:db8::1]:5000/repo:tag@{FF}"), Some("[2001:db8::1]:5000"), "repo".into(), Some("tag"), Some(FF)),
            ("[::1]:5000/repo".into(), Some("[::1]:5000"), "repo".into(), None, None),
            (format!("example.com/{}:tag", "a".repeat(255)), Some("example.com"), "a".repeat(255), Some("tag"), None),
        ];
        for (input, domain, path, tag, digest) in ok {
            let p = parse_any(&input, &input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.domain.as_deref(), domain, "{input}");
            assert_eq!(p.path, path, "{input}");
            assert_eq!(p.tag.as_deref(), tag, "{input}");
            assert_eq!(p.digest.map(|d| d.to_string()).as_deref(), digest, "{input}");
        }
        let bad = [
            ":justtag".to_string(),
            format!("@{FF}"),
            "aa/asdf$$^/aa".into(),
            "[2001:db8::1]".into(),
            "[2001:db8::1]:5000".into(),
            "[2001:db8::1]:tag".into(),
            "[fe80::1%eth0]:5000/repo".into(),
            "[fe80::1%@invalidzone]:5000/repo".into(),
        ];
        for input in bad {
            let err = parse_any(&input, &input).err();
            assert!(matches!(err, Some(ReferenceError::InvalidFormat(ref s)) if *s == input), "{input}: {err:?}");
        }
        assert_eq!(parse_any("", "").err(), Some(ReferenceError::Empty));
        let too_long = format!("domain/{}:tag", "a".repeat(256));
        assert!(matches!(parse_any(&too_long, &too_long), Err(ReferenceError::NameTooLong { len: 256, .. })));
        assert!(matches!(parse_any("Uppercase:tag", "x"), Err(ReferenceError::Uppercase { .. })));
        assert!(matches!(
            parse_any("test:5000/Uppercase/lowercase:tag", "x"),
            Err(ReferenceError::Uppercase { .. })
        ));
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("index.docker.io/debian"), "docker.io/library/debian:latest");
        assert_eq!(full("docker.io/library/debian:12"), "docker.io/library/debian:12");
        assert_eq!(full("localhost/debian"), "localhost/debian:latest");
        assert_eq!(full("localhost:5000/a/b:tag"), "localhost:5000/a/b:tag");
        assert_eq!(full("host:5000/a/b:tag"), "host:5000/a/b:tag");
        assert_eq!(full("127.0.0.1:5000/debian"), "127.0.0.1:5000/debian:latest");
        assert_eq!(full("[fc00::1]:5000/docker/docker"), "[fc00::1]:5000/docker/docker:latest");
        assert_eq!(full("LOCALDOMAIN/debian"), "LOCALDOMAIN/debian:latest");
        // A digest alone gets no tag; tag and digest are both kept.
        assert_eq!(full(&format!("busybox@{FF}")), format!("docker.io/library/busybox@{FF}"));
        assert_eq!(full(&format!("busybox:1@{FF}")), format!("docker.io/library/busybox:1@{FF}"));
        // Only numbers after a colon in the first component: a tag on docker.io.
        assert_eq!(full("192.168.0.1:80"), "docker.io/library/192.168.0.1:80");
        let r = Reference::parse_normalized_named("busybox").unwrap();
        assert_eq!((r.tag(), r.to_string().as_str()), (None, "docker.io/library/busybox"));
    }

    #[test]
    fn familiar_forms() {
        let fam = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(fam("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(fam("docker.io/user/app:1"), "user/app:1");
        assert_eq!(fam("docker.io/library/a/b:1"), "library/a/b:1");
        assert_eq!(fam("quay.io/library/x:1"), "quay.io/library/x:1");
        assert_eq!(fam(&format!("busybox@{FF}")), format!("busybox@{FF}"));
        let repo = Repository::parse("busybox").unwrap();
        assert_eq!((repo.domain(), repo.path()), ("docker.io", "library/busybox"));
        assert_eq!(repo.familiar_name(), "busybox");
        assert!(Repository::parse("busybox:1").is_err());
    }

    /// distribution/reference `TestValidateReferenceName` and
    /// `TestValidateRemoteName`.
    #[test]
    fn valid_and_invalid_names() {
        let valid = [
            "docker/docker", "library/debian", "debian", "localhost/library/debian",
            "LOCALDOMAIN/library/debian", "docker.io/docker/docker", "index.docker.io/debian",
            "127.0.0.1:5000/library/debian", "192.168.0.1", "192.168.0.1:8/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker", "DOCKER/docker", "docker-rules/docker", "docker---rules/docker",
            "d/docker", "jess/t", "dock__er/docker", "a.b-c_d__e/f",
        ];
        for name in valid {
            Reference::parse_normalized_named(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let invalid = [
            "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker",
            "-docker.io/docker/docker", "docker///docker", "docker.io/docker/Docker",
            "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000", "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker", "docker_/docker", "docker._x/docker", "docker___x/docker",
            "a_b.com/x", "busybox:", "busybox:-x", "",
        ];
        for name in invalid {
            assert!(Reference::parse_normalized_named(name).is_err(), "{name} parsed");
        }
    }

    #[test]
    fn errors_name_the_reference() {
        let e = Reference::parse("docker.io/Foo/bar").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid reference format \"docker.io/Foo/bar\": repository name (Foo/bar) must be lowercase"
        );
        let e = Reference::parse("a b").unwrap_err().to_string();
        assert_eq!(e, "invalid reference format: \"a b\"");
        let e = Reference::parse("x@sha256:ffff").unwrap_err().to_string();
        assert!(e.contains("\"x@sha256:ffff\"") && e.contains("length"), "{e}");
        let e = Reference::parse(&format!("x@sha512:{}", "f".repeat(128))).unwrap_err().to_string();
        assert!(e.contains("unsupported digest algorithm \"sha512\""), "{e}");
        let e = Reference::parse(&format!("x@sha256:{}", "F".repeat(64))).unwrap_err().to_string();
        assert!(e.contains("invalid digest"), "{e}");
        let tag129 = format!("x:{}", "t".repeat(129));
        assert!(matches!(Reference::parse(&tag129), Err(ReferenceError::InvalidFormat(_))));
        let tag128 = format!("x:{}", "t".repeat(128));
        assert!(Reference::parse(&tag128).is_ok());
        let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        assert!(Reference::parse(hex).unwrap_err().to_string().contains("64-byte hexadecimal"));
    }

    #[test]
    fn api_reference_and_builders() {
        let r = Reference::parse("host:5000/a:1").unwrap();
        assert_eq!(r.api_reference(), "1");
        let d: Digest = FF.parse().unwrap();
        let rd = r.with_digest(d.clone());
        assert_eq!(rd.api_reference(), FF);
        assert_eq!(rd.to_string(), format!("host:5000/a:1@{FF}"));
        assert_eq!(r.with_tag("v2").unwrap().to_string(), "host:5000/a:v2");
        assert!(r.with_tag("bad tag").is_err());
        assert_eq!("busybox".parse::<Reference>().unwrap(), Reference::parse("busybox").unwrap());
    }
}
