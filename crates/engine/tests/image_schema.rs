//! Every manifest, index, config and `oci-layout` file that hoist's image
//! types write validates against the OCI image-spec JSON schemas
//! (`testdata/conformance/oci-image-spec/`, draft-04, a copy of shared/; no
//! network: `$ref`s are served from that folder by file name). Negative
//! cases prove the validator rejects broken documents, so these tests can
//! fail.

use std::path::PathBuf;
use std::sync::Arc;

use hoist_engine::digest::Digest;
use hoist_engine::image::media_types as mt;
use hoist_engine::image::{
    Descriptor, HealthConfig, History, ImageConfig, Index, Manifest, OciLayout, Platform, Raw,
    to_canonical_json,
};
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Value, json};

fn schema_dir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance/oci-image-spec");
    assert!(
        dir.join("image-manifest-schema.json").is_file(),
        "OCI schemas missing at {} (testdata/conformance/README.md says how to refresh them)",
        dir.display()
    );
    dir
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Serves `https://opencontainers.org/schema/.../NAME.json` from the local
/// folder by its last path segment, as image-spec's own Go loader does.
struct LocalSchemas(Arc<PathBuf>);

impl Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let path = self.0.join(&name);
        if name.ends_with(".json") && path.is_file() {
            Ok(read_json(&path))
        } else {
            Err(format!("no local schema for {uri}").into())
        }
    }
}

fn validator(file: &str) -> Validator {
    let dir = schema_dir();
    let schema = read_json(&dir.join(file));
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .should_validate_formats(true)
        .with_retriever(LocalSchemas(Arc::new(dir)))
        .build(&schema)
        .unwrap_or_else(|e| panic!("compiling {file}: {e}"))
}

fn assert_valid(v: &Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} should validate: {errors:#?}\n{doc}"
    );
}

fn assert_invalid(v: &Validator, doc: &Value, what: &str) {
    assert!(!v.is_valid(doc), "{what} should be rejected:\n{doc}");
}

/// What our types write, as JSON for the validator.
fn written<T: serde::Serialize>(value: &T) -> Value {
    serde_json::from_slice(&to_canonical_json(value).unwrap()).unwrap()
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/image/testdata");

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn built_config() -> ImageConfig {
    let mut c = ImageConfig {
        created: Some("2024-05-01T10:00:00.5Z".into()),
        author: Some("hoist".into()),
        architecture: "arm".into(),
        os: "linux".into(),
        variant: Some("v7".into()),
        ..ImageConfig::default()
    };
    let r = &mut c.config;
    r.user = Some("1000:1000".into());
    r.exposed_ports.insert("80/tcp".into());
    r.env = vec!["PATH=/usr/bin:/bin".into()];
    r.entrypoint = Some(vec!["/entry".into()]);
    r.cmd = Some(vec!["run".into()]);
    r.volumes.insert("/data".into());
    r.working_dir = Some("/app".into());
    r.labels
        .insert("org.opencontainers.image.title".into(), "x".into());
    r.stop_signal = Some("SIGTERM".into());
    r.args_escaped = true;
    r.healthcheck = Some(HealthConfig {
        test: vec!["CMD".into(), "true".into()],
        interval: Some(std::time::Duration::from_secs(1)),
        retries: Some(2),
        ..HealthConfig::default()
    });
    r.on_build = vec!["RUN true".into()];
    r.shell = Some(vec!["/bin/sh".into(), "-c".into()]);
    r.stop_timeout = Some(3);
    c.rootfs.diff_ids = vec![Digest::of(b"a"), Digest::of(b"b")];
    c.history = vec![
        History {
            created: Some("2024-05-01T10:00:00Z".into()),
            created_by: Some("COPY a /".into()),
            comment: Some("buildkit.dockerfile.v0".into()),
            ..History::default()
        },
        History {
            created_by: Some("ENV X=1".into()),
            empty_layer: true,
            ..History::default()
        },
    ];
    c
}

fn built_manifest(docker: bool) -> Raw<Manifest> {
    let config = Raw::from_value(built_config()).unwrap();
    let (manifest_type, config_type) = if docker {
        (mt::DOCKER_MANIFEST, mt::DOCKER_CONFIG)
    } else {
        (mt::OCI_MANIFEST, mt::OCI_CONFIG)
    };
    let layer = Descriptor::new(
        mt::layer_media_type(docker, mt::Compression::Gzip),
        Digest::of(b"l"),
        1,
    )
    .with_annotation("org.opencontainers.image.title", "layer");
    let mut m = Manifest::new(manifest_type, config.descriptor(config_type), vec![layer]);
    m.annotations.insert(
        "org.opencontainers.image.created".into(),
        "2024-05-01T10:00:00Z".into(),
    );
    Raw::from_value(m).unwrap()
}

#[test]
fn image_schema_manifests_we_write_validate() {
    let v = validator("image-manifest-schema.json");
    for name in ["oci_manifest.json", "docker_manifest.json"] {
        let m = Raw::<Manifest>::parse(fixture(name)).unwrap();
        assert_valid(&v, &written(m.value()), name);
    }
    assert_valid(
        &v,
        &written(built_manifest(false).value()),
        "built OCI manifest",
    );
    assert_valid(
        &v,
        &written(built_manifest(true).value()),
        "built Docker manifest",
    );
}

#[test]
fn image_schema_indexes_we_write_validate() {
    let v = validator("image-index-schema.json");
    for name in ["oci_index.json", "docker_manifest_list.json"] {
        let i = Raw::<Index>::parse(fixture(name)).unwrap();
        assert_valid(&v, &written(i.value()), name);
    }
    let m = built_manifest(false);
    let mut platform: Platform = "windows/amd64".parse().unwrap();
    platform.os_version = Some("10.0.20348.2340".into());
    platform.os_features = vec!["win32k".into()];
    let index = Index::new(
        mt::OCI_INDEX,
        vec![
            m.descriptor(mt::OCI_MANIFEST)
                .with_platform("linux/arm/v7".parse().unwrap()),
            m.descriptor(mt::OCI_MANIFEST).with_platform(platform),
        ],
    );
    assert_valid(&v, &written(&index), "built index");
}

#[test]
fn image_schema_configs_we_write_validate() {
    let v = validator("config-schema.json");
    let docker = Raw::<ImageConfig>::parse(fixture("docker_config.json")).unwrap();
    assert_valid(&v, &written(docker.value()), "docker_config.json");
    assert_valid(&v, &written(&built_config()), "built config");
    let minimal = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    assert_valid(&v, &written(&minimal), "minimal config");
}

#[test]
fn image_schema_oci_layout_we_write_validates() {
    let v = validator("image-layout-schema.json");
    assert_valid(&v, &written(&OciLayout::default()), "oci-layout");
    assert_invalid(
        &v,
        &json!({"imageLayoutVersion": "2.0.0"}),
        "layout version 2.0.0",
    );
    assert_invalid(&v, &json!({}), "layout without version");
}

#[test]
fn image_schema_rejects_broken_manifests() {
    let v = validator("image-manifest-schema.json");
    let good = written(built_manifest(false).value());
    assert_valid(&v, &good, "baseline");
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        doc
    };
    assert_invalid(
        &v,
        &broken(&|d| d["config"]["digest"] = json!("sha256:NOT A DIGEST!")),
        "bad config digest",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["layers"][0]["digest"] = json!("e3b0c442")),
        "digest without algorithm",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["layers"][0]["size"] = json!(-1)),
        "negative size",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["layers"][0]["mediaType"] = json!("not a media type")),
        "bad media type",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["layers"][0]["urls"] = json!(["not a uri"])),
        "bad url",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["annotations"]["k"] = json!(1)),
        "non-string annotation",
    );
    assert_invalid(
        &v,
        &broken(&|d| d["schemaVersion"] = json!(1)),
        "schemaVersion 1",
    );
    assert_invalid(
        &v,
        &broken(&|d| drop(d.as_object_mut().unwrap().remove("config"))),
        "no config",
    );
    // The schema wants at least one layer: an image with no layers (FROM
    // scratch plus metadata only) written as-is would not validate.
    assert_invalid(&v, &broken(&|d| d["layers"] = json!([])), "empty layers");
}

#[test]
fn image_schema_rejects_broken_indexes_and_configs() {
    let v = validator("image-index-schema.json");
    let good = written(
        &Raw::<Index>::parse(fixture("oci_index.json"))
            .unwrap()
            .into_value(),
    );
    assert_valid(&v, &good, "baseline index");
    let mut bad = good.clone();
    bad["manifests"][0]["digest"] = json!("md5:???");
    assert_invalid(&v, &bad, "bad manifest digest");
    let mut bad = good.clone();
    bad["manifests"][0]["platform"]
        .as_object_mut()
        .unwrap()
        .remove("os");
    assert_invalid(&v, &bad, "platform without os");
    let mut bad = good;
    bad["subject"]["size"] = json!("77");
    assert_invalid(&v, &bad, "string size in subject");

    let v = validator("config-schema.json");
    let good = written(&built_config());
    let mut bad = good.clone();
    bad["rootfs"]["type"] = json!("tarball");
    assert_invalid(&v, &bad, "rootfs type tarball");
    let mut bad = good.clone();
    bad["created"] = json!("yesterday");
    assert_invalid(&v, &bad, "created not RFC 3339");
    let mut bad = good.clone();
    bad["config"]["ExposedPorts"]["80/tcp"] = json!("open");
    assert_invalid(&v, &bad, "exposed port not an object");
    let mut bad = good;
    bad.as_object_mut().unwrap().remove("architecture");
    assert_invalid(&v, &bad, "no architecture");
}
