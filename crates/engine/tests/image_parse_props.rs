//! Property tests: the image parsers never panic, whatever the bytes; and
//! whatever they accept re-serialises canonically to bytes that parse back
//! to the same value and serialise to the same bytes again.

use hoist_engine::image::{
    AnyManifest, ArchiveManifest, Document, ImageConfig, Index, Manifest, OciLayout, Raw,
    Repositories, to_canonical_json,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the image types know, so generated objects reach the typed paths.
const KEYS: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "annotations",
    "digest",
    "size",
    "urls",
    "platform",
    "data",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "features",
    "created",
    "author",
    "rootfs",
    "type",
    "diff_ids",
    "history",
    "created_by",
    "empty_layer",
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "Test",
    "Interval",
    "Retries",
    "OnBuild",
    "Shell",
    "StopTimeout",
    "Config",
    "RepoTags",
    "Layers",
    "LayerSources",
    "imageLayoutVersion",
    "x-unknown",
];

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..10).prop_map(Value::from),
        Just(Value::from(2)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from(DIGEST)),
        Just(Value::from("application/vnd.oci.image.manifest.v1+json")),
        Just(Value::from("layers")),
        "[a-z0-9/:.<>&\"\\\\é\u{1}-]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..10).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Parse with every parser; for each that accepts, check canonical output.
fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    check::<Manifest>(bytes)?;
    check::<Index>(bytes)?;
    check::<ImageConfig>(bytes)?;
    check::<ArchiveManifest>(bytes)?;
    check::<Repositories>(bytes)?;
    check::<OciLayout>(bytes)?;
    let _ = AnyManifest::parse(bytes, None);
    Ok(())
}

fn check<T: Document + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(raw) = Raw::<T>::parse(bytes) {
        prop_assert_eq!(raw.bytes(), bytes);
        let out = to_canonical_json(raw.value()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = Raw::<T>::parse(out.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.value(), raw.value());
        prop_assert_eq!(to_canonical_json(again.value()).unwrap(), out);
    }
    Ok(())
}

const FIXTURES: [&[u8]; 5] = [
    include_bytes!("../src/image/testdata/docker_manifest_list.json"),
    include_bytes!("../src/image/testdata/oci_index.json"),
    include_bytes!("../src/image/testdata/oci_manifest.json"),
    include_bytes!("../src/image/testdata/docker_manifest.json"),
    include_bytes!("../src/image/testdata/docker_config.json"),
];

/// Every value in `v`, by JSON pointer.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            pointers(
                c,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

/// Replace every value of every fixture, one at a time, with each of a few
/// awkward values: no panic, and the accepted ones re-serialise stably.
/// Enough of them must still parse for the typed paths to be exercised.
#[test]
fn image_parsers_survive_every_field_replaced() {
    let awkward = [
        Value::Null,
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(1.5),
        Value::from(""),
        Value::from("sha256:"),
        Value::Array(vec![]),
        Value::Object(Map::new()),
        Value::from(true),
    ];
    let (mut tried, mut accepted) = (0, 0);
    for fixture in FIXTURES {
        let doc: Value = serde_json::from_slice(fixture).unwrap();
        let mut paths = Vec::new();
        pointers(&doc, String::new(), &mut paths);
        for path in paths.iter().filter(|p| !p.is_empty()) {
            for value in &awkward {
                let mut d = doc.clone();
                *d.pointer_mut(path).unwrap() = value.clone();
                let bytes = serde_json::to_vec(&d).unwrap();
                tried += 1;
                accepted += [
                    Raw::<Manifest>::parse(bytes.as_slice()).is_ok(),
                    Raw::<Index>::parse(bytes.as_slice()).is_ok(),
                    Raw::<ImageConfig>::parse(bytes.as_slice()).is_ok(),
                ]
                .iter()
                .filter(|ok| **ok)
                .count();
                check_all(&bytes).unwrap();
            }
        }
    }
    assert!(
        tried > 2000 && accepted > tried / 4,
        "tried {tried}, accepted {accepted}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn image_parsers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_all(&bytes)?;
    }

    #[test]
    fn image_parsers_survive_json_shaped_input(v in json_value()) {
        check_all(&serde_json::to_vec(&v).unwrap())?;
    }

    #[test]
    fn image_parsers_survive_mutated_fixtures(
        which in 0usize..5,
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = FIXTURES[which].to_vec();
        let at = cut.index(bytes.len());
        bytes[at] = byte;
        check_all(&bytes)?;
        bytes.truncate(at);
        check_all(&bytes)?;
    }
}
