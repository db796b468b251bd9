//! Image archives: an OCI image layout (as a tarball or a directory) that
//! also carries Docker's `manifest.json`, so one file loads in
//! `docker load` (20.10 and later), `podman load` and `skopeo`, as
//! BuildKit's docker exporter writes it. `type=oci` keeps OCI media types;
//! `type=docker` (and `oci-mediatypes=false`) rewrites them to Docker
//! schema2, which gives the manifest a new digest.
//!
//! Blobs stream from the store through its verifying reader straight into
//! the tar: nothing is buffered whole but the small JSON documents.
//!
//! **Invariant:** the archive's bytes depend only on the images and the
//! options (entries sorted, fixed modes and owners, mtime from
//! `SOURCE_DATE_EPOCH` or 0).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::image::canonical::to_canonical_json;
use crate::image::docker_archive::{ArchiveEntry, ArchiveManifest};
use crate::image::layout::{IMAGE_LAYOUT_VERSION, OCI_LAYOUT_FILE};
use crate::image::{ImageError, Index, Manifest, Raw, media_types};
use crate::store::{Store, StoreError};

/// The OCI annotation naming an image in a layout.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// What BuildKit's OCI exporter puts in `org.opencontainers.image.ref.name`:
/// the tag alone (`docker.io/library/app:1` → `1`), so `skopeo inspect
/// oci:DIR:1` and `umoci unpack --image DIR:1` find the image; a name
/// without a tag (a digest reference) keeps the whole name.
pub fn ref_name(full: &str) -> String {
    let last = full.rsplit('/').next().unwrap_or(full);
    match last.split_once('@') {
        Some(_) => full.to_string(),
        None => match last.rsplit_once(':') {
            Some((_, tag)) => tag.to_string(),
            None => full.to_string(),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("writing archive {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer {digest} is {media_type}, which has no Docker media type; export with oci-mediatypes=true"
    )]
    NoDockerMediaType { digest: Digest, media_type: String },
}

type Result<T> = std::result::Result<T, ArchiveError>;

/// One image to write, with the names it goes by (normalised references
/// such as `docker.io/library/app:1`; may be empty).
#[derive(Debug, Clone)]
pub struct ExportImage {
    pub manifest: Raw<Manifest>,
    pub names: Vec<String>,
    /// Annotations on the manifest's descriptor in `index.json`
    /// (`--annotation manifest-descriptor:KEY=VALUE`).
    pub descriptor_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// Keep OCI media types (true) or rewrite to Docker schema2 (false).
    pub oci_media_types: bool,
    /// mtime of every tar entry (seconds since the epoch).
    pub mtime: u64,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            oci_media_types: true,
            mtime: 0,
        }
    }
}

/// What goes into the layout: documents in memory, blobs by reference.
struct Plan {
    /// Small documents (manifests, configs, index, manifest.json): path → bytes.
    docs: BTreeMap<String, Vec<u8>>,
    /// Blobs streamed from the store: path → (digest, size).
    blobs: BTreeMap<String, (Digest, u64)>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn plan(store: &Store, images: &[ExportImage], opts: ArchiveOptions) -> Result<Plan> {
    let mut docs = BTreeMap::new();
    let mut blobs = BTreeMap::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for img in images {
        let manifest = convert(&img.manifest, opts.oci_media_types)?;
        let config = store.read_blob_verified(&manifest.value().config.digest)?;
        docs.insert(blob_path(&manifest.value().config.digest), config);
        docs.insert(blob_path(manifest.digest()), manifest.bytes().to_vec());
        for layer in &manifest.value().layers {
            blobs.insert(blob_path(&layer.digest), (layer.digest.clone(), layer.size));
        }
        let media_type = manifest.value().media_type().to_string();
        let mut base = manifest.descriptor(media_type);
        base.annotations.extend(img.descriptor_annotations.clone());
        if img.names.is_empty() {
            index_entries.push(base.clone());
        }
        for name in &img.names {
            index_entries.push(
                base.clone()
                    .with_annotation(ANNOTATION_IMAGE_NAME, name.clone())
                    .with_annotation(ANNOTATION_REF_NAME, ref_name(name)),
            );
        }
        docker_entries.push(ArchiveEntry {
            config: blob_path(&manifest.value().config.digest),
            repo_tags: img.names.iter().map(|n| familiar(n)).collect(),
            layers: manifest
                .value()
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
            ..Default::default()
        });
    }
    let index = Index::new(media_types::OCI_INDEX, index_entries);
    docs.insert("index.json".into(), to_canonical_json(&index)?);
    docs.insert(
        OCI_LAYOUT_FILE.into(),
        format!("{{\"imageLayoutVersion\":\"{IMAGE_LAYOUT_VERSION}\"}}").into_bytes(),
    );
    docs.insert(
        "manifest.json".into(),
        to_canonical_json(&ArchiveManifest(docker_entries))?,
    );
    for path in docs.keys() {
        blobs.remove(path);
    }
    Ok(Plan { docs, blobs })
}

/// The manifest with the media types the archive wants; unchanged (same
/// bytes, same digest) when they already match.
fn convert(manifest: &Raw<Manifest>, oci: bool) -> Result<Raw<Manifest>> {
    let m = manifest.value();
    let is_docker = media_types::is_docker(m.media_type());
    if is_docker != oci {
        return Ok(manifest.clone());
    }
    let map = |mt: &str| {
        if oci {
            media_types::to_oci(mt)
        } else {
            media_types::to_docker(mt)
        }
    };
    let mut out = m.clone();
    out.media_type = Some(
        if oci {
            media_types::OCI_MANIFEST
        } else {
            media_types::DOCKER_MANIFEST
        }
        .to_string(),
    );
    out.config.media_type = map(&m.config.media_type)
        .unwrap_or(&m.config.media_type)
        .to_string();
    for l in &mut out.layers {
        match map(&l.media_type) {
            Some(new) => l.media_type = new.to_string(),
            None if !oci => {
                return Err(ArchiveError::NoDockerMediaType {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                });
            }
            None => {}
        }
    }
    Ok(Raw::from_value(out)?)
}

/// `docker.io/library/app:1` → `app:1`, `docker.io/me/app:1` → `me/app:1`,
/// as `docker images` shows names.
pub fn familiar(name: &str) -> String {
    let short = name.strip_prefix("docker.io/").unwrap_or(name);
    short
        .strip_prefix("library/")
        .filter(|s| !s.contains('/'))
        .unwrap_or(short)
        .to_string()
}

/// Write the layout as a tarball into `out`.
pub fn write_archive<W: Write>(
    store: &Store,
    images: &[ExportImage],
    opts: ArchiveOptions,
    out: W,
) -> Result<W> {
    let plan = plan(store, images, opts)?;
    let io_err = |path: &str| {
        let path = path.to_string();
        move |source| ArchiveError::Io { path, source }
    };
    let mut tar = tar::Builder::new(out);
    let dir = |tar: &mut tar::Builder<W>, path: &str| -> Result<()> {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, opts.mtime);
        tar.append_data(&mut h, path, io::empty())
            .map_err(io_err(path))
    };
    // Documents that are not blobs first (oci-layout, index.json, manifest.json).
    for (path, bytes) in plan.docs.iter().filter(|(p, _)| !p.starts_with("blobs/")) {
        let mut h = header(
            tar::EntryType::Regular,
            0o644,
            bytes.len() as u64,
            opts.mtime,
        );
        tar.append_data(&mut h, path, bytes.as_slice())
            .map_err(io_err(path))?;
    }
    dir(&mut tar, "blobs/")?;
    dir(&mut tar, "blobs/sha256/")?;
    let mut all: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
    for (p, b) in plan.docs.iter().filter(|(p, _)| p.starts_with("blobs/")) {
        all.insert(p, Some(b.as_slice()));
    }
    for p in plan.blobs.keys() {
        all.insert(p, None);
    }
    for (path, doc) in all {
        match doc {
            Some(bytes) => {
                let mut h = header(
                    tar::EntryType::Regular,
                    0o644,
                    bytes.len() as u64,
                    opts.mtime,
                );
                tar.append_data(&mut h, path, bytes).map_err(io_err(path))?;
            }
            None => {
                let (digest, size) = &plan.blobs[path];
                let reader = store.open_blob(digest)?;
                let mut h = header(tar::EntryType::Regular, 0o644, *size, opts.mtime);
                tar.append_data(&mut h, path, reader)
                    .map_err(io_err(path))?;
            }
        }
    }
    tar.into_inner().map_err(io_err("end of archive"))
}

/// Write the layout as a directory (`type=oci,tar=false`).
pub fn write_layout_dir(
    store: &Store,
    images: &[ExportImage],
    opts: ArchiveOptions,
    dir: &Path,
) -> Result<()> {
    let plan = plan(store, images, opts)?;
    let io_err = |path: PathBuf| {
        move |source| ArchiveError::Io {
            path: path.display().to_string(),
            source,
        }
    };
    let blob_dir = dir.join("blobs/sha256");
    fs_err::create_dir_all(&blob_dir).map_err(io_err(blob_dir.clone()))?;
    for (path, bytes) in &plan.docs {
        let target = dir.join(path);
        fs_err::write(&target, bytes).map_err(io_err(target.clone()))?;
    }
    for (path, (digest, _)) in &plan.blobs {
        let target = dir.join(path);
        if target.exists() {
            continue;
        }
        let mut reader = store.open_blob(digest)?;
        let tmp = dir.join(format!("{path}.partial"));
        let mut f = fs_err::File::create(&tmp).map_err(io_err(tmp.clone()))?;
        io::copy(&mut reader, &mut f).map_err(io_err(tmp.clone()))?;
        f.sync_all().map_err(io_err(tmp.clone()))?;
        fs_err::rename(&tmp, &target).map_err(io_err(target.clone()))?;
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

#[cfg(test)]
mod tests {
    use super::familiar;

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("docker.io/library/app:1"), "app:1");
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
        assert_eq!(familiar("127.0.0.1:5000/a/b:c"), "127.0.0.1:5000/a/b:c");
        assert_eq!(familiar("docker.io/library/a/b:c"), "library/a/b:c");
    }
}
