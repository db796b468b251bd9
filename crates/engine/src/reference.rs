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
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
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
            if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
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
        return (
            domain.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{remote}"),
        );
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

    /// distribution/reference `TestReferenceParse` (the raw `Parse`,
    /// without normalisation), one case a line:
    /// `input | domain | path | tag | digest` (`-` for none, `FF` for
    /// the all-f sha256 digest).
    const RAW_OK: &[&str] = &[
        "test_com | - | test_com | - | -",
        "test.com:tag | - | test.com | tag | -",
        "test.com:5000 | - | test.com | 5000 | -",
        "test.com/repo:tag | test.com | repo | tag | -",
        "test:5000/repo | test:5000 | repo | - | -",
        "test:5000/repo:tag | test:5000 | repo | tag | -",
        "test:5000/repo@FF | test:5000 | repo | - | FF",
        "test:5000/repo:tag@FF | test:5000 | repo | tag | FF",
        "lowercase:Uppercase | - | lowercase | Uppercase | -",
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag | sub-dom1.foo.com | bar/baz/quux | some-long-tag | -",
        "b.gcr.io/test.example.com/my-app:test.example.com | b.gcr.io | test.example.com/my-app | test.example.com | -",
        "xn--n3h.com/myimage:xn--n3h.com | xn--n3h.com | myimage | xn--n3h.com | -",
        "xn--7o8h.com/myimage:xn--7o8h.com@FF | xn--7o8h.com | myimage | xn--7o8h.com | FF",
        "foo_bar.com:8080 | - | foo_bar.com | 8080 | -",
        "foo/foo_bar.com:8080 | foo | foo_bar.com | 8080 | -",
        "192.168.1.1 | - | 192.168.1.1 | - | -",
        "192.168.1.1:5000 | - | 192.168.1.1 | 5000 | -",
        "192.168.1.1/repo | 192.168.1.1 | repo | - | -",
        "192.168.1.1:5000/repo:5050 | 192.168.1.1:5000 | repo | 5050 | -",
        "[2001:db8::1]/repo | [2001:db8::1] | repo | - | -",
        "[2001:db8:1:2:3:4:5:6]/repo:tag | [2001:db8:1:2:3:4:5:6] | repo | tag | -",
        "[2001:db8::1]:5000/repo:tag@FF | [2001:db8::1]:5000 | repo | tag | FF",
        "[2001:db8::]:5000/repo | [2001:db8::]:5000 | repo | - | -",
        "[::1]:5000/repo | [::1]:5000 | repo | - | -",
    ];

    const RAW_BAD: &[&str] = &[
        ":justtag",
        "@FF",
        "aa/asdf$$^/aa",
        "[2001:db8::1]",
        "[2001:db8::1]:5000",
        "[2001:db8::1]:tag",
        "[fe80::1%eth0]:5000/repo",
        "[fe80::1%@invalidzone]:5000/repo",
    ];

    #[test]
    fn raw_parse_matches_distribution_table() {
        let opt = |s: &str| (s != "-").then(|| s.replace("FF", FF));
        for case in RAW_OK {
            let f: Vec<&str> = case.split(" | ").collect();
            let input = f[0].replace("FF", FF);
            let p = parse_any(&input, &input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.domain, opt(f[1]), "{input}");
            assert_eq!(p.path, f[2], "{input}");
            assert_eq!(p.tag, opt(f[3]), "{input}");
            assert_eq!(p.digest.map(|d| d.to_string()), opt(f[4]), "{input}");
        }
        for input in RAW_BAD {
            let input = input.replace("FF", FF);
            let err = parse_any(&input, &input).err();
            assert_eq!(err, Some(ReferenceError::InvalidFormat(input.clone())));
        }
        // Length limits: the path (not the domain) is at most 255.
        let long = format!("example.com/{}:tag", "a".repeat(255));
        assert_eq!(
            parse_any(&long, &long).map(|p| p.path.len()).ok(),
            Some(255)
        );
        let many = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        assert_eq!(
            parse_any(&many, &many).map(|p| p.domain).ok(),
            Some(Some("a".to_string()))
        );
        let too_long = format!("domain/{}:tag", "a".repeat(256));
        assert!(matches!(
            parse_any(&too_long, &too_long),
            Err(ReferenceError::NameTooLong { len: 256, .. })
        ));
        assert_eq!(parse_any("", "").err(), Some(ReferenceError::Empty));
        assert!(matches!(
            parse_any("Uppercase:tag", "x"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(matches!(
            parse_any("test:5000/Uppercase/lowercase:tag", "x"),
            Err(ReferenceError::Uppercase { .. })
        ));
    }
}
