//! OCI platforms (`linux/amd64`, `linux/arm/v7`) as `--platform` and the
//! predefined `TARGET*`/`BUILD*` args spell them.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    /// The platform hoist runs on (`linux/amd64` on x86-64).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = "";
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// Parse `os[/arch[/variant]]` or a bare architecture, normalising
    /// aliases as containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let invalid = |why| PlatformError {
            given: s.to_owned(),
            why,
        };
        if s.contains(',') {
            return Err(invalid(PlatformProblem::Several));
        }
        let parts: Vec<&str> = s.trim().split('/').collect();
        // containerd's specifier: [A-Za-z0-9_.-]+ per part.
        let bad_char = |p: &&str| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        };
        if parts.iter().any(|p| p.is_empty() || bad_char(p)) || parts.len() > 3 {
            return Err(invalid(PlatformProblem::Shape));
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        let (os, arch, variant) = match lower.as_slice() {
            [one] if is_os(one) => (one.clone(), Platform::host().architecture, String::new()),
            [one] => ("linux".to_string(), one.clone(), String::new()),
            [os, arch] => (os.clone(), arch.clone(), String::new()),
            [os, arch, variant] => (os.clone(), arch.clone(), variant.clone()),
            _ => return Err(invalid(PlatformProblem::Other)),
        };
        if !is_os(&os) {
            return Err(invalid(PlatformProblem::UnknownOs(os)));
        }
        let (arch, variant) = normalize_arch(&arch, &variant);
        Ok(Platform {
            os,
            architecture: arch,
            variant,
        })
    }
}

/// A `--platform` value hoist cannot build for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {given:?}{why}")]
pub struct PlatformError {
    /// The value as given.
    pub given: String,
    /// What is wrong with it.
    pub why: PlatformProblem,
}

/// What is wrong with a platform value (the text after `invalid platform "…"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformProblem {
    /// A list (`a,b`): one build makes one platform.
    #[error(": hoist builds one platform at a time (run one build per platform)")]
    Several,
    /// Not `os/arch[/variant]` of containerd's characters.
    #[error(": expected os/arch[/variant]")]
    Shape,
    /// An operating system Go does not know.
    #[error(": unknown operating system {0:?}")]
    UnknownOs(String),
    /// Anything else.
    #[error("")]
    Other,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

fn is_os(s: &str) -> bool {
    matches!(
        s,
        "linux"
            | "windows"
            | "darwin"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "aix"
            | "android"
            | "ios"
            | "plan9"
            | "js"
            | "wasip1"
            | "dragonfly"
    )
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let v = variant.to_string();
    match arch {
        "i386" | "i686" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            ("amd64".into(), if v == "v1" { String::new() } else { v })
        }
        "aarch64" | "arm64" => (
            "arm64".into(),
            if v == "8" || v == "v8" {
                String::new()
            } else {
                v
            },
        ),
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => (
            "arm".into(),
            match v.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{v}"),
                _ => v,
            },
        ),
        other => (other.to_string(), v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("Linux/ARM64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert!(Platform::parse("linux//amd64").is_err());
        assert!(Platform::parse("plan10/amd64").is_err());
    }

    #[test]
    fn one_platform_only_and_containerd_characters() {
        let e = Platform::parse("linux/arm64,linux/amd64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("one platform at a time"), "{e}");
        assert!(Platform::parse("linux/amd 64").is_err());
        assert!(Platform::parse("linux/arm64:v8").is_err());
        assert!(Platform::parse("linux/arm_64.x-y").is_ok());
    }
}
