//! Fixture tests of the image model: real-world-shaped documents (a Docker
//! Hub-style manifest list with attestations, an OCI index, manifests, a
//! classic-builder Docker config) parse, keep their bytes and unknown
//! fields, re-serialise with the same meaning and always the same bytes,
//! and platform selection picks what containerd would.

use serde_json::{Value, json};

use super::*;
use crate::digest::Digest;

const DOCKER_LIST: &[u8] = include_bytes!("testdata/docker_manifest_list.json");
const OCI_INDEX: &[u8] = include_bytes!("testdata/oci_index.json");
const OCI_MANIFEST: &[u8] = include_bytes!("testdata/oci_manifest.json");
const DOCKER_MANIFEST: &[u8] = include_bytes!("testdata/docker_manifest.json");
const DOCKER_CONFIG: &[u8] = include_bytes!("testdata/docker_config.json");

/// Drop what Go's `omitempty` (and ours) treats as unset: `null` members,
/// empty lists and maps (except the `{}` values of `ExposedPorts` and
/// `Volumes`), and `false` for the two omitempty booleans.
fn strip(v: &Value) -> Value {
    strip_in(v, "")
}

fn strip_in(v: &Value, parent: &str) -> Value {
    match v {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .filter(|(k, child)| {
                    let keep_empty = matches!(parent, "ExposedPorts" | "Volumes");
                    match child {
                        Value::Null => false,
                        Value::Array(a) if a.is_empty() => keep_empty,
                        Value::Object(o) if o.is_empty() => keep_empty,
                        Value::Bool(false) => !matches!(k.as_str(), "ArgsEscaped" | "empty_layer"),
                        _ => true,
                    }
                })
                .map(|(k, child)| (k.clone(), strip_in(child, k)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| strip_in(i, "")).collect()),
        other => other.clone(),
    }
}

/// Parse, check the bytes and digest are kept, re-serialise, and check the
/// meaning is unchanged; returns (parsed, canonical bytes).
fn round_trip<T: Document + PartialEq + std::fmt::Debug>(input: &[u8]) -> (Raw<T>, Vec<u8>) {
    let raw = Raw::<T>::parse(input).unwrap();
    assert_eq!(raw.bytes(), input);
    assert_eq!(*raw.digest(), Digest::of(input));
    let out = to_canonical_json(raw.value()).unwrap();
    let before: Value = serde_json::from_slice(input).unwrap();
    let after: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        strip(&after),
        strip(&before),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // parsing our own output gives the same value back, and the same bytes
    let again = Raw::<T>::parse(out.clone()).unwrap();
    assert_eq!(again.value(), raw.value());
    assert_eq!(to_canonical_json(again.value()).unwrap(), out);
    (raw, out)
}

#[test]
fn image_fixture_docker_manifest_list_round_trips() {
    let (raw, out) = round_trip::<Index>(DOCKER_LIST);
    assert_eq!(raw.media_type(), media_types::DOCKER_MANIFEST_LIST);
    assert_eq!(raw.manifests.len(), 10);
    assert_eq!(raw.images().count(), 7);
    // distribution's 3-space indentation is gone from our own bytes only
    assert!(DOCKER_LIST.starts_with(b"{\n   \"manifests\""));
    assert!(out.starts_with(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"#));
    assert_ne!(Digest::of(&out), *raw.digest());
}

#[test]
fn image_fixture_oci_index_keeps_unknown_fields() {
    let (raw, out) = round_trip::<Index>(OCI_INDEX);
    let original: Value = serde_json::from_slice(OCI_INDEX).unwrap();
    let written: Value = serde_json::from_slice(&out).unwrap();
    // unknown fields survive exactly, at the top and inside descriptors
    assert_eq!(
        written["x-top-level-unknown"],
        original["x-top-level-unknown"]
    );
    assert_eq!(
        written["manifests"][4]["x-vendor-descriptor-field"],
        json!({"a": null, "z": [3, 2, 1]})
    );
    let win = raw.manifests[2].platform.as_ref().unwrap();
    assert_eq!(win.os_version.as_deref(), Some("10.0.20348.2340"));
    assert_eq!(win.os_features, ["win32k"]);
    assert_eq!(
        raw.manifests[5].artifact_type.as_deref(),
        Some("application/vnd.example.sbom+json")
    );
    assert_eq!(raw.manifests[5].data.as_deref(), Some("e30="));
    assert!(raw.subject.is_some());
    // `<&>` and non-ASCII are written as they are, keys sorted inside unknown values
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""x-top-level-unknown":{"list":["<&>","é"],"nested":{"a":1.5,"b":true}}"#),
        "{text}"
    );
}

#[test]
fn image_fixture_manifests_round_trip() {
    let (oci, out) = round_trip::<Manifest>(OCI_MANIFEST);
    // the fixture has CRLF, tabs and leading spaces: bytes and digest kept
    assert!(OCI_MANIFEST.starts_with(b"  {\r\n\t\"schemaVersion\""));
    assert_eq!(oci.layers.len(), 3);
    assert_eq!(
        oci.layers
            .iter()
            .map(|l| media_types::layer_compression(&l.media_type))
            .collect::<Vec<_>>(),
        [
            Some(Compression::Gzip),
            Some(Compression::Zstd),
            Some(Compression::Gzip)
        ]
    );
    assert!(media_types::is_nondistributable(&oci.layers[2].media_type));
    assert_eq!(oci.layers[2].urls, ["https://example.com/l3.tar.gz"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()["x-unknown"],
        json!([1, "two", {"three": 3}])
    );
    let (docker, _) = round_trip::<Manifest>(DOCKER_MANIFEST);
    assert_eq!(docker.media_type(), media_types::DOCKER_MANIFEST);
    assert_eq!(docker.config.media_type, media_types::DOCKER_CONFIG);
    assert_eq!(docker.layers[0].size, 1_436_823_200);
}

#[test]
fn image_fixture_docker_config_round_trips_with_docker_fields() {
    let (raw, out) = round_trip::<ImageConfig>(DOCKER_CONFIG);
    let c = &raw.config;
    assert_eq!(c.user.as_deref(), Some("app:app"));
    assert_eq!(
        c.exposed_ports.iter().collect::<Vec<_>>(),
        ["443/tcp", "80/tcp"]
    );
    assert_eq!(
        c.volumes.iter().collect::<Vec<_>>(),
        ["/data", "/var/log/app"]
    );
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["/usr/bin/tini".to_string(), "--".to_string()][..])
    );
    assert!(c.args_escaped);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(c.stop_timeout, Some(20));
    assert_eq!(
        c.on_build,
        ["COPY . /srv/app/src", "RUN make -C /srv/app/src"]
    );
    assert_eq!(c.shell.as_ref().unwrap()[0], "/bin/bash");
    let h = c.healthcheck.as_ref().unwrap();
    assert_eq!(h.test[0], "CMD-SHELL");
    assert_eq!(h.interval, Some(std::time::Duration::from_secs(30)));
    assert_eq!(h.timeout, Some(std::time::Duration::from_secs(5)));
    assert_eq!(h.start_period, Some(std::time::Duration::from_secs(10)));
    assert_eq!(h.start_interval, Some(std::time::Duration::from_secs(2)));
    assert_eq!(h.retries, Some(3));
    for k in ["Hostname", "AttachStdin", "Image", "Tty"] {
        assert!(c.extra.contains_key(k), "{k}");
    }
    for k in [
        "container",
        "container_config",
        "docker_version",
        "moby.buildkit.buildinfo.v1",
    ] {
        assert!(raw.extra.contains_key(k), "{k}");
    }
    assert_eq!(raw.variant.as_deref(), Some("v2"));
    assert_eq!(raw.rootfs.diff_ids.len(), 2);
    assert_eq!(raw.history.iter().filter(|h| h.empty_layer).count(), 2);
    assert_eq!(
        raw.history[2].comment.as_deref(),
        Some("buildkit.dockerfile.v0")
    );
    // unknown objects are kept exactly, `null`s and all
    let original: Value = serde_json::from_slice(DOCKER_CONFIG).unwrap();
    let written: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(written["container_config"], original["container_config"]);
    assert_eq!(
        written["config"]["Healthcheck"],
        original["config"]["Healthcheck"]
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""Interval":30000000000,"#), "{text}");
    assert!(
        text.contains(r#""ExposedPorts":{"443/tcp":{},"80/tcp":{}}"#),
        "{text}"
    );
}

#[test]
fn image_config_built_from_scratch_has_fixed_bytes() {
    let mut config = ImageConfig {
        created: Some("2024-01-01T00:00:00Z".into()),
        architecture: "arm64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    config.config.env = vec!["PATH=/bin".into()];
    config.config.labels.insert("z".into(), "1".into());
    config.config.labels.insert("a".into(), "2".into());
    config.config.exposed_ports.insert("8080/tcp".into());
    config.config.cmd = Some(vec![]);
    config.config.healthcheck = Some(HealthConfig {
        test: vec!["NONE".into()],
        ..HealthConfig::default()
    });
    config.rootfs.diff_ids.push(Digest::of(b""));
    config.history.push(History {
        created_by: Some("COPY x /".into()),
        ..History::default()
    });
    let raw = Raw::from_value(config).unwrap();
    assert_eq!(
        String::from_utf8(raw.bytes().to_vec()).unwrap(),
        concat!(
            r#"{"created":"2024-01-01T00:00:00Z","architecture":"arm64","os":"linux","#,
            r#""config":{"ExposedPorts":{"8080/tcp":{}},"Env":["PATH=/bin"],"Cmd":[],"#,
            r#""Labels":{"a":"2","z":"1"},"Healthcheck":{"Test":["NONE"]}},"#,
            r#""rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"#,
            r#""history":[{"created_by":"COPY x /"}]}"#
        )
    );
    let empty = Raw::from_value(ImageConfig::default()).unwrap();
    assert_eq!(
        empty.bytes(),
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#
    );
}

#[test]
fn image_config_rejects_bad_durations_and_reads_nulls_as_unset() {
    let bad = br#"{"architecture":"amd64","os":"linux","config":{"Healthcheck":{"Interval":-1}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let err = Raw::<ImageConfig>::parse(&bad[..]).unwrap_err();
    assert!(err.to_string().contains("negative duration -1ns"), "{err}");
    let nulls = br#"{"architecture":"amd64","os":"linux","config":null,"history":null,"rootfs":{"type":"layers","diff_ids":null}}"#;
    let c = Raw::<ImageConfig>::parse(&nulls[..]).unwrap();
    assert!(c.config.is_empty() && c.history.is_empty() && c.rootfs.diff_ids.is_empty());
}

#[test]
fn image_same_value_gives_same_bytes_every_time() {
    for input in [DOCKER_LIST, OCI_INDEX] {
        let v = Raw::<Index>::parse(input).unwrap().into_value();
        let first = Raw::from_value(v.clone()).unwrap();
        for _ in 0..100 {
            let again = Raw::from_value(v.clone()).unwrap();
            assert_eq!(again.bytes(), first.bytes());
            assert_eq!(again.digest(), first.digest());
        }
    }
    let config = Raw::<ImageConfig>::parse(DOCKER_CONFIG)
        .unwrap()
        .into_value();
    let first = to_canonical_json(&config).unwrap();
    for _ in 0..100 {
        assert_eq!(to_canonical_json(&config.clone()).unwrap(), first);
    }
    // insertion order of maps does not matter, unknown nested objects included
    let build = |keys: &[&str]| {
        let mut c = RunConfig::default();
        let mut nested = serde_json::Map::new();
        for k in keys {
            c.labels.insert((*k).into(), "v".into());
            c.extra.insert((*k).into(), json!(1));
            nested.insert((*k).into(), json!([{"y": 1, "x": 2}]));
        }
        c.extra.insert("Nested".into(), Value::Object(nested));
        to_canonical_json(&c).unwrap()
    };
    assert_eq!(build(&["b", "c", "a"]), build(&["a", "b", "c"]));
    assert!(
        String::from_utf8(build(&["b", "a"]))
            .unwrap()
            .contains(r#""Nested":{"a":[{"x":2,"y":1}],"b""#)
    );
}

fn p(s: &str) -> Platform {
    s.parse().unwrap()
}

fn digest_of_entry(name: &str) -> Digest {
    Digest::of(name.as_bytes())
}

#[test]
fn image_index_selects_platform_like_containerd() {
    let list = Raw::<Index>::parse(DOCKER_LIST).unwrap();
    let pick = |s: &str| list.manifest_for(&p(s)).map(|d| d.digest.clone());
    assert_eq!(
        pick("linux/amd64"),
        Some(digest_of_entry("img-amd64")),
        "attestation listed first is skipped"
    );
    assert_eq!(pick("linux/x86_64"), Some(digest_of_entry("img-amd64")));
    assert_eq!(
        pick("linux/arm64"),
        Some(digest_of_entry("img-arm64v8")),
        "arm64 is arm64/v8"
    );
    assert_eq!(pick("linux/arm64/v8"), Some(digest_of_entry("img-arm64v8")));
    assert_eq!(pick("linux/aarch64"), Some(digest_of_entry("img-arm64v8")));
    assert_eq!(pick("linux/arm/v7"), Some(digest_of_entry("img-armv7")));
    assert_eq!(pick("linux/arm/v6"), Some(digest_of_entry("img-armv6")));
    assert_eq!(pick("linux/386"), Some(digest_of_entry("img-386")));
    assert_eq!(pick("linux/arm/v5"), None, "arm/v5 cannot run v6");
    assert_eq!(pick("windows/amd64"), None);
    assert_eq!(
        pick("unknown/unknown"),
        None,
        "attestations are never picked"
    );
    let err = list.select(&p("linux/riscv64")).unwrap_err().to_string();
    assert!(err.contains("linux/riscv64"), "{err}");
    assert!(
        err.contains("linux/arm/v7") && err.contains("linux/s390x") && !err.contains("unknown"),
        "{err}"
    );
}

#[test]
fn image_index_arm_without_variant_means_v7() {
    let mut idx = Index::new(media_types::OCI_INDEX, vec![]);
    let entry = |name: &str, platform: &str| {
        Descriptor::new(media_types::OCI_MANIFEST, digest_of_entry(name), 1)
            .with_platform(p(platform))
    };
    idx.manifests.push(entry("v6", "linux/arm/v6"));
    idx.manifests.push(
        Descriptor::new(media_types::OCI_MANIFEST, digest_of_entry("v7"), 1).with_platform(
            Platform {
                architecture: "arm".into(),
                os: "linux".into(),
                ..Platform::default()
            },
        ),
    );
    assert_eq!(
        idx.manifest_for(&p("linux/arm/v7")).unwrap().digest,
        digest_of_entry("v7"),
        "exact beats earlier entry"
    );
    assert_eq!(
        idx.manifest_for(&p("linux/armhf")).unwrap().digest,
        digest_of_entry("v7")
    );
    assert_eq!(
        idx.manifest_for(&p("linux/arm64")).unwrap().digest,
        digest_of_entry("v7"),
        "arm64 runs arm/v7"
    );
    assert_eq!(
        idx.manifest_for(&p("linux/arm/v8")).unwrap().digest,
        digest_of_entry("v7")
    );
    assert_eq!(idx.manifest_for_strict(&p("linux/arm64")), None);
}

#[test]
fn image_index_amd64_falls_back_to_386_and_amd64_has_no_variant() {
    let entry = |name: &str, platform: &str| {
        Descriptor::new(media_types::OCI_MANIFEST, digest_of_entry(name), 1)
            .with_platform(p(platform))
    };
    let idx = Index::new(
        media_types::OCI_INDEX,
        vec![
            entry("386", "linux/386"),
            entry("amd64v1", "linux/amd64/v1"),
        ],
    );
    assert_eq!(
        idx.manifest_for(&p("linux/amd64")).unwrap().digest,
        digest_of_entry("amd64v1")
    );
    assert_eq!(
        idx.manifest_for(&p("linux/amd64/v3")).unwrap().digest,
        digest_of_entry("amd64v1")
    );
    let only_386 = Index::new(media_types::OCI_INDEX, vec![entry("386", "linux/386")]);
    assert_eq!(
        only_386.manifest_for(&p("linux/amd64")).unwrap().digest,
        digest_of_entry("386")
    );
    assert_eq!(only_386.manifest_for_strict(&p("linux/amd64")), None);
    assert_eq!(only_386.manifest_for(&p("linux/arm64")), None);
}

#[test]
fn image_index_oci_fixture_selection_and_platformless_fallback() {
    let idx = Raw::<Index>::parse(OCI_INDEX).unwrap();
    let pick = |s: &str| idx.manifest_for(&p(s)).map(|d| d.digest.clone());
    assert_eq!(pick("linux/amd64"), Some(digest_of_entry("oci-amd64")));
    assert_eq!(pick("windows/amd64"), Some(digest_of_entry("oci-win")));
    assert_eq!(pick("linux/arm64/v8"), Some(digest_of_entry("oci-arm64")));
    // no platform matches: the first entry without a platform, as containerd
    assert_eq!(pick("linux/s390x"), Some(digest_of_entry("nested")));
}

#[test]
fn image_any_manifest_detects_kind() {
    for (bytes, is_index) in [
        (DOCKER_LIST, true),
        (OCI_INDEX, true),
        (OCI_MANIFEST, false),
        (DOCKER_MANIFEST, false),
    ] {
        let any = AnyManifest::parse(bytes, None).unwrap();
        assert_eq!(matches!(any, AnyManifest::Index(_)), is_index);
        assert_eq!(any.bytes(), bytes);
        assert_eq!(*any.digest(), Digest::of(bytes));
    }
    // no mediaType field: the shape decides
    let bare_index = br#"{"schemaVersion":2,"manifests":[]}"#;
    assert!(matches!(
        AnyManifest::parse(&bare_index[..], None).unwrap(),
        AnyManifest::Index(_)
    ));
    let any = AnyManifest::parse(OCI_MANIFEST, Some(media_types::OCI_MANIFEST)).unwrap();
    assert_eq!(any.media_type(), media_types::OCI_MANIFEST);
    // a header that contradicts the content is an error, not a guess
    let err =
        AnyManifest::parse(OCI_MANIFEST, Some(media_types::DOCKER_MANIFEST_LIST)).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot parse index sha256:"),
        "{err}"
    );
    let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}"#;
    let err = AnyManifest::parse(
        &schema1[..],
        Some(media_types::DOCKER_MANIFEST_SCHEMA1_SIGNED),
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::NotAManifest { .. }), "{err}");
    let forced = br#"{"schemaVersion":1,"config":{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
    let err = Raw::<Manifest>::parse(&forced[..]).unwrap_err().to_string();
    assert!(err.contains("unsupported schemaVersion 1"), "{err}");
}

#[test]
fn image_manifest_built_from_raw_parts() {
    let config = Raw::from_value(ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    })
    .unwrap();
    let layer = Descriptor::new(media_types::OCI_LAYER_GZIP, Digest::of(b"layer"), 5);
    let manifest = Raw::from_value(Manifest::new(
        media_types::OCI_MANIFEST,
        config.descriptor(media_types::OCI_CONFIG),
        vec![layer],
    ))
    .unwrap();
    assert_eq!(manifest.config.digest, *config.digest());
    assert_eq!(manifest.config.size, config.bytes().len() as u64);
    let index = Index::new(
        media_types::OCI_INDEX,
        vec![
            manifest
                .descriptor(media_types::OCI_MANIFEST)
                .with_platform(config.platform()),
        ],
    );
    assert_eq!(
        index.manifest_for(&p("linux/amd64")).unwrap().digest,
        *manifest.digest()
    );
    let text = String::from_utf8(to_canonical_json(&index).unwrap()).unwrap();
    assert!(
        text.contains(r#""platform":{"architecture":"amd64","os":"linux"}"#),
        "{text}"
    );
}
