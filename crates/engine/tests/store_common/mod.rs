//! Helpers shared by the `store_*` tests: a tiny PRNG and builders for
//! small but real image blobs (layers, configs, manifests, indexes).

#![allow(dead_code)]

use hoist_engine::digest::Digest;
use hoist_engine::store::Store;
use serde_json::json;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// xorshift64*: deterministic, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng::new(nanos ^ u64::from(std::process::id()))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The digests of one stored single-platform image.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
    pub layers: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
}

impl TestImage {
    pub fn all_blobs(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest.clone(), self.config.clone()];
        v.extend(self.layers.iter().cloned());
        v
    }
}

pub fn config_json(diff_ids: &[Digest], created: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

pub fn manifest_json(config: (&Digest, u64), layers: &[(Digest, u64)]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| json!({
            "mediaType": OCI_LAYER, "digest": d, "size": s
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

pub fn index_json(manifests: &[(Digest, u64, &str)]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests.iter().map(|(d, s, arch)| json!({
            "mediaType": OCI_MANIFEST, "digest": d, "size": s,
            "platform": {"os": "linux", "architecture": arch}
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// Store layers with the given contents, a config and a manifest.
pub fn put_image_with_layers(store: &Store, layers: &[Vec<u8>], created: &str) -> TestImage {
    let mut stored = Vec::new();
    let mut diff_ids = Vec::new();
    for bytes in layers {
        let info = store.put_blob_bytes(bytes).unwrap();
        // The "uncompressed" diff id: any digest distinct per layer will do.
        diff_ids.push(Digest::of(&[b"diff:".as_slice(), bytes].concat()));
        stored.push((info.digest, info.size));
    }
    let config = store
        .put_blob_bytes(&config_json(&diff_ids, created))
        .unwrap();
    let manifest = store
        .put_blob_bytes(&manifest_json((&config.digest, config.size), &stored))
        .unwrap();
    TestImage {
        manifest: manifest.digest,
        manifest_size: manifest.size,
        config: config.digest,
        layers: stored.into_iter().map(|(d, _)| d).collect(),
        diff_ids,
    }
}

/// Store an image of `n` random layers of `size` bytes each.
pub fn put_image(store: &Store, rng: &mut Rng, n: usize, size: usize) -> TestImage {
    let layers: Vec<Vec<u8>> = (0..n).map(|_| rng.bytes(size)).collect();
    put_image_with_layers(store, &layers, "2024-01-02T03:04:05Z")
}

/// Entries directly in `dir` (0 if it is missing).
pub fn count_entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}
