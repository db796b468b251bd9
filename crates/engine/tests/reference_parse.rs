//! Reference normalisation, familiar forms and errors through the public
//! API, with cases from distribution/reference's `normalize_test.go`.

use hoist_engine::digest::Digest;
use hoist_engine::reference::{Reference, ReferenceError, Repository};

const FF: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn full(s: &str) -> String {
    Reference::parse(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_string()
}

#[test]
fn reference_normalises_like_docker() {
    assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
    assert_eq!(full("ubuntu:22.04"), "docker.io/library/ubuntu:22.04");
    assert_eq!(full("user/app"), "docker.io/user/app:latest");
    assert_eq!(
        full("index.docker.io/debian"),
        "docker.io/library/debian:latest"
    );
    assert_eq!(
        full("docker.io/library/debian:12"),
        "docker.io/library/debian:12"
    );
    assert_eq!(full("localhost/debian"), "localhost/debian:latest");
    assert_eq!(full("localhost:5000/a/b:tag"), "localhost:5000/a/b:tag");
    assert_eq!(full("host:5000/a/b:tag"), "host:5000/a/b:tag");
    assert_eq!(
        full("127.0.0.1:5000/debian"),
        "127.0.0.1:5000/debian:latest"
    );
    assert_eq!(
        full("[fc00::1]:5000/docker/docker"),
        "[fc00::1]:5000/docker/docker:latest"
    );
    assert_eq!(full("LOCALDOMAIN/debian"), "LOCALDOMAIN/debian:latest");
    // A digest alone gets no tag; tag and digest are both kept.
    assert_eq!(
        full(&format!("busybox@{FF}")),
        format!("docker.io/library/busybox@{FF}")
    );
    assert_eq!(
        full(&format!("busybox:1@{FF}")),
        format!("docker.io/library/busybox:1@{FF}")
    );
    // Only numbers after a colon in the first component: a tag on docker.io.
    assert_eq!(full("192.168.0.1:80"), "docker.io/library/192.168.0.1:80");
    let r = Reference::parse_normalized_named("busybox").unwrap();
    assert_eq!(
        (r.tag(), r.to_string().as_str()),
        (None, "docker.io/library/busybox")
    );
}

#[test]
fn reference_familiar_forms() {
    let fam = |s: &str| Reference::parse(s).unwrap().familiar();
    assert_eq!(fam("docker.io/library/busybox"), "busybox:latest");
    assert_eq!(fam("docker.io/user/app:1"), "user/app:1");
    assert_eq!(fam("docker.io/library/a/b:1"), "library/a/b:1");
    assert_eq!(fam("quay.io/library/x:1"), "quay.io/library/x:1");
    assert_eq!(fam(&format!("busybox@{FF}")), format!("busybox@{FF}"));
    let repo = Repository::parse("busybox").unwrap();
    assert_eq!(
        (repo.domain(), repo.path()),
        ("docker.io", "library/busybox")
    );
    assert_eq!(repo.familiar_name(), "busybox");
    assert!(Repository::parse("busybox:1").is_err());
}

/// distribution/reference `TestValidateReferenceName` and
/// `TestValidateRemoteName`.
#[test]
fn reference_valid_and_invalid_names() {
    let valid = [
        "docker/docker",
        "library/debian",
        "debian",
        "localhost/library/debian",
        "LOCALDOMAIN/library/debian",
        "docker.io/docker/docker",
        "index.docker.io/debian",
        "127.0.0.1:5000/library/debian",
        "192.168.0.1",
        "192.168.0.1:8/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        "docker-rules/docker",
        "docker---rules/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
        "docker.io/a.b-c_d__e/f",
    ];
    for name in valid {
        Reference::parse_normalized_named(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let invalid = [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "docker-/docker",
        "docker_/docker",
        "docker._x/docker",
        "docker___x/docker",
        "a_b.com/x",
        "busybox:",
        "busybox:-x",
        "",
    ];
    for name in invalid {
        assert!(
            Reference::parse_normalized_named(name).is_err(),
            "{name} parsed"
        );
    }
}

#[test]
fn reference_errors_name_the_reference() {
    let e = Reference::parse("docker.io/Foo/bar").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid reference format \"docker.io/Foo/bar\": repository name (Foo/bar) must be lowercase"
    );
    let e = Reference::parse("a b").unwrap_err().to_string();
    assert_eq!(e, "invalid reference format: \"a b\"");
    let short = format!("x@sha256:{}", "f".repeat(34));
    let e = Reference::parse(&short).unwrap_err().to_string();
    assert!(
        e.contains(&short) && e.contains("invalid checksum digest length"),
        "{e}"
    );
    // Under 32 hex digits it is not a digest at all (distribution agrees).
    let e = Reference::parse("x@sha256:ffff").unwrap_err().to_string();
    assert_eq!(e, "invalid reference format: \"x@sha256:ffff\"");
    let e = Reference::parse(&format!("x@sha512:{}", "f".repeat(128)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unsupported digest algorithm \"sha512\""), "{e}");
    let e = Reference::parse(&format!("x@sha256:{}", "F".repeat(64)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid digest"), "{e}");
    let tag129 = format!("x:{}", "t".repeat(129));
    assert!(matches!(
        Reference::parse(&tag129),
        Err(ReferenceError::InvalidFormat(_))
    ));
    let tag128 = format!("x:{}", "t".repeat(128));
    assert!(Reference::parse(&tag128).is_ok());
    let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    assert!(
        Reference::parse(hex)
            .unwrap_err()
            .to_string()
            .contains("64-byte hexadecimal")
    );
}

#[test]
fn reference_api_reference_and_builders() {
    let r = Reference::parse("host:5000/a:1").unwrap();
    assert_eq!(r.api_reference(), "1");
    let d: Digest = FF.parse().unwrap();
    let rd = r.with_digest(d.clone());
    assert_eq!(rd.api_reference(), FF);
    assert_eq!(rd.to_string(), format!("host:5000/a:1@{FF}"));
    assert_eq!(r.with_tag("v2").unwrap().to_string(), "host:5000/a:v2");
    assert!(r.with_tag("bad tag").is_err());
    assert_eq!(
        "busybox".parse::<Reference>().unwrap(),
        Reference::parse("busybox").unwrap()
    );
}
