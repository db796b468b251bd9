//! `hoist load`: an OCI image layout tarball (with or without Docker's
//! `manifest.json`) or a `docker save` tarball into the store.
//!
//! The tarball is first unpacked into a private directory under the
//! store's `tmp/` — only regular files and directories, every name checked
//! to stay inside it — then every blob goes into the store through
//! `put_blob`, which verifies it against the digest its descriptor names.
//! An OCI layout is preferred when both views are present, so manifests
//! keep their digests.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::digest::Digest;
use crate::export::archive::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::image::docker_archive::ArchiveManifest;
use crate::image::{AnyManifest, Descriptor, ImageConfig, Index, Manifest, Raw, media_types};
use crate::layer::Resolver;
use crate::layer::resolve::{Root, remove_all};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("reading archive: {0}")]
    Read(#[source] io::Error),
    /// Writing into the store (its scratch dir): a full disk names the
    /// store path that filled, not the archive.
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("archive entry {name:?}: {reason}")]
    BadEntry { name: String, reason: String },
    #[error("archive is neither an OCI layout (index.json) nor a docker archive (manifest.json)")]
    UnknownFormat,
    #[error("archive is missing {0}")]
    Missing(String),
    #[error("invalid image name {name:?} in archive: {reason}")]
    BadName { name: String, reason: String },
}

type Result<T> = std::result::Result<T, LoadError>;

/// What was loaded: each name set, and each image's manifest digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub names: Vec<String>,
    pub manifests: Vec<Digest>,
}

/// Load a tarball from `reader` into `store`.
pub fn load_archive(store: &Store, reader: impl Read) -> Result<LoadReport> {
    // Held until the names are set: GC in another process waits.
    let _lease = store.lease()?;
    let scratch = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(|source| LoadError::Write {
            path: store.root().join("tmp"),
            source,
        })?;
    unpack(reader, scratch.path())?;
    let dir = scratch.path();
    if dir.join("index.json").is_file() {
        load_layout(store, dir)
    } else if dir.join("manifest.json").is_file() {
        load_docker(store, dir)
    } else {
        Err(LoadError::UnknownFormat)
    }
}

/// Unpack regular files and directories only, each name checked, every
/// write relative to a descriptor opened from the scratch root without
/// following anything (the archive cannot make a symlink, and nothing
/// else writes there, but the extractor does not rely on it).
fn unpack(reader: impl Read, dir: &Path) -> Result<()> {
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;

    use rustix::fs::{Mode, OFlags};

    let root = Root::open(dir, Resolver::Auto).map_err(LoadError::Read)?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(LoadError::Read)? {
        let mut entry = entry.map_err(LoadError::Read)?;
        let name = entry.path().map_err(LoadError::Read)?.into_owned();
        // `./`, the root itself (`tar -C layout -cf x.tar .`, which docker
        // load takes): nothing to make.
        if entry.header().entry_type() == tar::EntryType::Directory
            && name.components().all(|c| c == Component::CurDir)
        {
            continue;
        }
        let shown = name.display().to_string();
        let rel = safe_relative(&name).ok_or_else(|| LoadError::BadEntry {
            name: shown.clone(),
            reason: "the name leaves the archive root".into(),
        })?;
        let comps: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
        let bad = |e: io::Error| LoadError::BadEntry {
            name: shown.clone(),
            reason: e.to_string(),
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                root.dir_beneath(&comps, true).map_err(bad)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Some((leaf, parent)) = comps.split_last() else {
                    continue;
                };
                let parent = root.dir_beneath(parent, true).map_err(bad)?;
                remove_all(parent.as_fd(), leaf).map_err(bad)?;
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&parent, *leaf, flags, Mode::from_raw_mode(0o600))
                    .map_err(|e| bad(e.into()))?;
                let mut file = std::fs::File::from(fd);
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(LoadError::Read(e)),
                    };
                    io::Write::write_all(&mut file, &buf[..n]).map_err(|source| {
                        LoadError::Write {
                            path: dir.join(&rel),
                            source,
                        }
                    })?;
                }
            }
            // Links and special files have no place in an image archive.
            _ => {}
        }
    }
    Ok(())
}

/// `name` without `.` components, or `None` if it is absolute or has `..`.
fn safe_relative(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn blob_file(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join(d.algorithm()).join(d.hex())
}

/// Put the blob a descriptor names into the store, verified.
fn put_described(store: &Store, dir: &Path, desc: &Descriptor) -> Result<()> {
    if store.has_blob(&desc.digest)? {
        return Ok(());
    }
    let path = blob_file(dir, &desc.digest);
    let f = fs_err::File::open(&path)
        .map_err(|_| LoadError::Missing(format!("blob {}", desc.digest)))?;
    store.put_blob(f, Some(&desc.digest), Some(desc.size))?;
    Ok(())
}

fn read_described(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>> {
    fs_err::read(blob_file(dir, &desc.digest))
        .map_err(|_| LoadError::Missing(format!("blob {}", desc.digest)))
}

/// Load an OCI image layout directory (`--build-context x=oci-layout://DIR`).
pub fn load_layout_dir(store: &Store, dir: &Path) -> Result<LoadReport> {
    let _lease = store.lease()?;
    load_layout(store, dir)
}

fn load_layout(store: &Store, dir: &Path) -> Result<LoadReport> {
    let index: Raw<Index> =
        Raw::parse(fs_err::read(dir.join("index.json")).map_err(LoadError::Read)?)?;
    let mut report = LoadReport::default();
    for desc in &index.value().manifests {
        load_tree(store, dir, desc, 0)?;
        report.manifests.push(desc.digest.clone());
        let name = desc
            .annotations
            .get(ANNOTATION_IMAGE_NAME)
            .or_else(|| desc.annotations.get(ANNOTATION_REF_NAME));
        if let Some(name) = name {
            let full = normalize(name)?;
            store.set_ref(&full, &desc.digest, Some(&desc.media_type))?;
            report.names.push(full);
        }
    }
    Ok(report)
}

/// Store a manifest or index and everything it references.
fn load_tree(store: &Store, dir: &Path, desc: &Descriptor, depth: usize) -> Result<()> {
    if depth > 8 {
        return Err(LoadError::BadEntry {
            name: desc.digest.to_string(),
            reason: "indexes nested too deeply".into(),
        });
    }
    let bytes = read_described(dir, desc)?;
    match AnyManifest::parse(bytes, Some(&desc.media_type))? {
        AnyManifest::Index(index) => {
            for child in &index.value().manifests {
                // Platforms an index lists need not all be present (a
                // single-platform save of a multi-platform image).
                if blob_file(dir, &child.digest).is_file() {
                    load_tree(store, dir, child, depth + 1)?;
                }
            }
        }
        AnyManifest::Manifest(m) => {
            put_described(store, dir, &m.value().config)?;
            for layer in &m.value().layers {
                put_described(store, dir, layer)?;
            }
        }
    }
    put_described(store, dir, desc)
}

fn load_docker(store: &Store, dir: &Path) -> Result<LoadReport> {
    let manifest: Raw<ArchiveManifest> =
        Raw::parse(fs_err::read(dir.join("manifest.json")).map_err(LoadError::Read)?)?;
    let mut report = LoadReport::default();
    for entry in &manifest.value().0 {
        let file = |p: &str| -> Result<PathBuf> {
            let rel = safe_relative(Path::new(p)).ok_or_else(|| LoadError::BadEntry {
                name: p.to_string(),
                reason: "the path leaves the archive root".into(),
            })?;
            Ok(dir.join(rel))
        };
        let config_bytes = fs_err::read(file(&entry.config)?)
            .map_err(|_| LoadError::Missing(entry.config.clone()))?;
        let config: Raw<ImageConfig> = Raw::parse(config_bytes)?;
        let config_info = store.put_blob_bytes(config.bytes())?;
        let mut layers = Vec::new();
        for l in &entry.layers {
            let path = file(l)?;
            let media_type = sniff_layer(&path)?;
            let f = fs_err::File::open(&path).map_err(|_| LoadError::Missing(l.clone()))?;
            let info = store.put_blob(f, None, None)?;
            layers.push(Descriptor::new(media_type, info.digest, info.size));
        }
        let m = Manifest::new(
            media_types::DOCKER_MANIFEST,
            Descriptor::new(
                media_types::DOCKER_CONFIG,
                config_info.digest,
                config_info.size,
            ),
            layers,
        );
        let raw = Raw::from_value(m)?;
        store.put_blob_bytes(raw.bytes())?;
        report.manifests.push(raw.digest().clone());
        for tag in &entry.repo_tags {
            let full = normalize(tag)?;
            store.set_ref(&full, raw.digest(), Some(media_types::DOCKER_MANIFEST))?;
            report.names.push(full);
        }
    }
    Ok(report)
}

/// A Docker layer media type from the file's first bytes.
fn sniff_layer(path: &Path) -> Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut f = fs_err::File::open(path).map_err(LoadError::Read)?;
    let n = f.read(&mut magic).map_err(LoadError::Read)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => media_types::DOCKER_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => media_types::DOCKER_LAYER_ZSTD,
        _ => media_types::DOCKER_LAYER_TAR,
    })
}

fn normalize(name: &str) -> Result<String> {
    Reference::parse(name)
        .map(|r| r.to_string())
        .map_err(|e| LoadError::BadName {
            name: name.to_string(),
            reason: e.to_string(),
        })
}
