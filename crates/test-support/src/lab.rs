//! The harness the CLI tests share: a throw-away store with a registry-free base
//! image, `hoist` runs, and the image read back from `hoist save` (OCI
//! layout: index → manifest → config and layer tars) or `hoist export`.
//!
//! The base image is `FROM scratch` + `COPY rootfs/ /`, where rootfs holds
//! the host's `/bin/busybox` (Debian `busybox-static`) with applet
//! symlinks, a small `/etc/passwd` and `/etc/group`, and `/tmp`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The applets the fixtures use, as symlinks to `/bin/busybox`.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "id", "touch", "rm", "mkdir", "ln", "mkfifo", "chmod", "ls", "grep", "cp",
    "true", "false", "chown", "test", "hostname", "printf", "stat", "sleep", "env", "sort", "tr",
    "mv",
];

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
pub const GROUP: &str = "root:x:0:\nwheel:x:10:app\nstaff:x:50:app\napp:x:1000:\n";

/// A fixture directory under the repository's `testdata/run/`.
pub fn case(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/run")).join(name)
}

/// Run `BIN --root ROOT ARGS` (`BIN` the hoist under test, from
/// [`crate::bin!`]) with nothing of the host's leaking in: no
/// `SOURCE_DATE_EPOCH` or `HOIST_ROOT`, registry credentials from the
/// store's own (empty) `docker-config`.
pub fn hoist(bin: impl AsRef<Path>, root: &Path, args: &[&str]) -> Output {
    Command::new(bin.as_ref())
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("HOIST_ROOT")
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .output()
        .expect("hoist runs")
}

/// Run hoist, which must succeed; its stdout and stderr together.
pub fn ok(bin: impl AsRef<Path>, root: &Path, args: &[&str]) -> String {
    let out = hoist(bin, root, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "hoist {args:?} failed:\n{text}");
    text
}

/// Write `files` (relative path, content) under `dir`.
pub fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// One store in a temp dir, `base:1` built in it.
pub struct Lab {
    /// The hoist under test ([`crate::bin!`]).
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Lab {
    /// A store with `base:1` (busybox, `/etc/passwd`, `/etc/group`, `/tmp`),
    /// run by the hoist at `bin`: `Lab::new(bin!())`.
    pub fn new(bin: impl AsRef<Path>) -> Lab {
        let lab = Lab::empty(bin);
        lab.base("base:1", true);
        lab
    }

    /// A store with nothing in it.
    pub fn empty(bin: impl AsRef<Path>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        Lab {
            bin: bin.as_ref().to_path_buf(),
            dir,
            root,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Build a busybox base image as `tag`; without `etc`, the image has
    /// only `/bin` (no `/etc`, `/tmp`, `/proc`, `/dev`, `/sys`).
    pub fn base(&self, tag: &str, etc: bool) {
        let ctx = self.path(&format!("base-{}", tag.replace(':', "-")));
        let bin = ctx.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("/bin/busybox (Debian busybox-static) is installed");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        if etc {
            let rootfs = ctx.join("rootfs");
            std::fs::create_dir_all(rootfs.join("etc")).unwrap();
            std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
            std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
            std::fs::create_dir(rootfs.join("tmp")).unwrap();
            std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
                .unwrap();
        }
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
        self.ok(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
    }

    pub fn hoist(&self, args: &[&str]) -> Output {
        hoist(&self.bin, &self.root, args)
    }

    /// Run hoist, which must succeed; (stdout, stderr).
    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.hoist(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "hoist {args:?} failed ({}):\n{stderr}",
            out.status
        );
        (stdout, stderr)
    }

    /// Build the fixture `testdata/run/NAME` (its Dockerfile, itself as
    /// the context) as `tag` with `--progress plain`; the progress log.
    pub fn build_case(&self, name: &str, tag: &str, extra: &[&str]) -> String {
        let ctx = case(name);
        let ctx = ctx.to_str().unwrap();
        let mut args = vec!["build", "--progress", "plain", "-t", tag];
        args.extend_from_slice(extra);
        args.push(ctx);
        self.ok(&args).1
    }

    /// The image as `hoist save` writes it.
    pub fn image(&self, tag: &str) -> Image {
        let tar = self.path(&format!("{}.tar", tag.replace([':', '/'], "-")));
        self.ok(&["save", "-o", tar.to_str().unwrap(), tag]);
        Image::read(&tar)
    }

    /// The image's root filesystem, from `hoist export -o type=local`.
    pub fn rootfs(&self, tag: &str) -> PathBuf {
        let dest = self.path(&format!("rootfs-{}", tag.replace([':', '/'], "-")));
        self.ok(&[
            "export",
            tag,
            "-o",
            &format!("type=local,dest={}", dest.display()),
        ]);
        dest
    }
}

/// One entry of a layer tar.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Without `./` and without a trailing `/`.
    pub path: String,
    /// `f` file, `d` dir, `l` symlink, `h` hardlink, `p` fifo, `c`/`b` device.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// A saved image: its config and its layers' entries, bottom first.
pub struct Image {
    pub config: serde_json::Value,
    pub layers: Vec<Vec<Entry>>,
}

impl Image {
    pub fn read(tar: &Path) -> Image {
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            files.insert(name.trim_start_matches("./").to_string(), data);
        }
        let json = |name: &str| -> serde_json::Value {
            serde_json::from_slice(
                files
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} in {tar:?}")),
            )
            .unwrap()
        };
        let blob = |digest: &serde_json::Value| -> &Vec<u8> {
            let d = digest.as_str().unwrap().replace(':', "/");
            files.get(&format!("blobs/{d}")).unwrap()
        };
        let index = json("index.json");
        let manifest: serde_json::Value =
            serde_json::from_slice(blob(&index["manifests"][0]["digest"])).unwrap();
        let config = serde_json::from_slice(blob(&manifest["config"]["digest"])).unwrap();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let bytes = blob(&l["digest"]);
                let media = l["mediaType"].as_str().unwrap();
                let raw = if media.ends_with("gzip") {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                } else if media.ends_with("zstd") {
                    zstd::decode_all(&bytes[..]).unwrap()
                } else {
                    bytes.clone()
                };
                entries(&raw)
            })
            .collect();
        Image { config, layers }
    }

    /// The `history` entries as (created_by, empty_layer).
    pub fn history(&self) -> Vec<(String, bool)> {
        self.config["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["created_by"].as_str().unwrap_or_default().to_string(),
                    h["empty_layer"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// The top layer's entries.
    pub fn top(&self) -> &[Entry] {
        self.layers.last().unwrap()
    }
}

/// The paths a step's sandbox mounts over: none may be in any layer a
/// build made (layers after the base's first).
pub fn assert_no_mount_points(img: &Image) {
    for (i, layer) in img.layers.iter().enumerate().skip(1) {
        for e in layer {
            let p = e.path.as_str();
            let mounted = ["etc/hosts", "etc/resolv.conf", "etc/hostname"].contains(&p)
                || ["proc", "dev", "sys"]
                    .iter()
                    .any(|m| p == *m || p.starts_with(&format!("{m}/")));
            assert!(!mounted, "layer {i} holds the mount point {p}");
        }
    }
}

/// The entries of an uncompressed layer tar.
pub fn entries(raw: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(raw);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            _ => 'f',
        };
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().trim_start_matches("./").to_string());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Entry {
            path,
            kind,
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            link,
            data,
        });
    }
    out
}

/// The paths of a layer's entries, sorted.
pub fn paths(layer: &[Entry]) -> Vec<String> {
    let mut p: Vec<String> = layer.iter().map(|e| e.path.clone()).collect();
    p.sort();
    p
}

/// The entry at `path`; panics with the layer's listing when absent.
pub fn entry<'a>(layer: &'a [Entry], path: &str) -> &'a Entry {
    layer
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no {path} in the layer: {:?}", paths(layer)))
}

/// Every path under `root` (relative, sorted), directories included.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// What the steps printed, from a `--progress plain` log: the TEXT of each
/// `#N SECONDS TEXT` line (BuildKit's plain format: the step's number,
/// then the seconds since it started), in order.
pub fn printed_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|l| l.strip_prefix('#')?.split_once(' '))
        .filter(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|(_, rest)| {
            let (secs, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let fractional = secs.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
            fractional.then_some(text)
        })
        .collect()
}

/// The `#N` progress lines of a plain log that are step headers.
pub fn steps(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("] RUN ") || l.contains("] COPY ") || l.contains("] FROM "))
        .map(str::to_string)
        .collect()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
