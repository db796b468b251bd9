//! Platform normalisation and matching, as containerd's `platforms`
//! package does it (what BuildKit uses to pick a base image from an index).
//!
//! - Normalise: lower-case; `x86_64` → `amd64` (variant `v1` dropped),
//!   `aarch64` → `arm64` (variant `v8`/`8` dropped: v8 is the default),
//!   `arm` without a variant is `arm/v7`, `armhf` → `arm/v7`, `armel` →
//!   `arm/v6`, `i386` → `386`, `macos` → `darwin`.
//! - Match ([`Matcher::compatible`], containerd's `platforms.Only`): the
//!   wanted platform first, then what it can also run, in order of
//!   preference: `amd64/vN` → lower `amd64` levels → `386`; `arm/vN` →
//!   down to `arm/v5`; `arm64/v8.x` → lower `v8` minors → `arm/v8` … `arm/v5`.
//! - [`Matcher::strict`] (containerd's `OnlyStrict`) accepts only the
//!   wanted platform itself (after normalisation).
//!
//! One deliberate difference: containerd compares an index entry's
//! normalised platform against the *un-normalised* fallback list, so a
//! wanted `arm64/v8.1` never matches an `arm64/v8` entry (normalised to
//! plain `arm64`). Here both sides are normalised, so it does.

use super::descriptor::Platform;

/// A platform reduced to what matching compares: (os, arch, variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl std::fmt::Display for Normalized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// containerd's `Normalize` (an empty os stays empty: no host default).
pub fn normalize(p: &Platform) -> Normalized {
    let mut os = p.os.to_lowercase();
    if os == "macos" {
        os = "darwin".to_string();
    }
    let (architecture, variant) = normalize_arch(&p.architecture, p.variant_str());
    Normalized {
        os,
        architecture,
        variant,
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    let (a, v) = match arch.as_str() {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            if matches!(variant.as_str(), "8" | "v8") {
                String::new()
            } else {
                variant
            },
        ),
        "armhf" => ("arm", "v7".to_string()),
        "armel" => ("arm", "v6".to_string()),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        _ => return (arch, variant),
    };
    (a.to_string(), v)
}

/// An ordered list of acceptable platforms; earlier is preferred.
#[derive(Debug, Clone)]
pub struct Matcher {
    wanted: Normalized,
    accepted: Vec<Normalized>,
}

impl Matcher {
    /// Only the wanted platform (normalised).
    pub fn strict(wanted: &Platform) -> Matcher {
        let n = normalize(wanted);
        Matcher {
            accepted: vec![n.clone()],
            wanted: n,
        }
    }

    /// The wanted platform, then what it can also run (containerd's `Only`).
    pub fn compatible(wanted: &Platform) -> Matcher {
        let n = normalize(wanted);
        let mut accepted = vec![n.clone()];
        fallbacks(&n.os, &n.architecture, &n.variant, &mut accepted);
        Matcher {
            wanted: n,
            accepted,
        }
    }

    /// The wanted platform, normalised.
    pub fn wanted(&self) -> &Normalized {
        &self.wanted
    }

    /// The preference rank of `p` (0 is best), `None` if not accepted.
    pub fn rank(&self, p: &Platform) -> Option<usize> {
        let n = normalize(p);
        self.accepted.iter().position(|a| *a == n)
    }
}

fn push(out: &mut Vec<Normalized>, os: &str, arch: &str, variant: &str) {
    let (architecture, variant) = normalize_arch(arch, variant);
    let n = Normalized {
        os: os.to_string(),
        architecture,
        variant,
    };
    if !out.contains(&n) {
        out.push(n);
    }
}

fn version(variant: &str) -> Option<u32> {
    variant.strip_prefix('v').unwrap_or(variant).parse().ok()
}

fn fallbacks(os: &str, arch: &str, variant: &str, out: &mut Vec<Normalized>) {
    match arch {
        "amd64" => {
            if let Some(level) = version(variant) {
                for l in (1..level).rev() {
                    push(out, os, "amd64", &format!("v{l}"));
                }
            }
            push(out, os, "386", "");
        }
        "arm" => {
            if let Some(v) = version(variant) {
                for l in (5..v).rev() {
                    push(out, os, "arm", &format!("v{l}"));
                }
            }
        }
        "arm64" => {
            let variant = if variant.is_empty() { "v8" } else { variant };
            let (major, minor) = match variant.trim_start_matches('v').split_once('.') {
                Some((ma, mi)) => (ma.parse::<u32>().ok(), mi.parse::<u32>().ok()),
                None => (version(variant), Some(0)),
            };
            if let (Some(mut major), Some(mut minor)) = (major, minor)
                && major >= 8
            {
                if major == 9 {
                    for m in (0..minor).rev() {
                        push(out, os, "arm64", &arm64_variant(9, m));
                    }
                    // v9.x is compatible with v8.(x+5), up to v8.9
                    minor = (minor + 5).min(9);
                    major = 8;
                    push(out, os, "arm64", &arm64_variant(8, minor));
                }
                for m in (0..minor).rev() {
                    push(out, os, "arm64", &arm64_variant(major, m));
                }
            }
            // every arm64 runs 32-bit arm/v8 and below
            push(out, os, "arm", "v8");
            fallbacks(os, "arm", "v8", out);
        }
        _ => {}
    }
}

fn arm64_variant(major: u32, minor: u32) -> String {
    if minor == 0 {
        format!("v{major}")
    } else {
        format!("v{major}.{minor}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn image_platform_normalizes_like_containerd() {
        for (input, want) in [
            ("linux/x86_64", "linux/amd64"),
            ("Linux/AMD64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/arm64/v9", "linux/arm64/v9"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("macos/arm64", "darwin/arm64"),
            ("linux/riscv64", "linux/riscv64"),
        ] {
            assert_eq!(normalize(&p(input)).to_string(), want, "{input}");
        }
    }

    fn accepted(m: &Matcher) -> Vec<String> {
        m.accepted.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn image_platform_compatible_order_follows_containerd_only() {
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/amd64"))),
            ["linux/amd64", "linux/386"]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/amd64/v3"))),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/arm/v7"))),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/arm64"))),
            [
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/arm64/v8.2")))[..3],
            ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64"]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/arm64/v9.1")))[..4],
            [
                "linux/arm64/v9.1",
                "linux/arm64/v9",
                "linux/arm64/v8.6",
                "linux/arm64/v8.5"
            ]
        );
        assert_eq!(
            accepted(&Matcher::compatible(&p("linux/s390x"))),
            ["linux/s390x"]
        );
        assert_eq!(
            accepted(&Matcher::strict(&p("linux/arm64/v8"))),
            ["linux/arm64"]
        );
    }

    #[test]
    fn image_platform_rank() {
        let m = Matcher::compatible(&p("linux/arm/v7"));
        assert_eq!(m.rank(&p("linux/arm")), Some(0));
        assert_eq!(m.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(m.rank(&p("linux/arm/v8")), None);
        assert_eq!(m.rank(&p("windows/arm/v7")), None);
        assert_eq!(
            Matcher::strict(&p("linux/amd64")).rank(&p("linux/386")),
            None
        );
    }
}
