//! Crafted hostile layers. Each is built from raw `tar::Header` bytes and
//! applied to `T/root`, where `T` also holds `T/outside/` (with a canary
//! file) and `T/canary-top`; every case asserts that it was refused or
//! contained, and that nothing outside `T/root` changed. Every case runs
//! with both resolvers (`openat2` with `RESOLVE_IN_ROOT`, and our walk).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Instant;

use hoist_engine::digest::Digest;
use hoist_engine::layer::{LayerError, Privileges, Resolver, UnpackOptions, UnpackReport, unpack};
use tar::{EntryType, Header};

/// A tar assembled header by header.
#[derive(Default)]
struct Tar(Vec<u8>);

fn header(kind: EntryType, name: &[u8], link: &[u8], size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h
}

impl Tar {
    fn raw(mut self, h: &Header, data: &[u8]) -> Tar {
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0, pad));
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Tar {
        self.raw(
            &header(EntryType::Regular, name.as_bytes(), b"", data.len() as u64),
            data,
        )
    }
    fn dir(self, name: &str) -> Tar {
        self.raw(&header(EntryType::Directory, name.as_bytes(), b"", 0), b"")
    }
    fn symlink(self, name: &str, target: &str) -> Tar {
        self.raw(
            &header(EntryType::Symlink, name.as_bytes(), target.as_bytes(), 0),
            b"",
        )
    }
    fn hardlink(self, name: &str, target: &str) -> Tar {
        self.raw(
            &header(EntryType::Link, name.as_bytes(), target.as_bytes(), 0),
            b"",
        )
    }
    fn device(self, kind: EntryType, name: &str) -> Tar {
        let mut h = header(kind, name.as_bytes(), b"", 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        self.raw(&h, b"")
    }
    fn end(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// `T/` with `root/`, `outside/canary`, `outside/dir/` and `canary-top`.
struct Sandbox {
    tmp: tempfile::TempDir,
    before: BTreeMap<PathBuf, (u32, u64, Vec<u8>)>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("root")).unwrap();
        fs::create_dir_all(tmp.path().join("outside/dir")).unwrap();
        fs::write(tmp.path().join("outside/canary"), "canary").unwrap();
        fs::write(tmp.path().join("outside/dir/inner"), "inner").unwrap();
        fs::write(tmp.path().join("canary-top"), "top").unwrap();
        let mut sandbox = Sandbox {
            tmp,
            before: BTreeMap::new(),
        };
        sandbox.before = sandbox.outside_state();
        sandbox
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// The absolute path of `T/outside`, without its leading `/`.
    fn outside_rel(&self) -> String {
        let abs = self.tmp.path().join("outside");
        abs.to_str().unwrap().trim_start_matches('/').to_string()
    }

    fn outside_abs(&self) -> String {
        self.tmp
            .path()
            .join("outside")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Everything in `T` but `T/root`: path → (mode, nlink, content or link).
    fn outside_state(&self) -> BTreeMap<PathBuf, (u32, u64, Vec<u8>)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.tmp.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path == self.root() {
                    continue;
                }
                let md = fs::symlink_metadata(&path).unwrap();
                let data = if md.is_file() {
                    fs::read(&path).unwrap()
                } else if md.file_type().is_symlink() {
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                } else {
                    stack.push(path.clone());
                    Vec::new()
                };
                out.insert(path, (md.mode(), md.nlink(), data));
            }
        }
        out
    }

    fn apply(&self, blob: &[u8], resolver: Resolver) -> Result<UnpackReport, LayerError> {
        let mut opts = UnpackOptions::new(Digest::of(blob));
        opts.resolver = resolver;
        unpack(blob, &self.root(), &opts)
    }

    /// Nothing outside the root changed; host paths named by the case are
    /// absent.
    fn assert_untouched(&self, case: &str) {
        assert_eq!(
            self.before,
            self.outside_state(),
            "{case}: something outside the root changed"
        );
        for host in [
            "/hoist-layer-escape",
            "/etc/hoist-layer-escape",
            "/tmp/hoist-layer-escape",
        ] {
            assert!(
                fs::symlink_metadata(host).is_err(),
                "{case}: {host} was created"
            );
        }
    }
}

fn refused(result: Result<UnpackReport, LayerError>, case: &str) -> LayerError {
    match result {
        Ok(report) => panic!("{case}: accepted ({report:?})"),
        Err(e) => e,
    }
}

fn each_resolver(case: &str, run: impl Fn(&Sandbox, Resolver)) {
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        let sandbox = Sandbox::new();
        run(&sandbox, resolver);
        sandbox.assert_untouched(&format!("{case} ({resolver:?})"));
    }
}

#[test]
fn layer_malicious_dotdot_escape_is_refused() {
    each_resolver("../escape", |s, r| {
        let blob = Tar::default().file("../canary-top", b"pwned").end();
        let e = refused(s.apply(&blob, r), "../");
        assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
        assert!(
            e.to_string().contains("../canary-top")
                && e.to_string().contains(&Digest::of(&blob).to_string()),
            "{e}"
        );
        let blob = Tar::default()
            .file("./../../hoist-layer-escape", b"pwned")
            .end();
        refused(s.apply(&blob, r), "./../../");
    });
}

#[test]
fn layer_malicious_inner_dotdot_escape_is_refused() {
    each_resolver("a/../../x", |s, r| {
        let blob = Tar::default()
            .dir("a/")
            .file("a/../../outside/canary", b"pwned")
            .end();
        let e = refused(s.apply(&blob, r), "a/../../x");
        assert!(matches!(e, LayerError::Unsafe { .. }), "{e}");
        let blob = Tar::default()
            .dir("a/")
            .file("a/b/../../../x", b"pwned")
            .end();
        refused(s.apply(&blob, r), "a/b/../../../x");
    });
}

#[test]
fn layer_malicious_absolute_names_are_contained() {
    each_resolver("absolute", |s, r| {
        let abs = format!("{}/canary", s.outside_abs());
        let blob = Tar::default()
            .file(&abs, b"pwned")
            .file("/etc/hoist-layer-escape", b"pwned")
            .end();
        s.apply(&blob, r).unwrap();
        let inside = s.root().join(s.outside_rel()).join("canary");
        assert_eq!(fs::read(inside).unwrap(), b"pwned");
        assert_eq!(
            fs::read(s.root().join("etc/hoist-layer-escape")).unwrap(),
            b"pwned"
        );
    });
}

#[test]
fn layer_malicious_symlink_to_root_then_through_it_is_contained() {
    each_resolver("evil -> /", |s, r| {
        let blob = Tar::default()
            .symlink("evil", "/")
            .file(&format!("evil/{}/canary", s.outside_rel()), b"pwned")
            .file("evil/etc/hoist-layer-escape", b"pwned")
            .end();
        s.apply(&blob, r).unwrap();
        assert_eq!(
            fs::read(s.root().join(s.outside_rel()).join("canary")).unwrap(),
            b"pwned"
        );
        assert_eq!(
            fs::read(s.root().join("etc/hoist-layer-escape")).unwrap(),
            b"pwned"
        );
        assert!(
            fs::symlink_metadata(s.root().join("evil"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    });
}

#[test]
fn layer_malicious_relative_symlink_escape_is_contained() {
    each_resolver("evil -> ../../..", |s, r| {
        let blob = Tar::default()
            .symlink("up", "..")
            .file("up/outside/canary", b"pwned")
            .symlink("evil", "../../..")
            .file(&format!("evil/{}/canary", s.outside_rel()), b"pwned")
            .dir(&format!("evil/{}/dir/", s.outside_rel()))
            .file(&format!("evil/{}/dir/inner", s.outside_rel()), b"pwned")
            .end();
        s.apply(&blob, r).unwrap();
        // `..` at the root stays at the root.
        assert_eq!(fs::read(s.root().join("outside/canary")).unwrap(), b"pwned");
        let inside = s.root().join(s.outside_rel());
        assert_eq!(fs::read(inside.join("canary")).unwrap(), b"pwned");
        assert_eq!(fs::read(inside.join("dir/inner")).unwrap(), b"pwned");
    });
}

#[test]
fn layer_malicious_symlink_chains_and_loops() {
    each_resolver("chain", |s, r| {
        let abs = s.outside_abs();
        let blob = Tar::default()
            .symlink("a", "b")
            .dir("d/")
            .symlink("d/b2", "../c")
            .symlink("b", "d/b2")
            .symlink("c", &abs)
            .file("a/canary", b"pwned")
            .symlink("x1", "d/x2")
            .symlink("d/x2", "../../../../..")
            .file("x1/canary-top", b"pwned")
            .end();
        s.apply(&blob, r).unwrap();
        assert_eq!(
            fs::read(s.root().join(s.outside_rel()).join("canary")).unwrap(),
            b"pwned"
        );
        assert_eq!(fs::read(s.root().join("canary-top")).unwrap(), b"pwned");
        let blob = Tar::default()
            .symlink("l1", "l2")
            .symlink("l2", "l1")
            .file("l1/x", b"pwned")
            .end();
        let e = refused(s.apply(&blob, r), "symlink loop");
        assert!(matches!(e, LayerError::Apply { .. }), "{e}");
    });
}

#[test]
fn layer_malicious_hardlinks_outside_the_root_are_refused() {
    each_resolver("hardlinks", |s, r| {
        for target in ["/etc/passwd", "../outside/canary", "a/../../outside/canary"] {
            let blob = Tar::default().hardlink("h", target).end();
            let e = refused(s.apply(&blob, r), target);
            assert!(matches!(e, LayerError::Unsafe { .. }), "{target}: {e}");
        }
        let abs = format!("{}/canary", s.outside_abs());
        let blob = Tar::default().hardlink("h", &abs).end();
        let e = refused(s.apply(&blob, r), "absolute hardlink to the canary");
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(fs::symlink_metadata(s.root().join("h")).is_err());
    });
}

#[test]
fn layer_malicious_hardlink_through_a_symlinked_dir_is_contained() {
    each_resolver("hardlink via symlink dir", |s, r| {
        for link in [
            s.outside_abs(),
            "../outside".to_string(),
            "../../outside".to_string(),
        ] {
            let blob = Tar::default()
                .symlink("sd", &link)
                .hardlink("h", "sd/canary")
                .end();
            let e = refused(s.apply(&blob, r), &link);
            assert!(matches!(e, LayerError::Unsafe { .. }), "{link}: {e}");
        }
        // Inside the root the same shape is fine, and links the root's file.
        let blob = Tar::default()
            .dir("real/")
            .file("real/f", b"mine")
            .symlink("sd2", "/real")
            .hardlink("h2", "sd2/f")
            .end();
        s.apply(&blob, r).unwrap();
        let (a, b) = (
            fs::metadata(s.root().join("real/f")).unwrap(),
            fs::metadata(s.root().join("h2")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
    });
}

#[test]
fn layer_malicious_whiteout_names_are_refused_or_contained() {
    each_resolver("whiteouts", |s, r| {
        for name in [
            ".wh.../x",
            "../.wh.canary-top",
            ".wh..",
            ".wh...",
            ".wh.",
            "a/.wh../x",
        ] {
            let blob = Tar::default().file(name, b"").end();
            let e = refused(s.apply(&blob, r), name);
            assert!(matches!(e, LayerError::Unsafe { .. }), "{name}: {e}");
        }
        // A whiteout through a symlink pointing out of the root only
        // reaches inside it.
        fs::write(s.root().join("keep"), "k").unwrap();
        let blob = Tar::default()
            .symlink("up", "../..")
            .file("up/.wh.outside", b"")
            .symlink("abs", &s.outside_abs())
            .file("abs/.wh.canary", b"")
            .end();
        s.apply(&blob, r).unwrap();
        assert!(s.root().join("keep").exists());
    });
}

#[test]
fn layer_malicious_opaque_marker_in_a_symlinked_dir_is_refused() {
    each_resolver("opaque via symlink", |s, r| {
        fs::write(s.root().join("keep"), "k").unwrap();
        for target in [
            s.outside_abs(),
            "../outside".to_string(),
            "/".to_string(),
            ".".to_string(),
        ] {
            let blob = Tar::default()
                .symlink("evil", &target)
                .file("evil/.wh..wh..opq", b"")
                .end();
            let e = refused(s.apply(&blob, r), &target);
            assert!(matches!(e, LayerError::Unsafe { .. }), "{target}: {e}");
            assert!(
                s.root().join("keep").exists(),
                "{target}: the root was cleared"
            );
        }
    });
}

#[test]
fn layer_malicious_devices_are_skipped_when_rootless() {
    each_resolver("devices rootless", |s, r| {
        let blob = Tar::default()
            .device(EntryType::Char, "null")
            .device(EntryType::Block, "sda")
            .device(EntryType::Fifo, "fifo")
            .end();
        let mut opts = UnpackOptions::new(Digest::of(&blob));
        opts.resolver = r;
        opts.privileges = Privileges::Rootless;
        let report = unpack(&blob[..], &s.root(), &opts).unwrap();
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(
            report
                .warnings
                .iter()
                .all(|w| w.message.contains("not running as root"))
        );
        assert!(fs::symlink_metadata(s.root().join("null")).is_err());
        assert!(fs::symlink_metadata(s.root().join("sda")).is_err());
        use std::os::unix::fs::FileTypeExt;
        assert!(
            fs::symlink_metadata(s.root().join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    });
}

#[test]
fn layer_malicious_existing_symlinks_are_replaced_not_followed() {
    each_resolver("overwrite through symlink", |s, r| {
        let canary = format!("{}/canary", s.outside_abs());
        symlink(&canary, s.root().join("abs")).unwrap();
        symlink("../outside/canary", s.root().join("rel")).unwrap();
        symlink(s.outside_abs(), s.root().join("dirlink")).unwrap();
        symlink(s.outside_abs(), s.root().join("hardlinked")).unwrap();
        fs::write(s.root().join("src"), "src").unwrap();
        let blob = Tar::default()
            .file("abs", b"pwned")
            .file("rel", b"pwned")
            .dir("dirlink/")
            .file("dirlink/canary", b"pwned")
            .hardlink("hardlinked", "src")
            .symlink("abs", "elsewhere")
            .end();
        s.apply(&blob, r).unwrap();
        assert!(
            fs::symlink_metadata(s.root().join("abs"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_link(s.root().join("abs")).unwrap(),
            Path::new("elsewhere")
        );
        assert_eq!(fs::read(s.root().join("rel")).unwrap(), b"pwned");
        assert!(
            fs::symlink_metadata(s.root().join("dirlink"))
                .unwrap()
                .is_dir()
        );
        assert_eq!(fs::read(s.root().join("dirlink/canary")).unwrap(), b"pwned");
        assert_eq!(fs::read(s.root().join("hardlinked")).unwrap(), b"src");
    });
}

#[test]
fn layer_malicious_bad_digest_is_refused() {
    each_resolver("bad digest", |s, r| {
        let good = Tar::default().file("f", b"the real content").end();
        let mut bad = good.clone();
        bad[512 + 3] ^= 1;
        let mut opts = UnpackOptions::new(Digest::of(&good));
        opts.resolver = r;
        let e = refused(unpack(&bad[..], &s.root(), &opts), "flipped byte");
        assert!(matches!(e, LayerError::Verify { .. }), "{e}");
        assert!(
            e.to_string().contains(&Digest::of(&good).to_string()),
            "{e}"
        );
        // Gzip too: the flip breaks either the deflate stream or the digest.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&good).unwrap();
        let gz = gz.finish().unwrap();
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let mut opts = UnpackOptions::new(Digest::of(&gz));
        opts.resolver = r;
        let e = refused(unpack(&bad[..], &s.root(), &opts), "flipped gzip byte");
        assert!(
            matches!(
                e,
                LayerError::Verify { .. } | LayerError::Read { .. } | LayerError::Corrupt { .. }
            ),
            "{e}"
        );
        // A wrong diff_id is refused as well.
        let mut opts = UnpackOptions::new(Digest::of(&gz));
        opts.resolver = r;
        opts.diff_id = Some(Digest::of(b"something else"));
        let e = refused(unpack(&gz[..], &s.root(), &opts), "wrong diff_id");
        assert!(matches!(e, LayerError::DiffId { .. }), "{e}");
    });
}

#[test]
fn layer_malicious_truncated_streams_are_refused() {
    each_resolver("truncated", |s, r| {
        let data = vec![7u8; 100_000];
        let tar = Tar::default().file("f", &data).file("g", b"g").end();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        // Digests of the truncated bytes: the truncation itself must be caught.
        for (what, cut) in [
            ("gzip", &gz[..gz.len() / 2]),
            ("gzip trailer", &gz[..gz.len() - 4]),
            ("tar data", &tar[..5_000]),
            ("tar header", &tar[..600]),
        ] {
            let e = refused(s.apply(cut, r), what);
            assert!(
                matches!(e, LayerError::Corrupt { .. } | LayerError::Read { .. }),
                "{what}: {e}"
            );
        }
    });
}

#[test]
fn layer_malicious_huge_size_claims_fail_fast() {
    // A GNU long name claiming 10 GiB, gzip-bombed with 16 MiB of zeros.
    let long = header(EntryType::GNULongName, b"././@LongLink", b"", 10 << 30);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(long.as_bytes()).unwrap();
    gz.write_all(&vec![0u8; 16 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    each_resolver("huge sizes", |s, r| {
        let start = Instant::now();
        // A PAX header claiming a terabyte.
        let pax = header(EntryType::XHeader, b"PaxHeaders/x", b"", 1 << 40);
        let blob = Tar::default()
            .raw(&pax, b"20 path=aaaaaaaaaaa\n")
            .file("x", b"")
            .end();
        let e = refused(s.apply(&blob, r), "huge PAX");
        assert!(e.to_string().contains("exceeds"), "{e}");
        let e = refused(s.apply(&bomb, r), "GNU long name bomb");
        assert!(e.to_string().contains("exceeds"), "{e}");
        // A file claiming an exabyte with ten bytes behind it.
        let mut h = header(EntryType::Regular, b"big", b"", 0);
        h.set_size(1 << 60);
        h.set_cksum();
        let mut blob = h.as_bytes().to_vec();
        blob.extend_from_slice(b"0123456789");
        let e = refused(s.apply(&blob, r), "exabyte file");
        assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("\"big\""), "the entry is named: {e}");
        // A directory claiming data (readers disagree on skipping it).
        let mut h = header(EntryType::Directory, b"d/", b"", 0);
        h.set_size(512);
        h.set_cksum();
        let blob = Tar::default().raw(&h, &[0; 512]).end();
        refused(s.apply(&blob, r), "directory with data");
        // Refused at the header: the bomb is never inflated.
        assert!(start.elapsed().as_secs() < 3, "took {:?}", start.elapsed());
    });
}

#[test]
fn layer_malicious_corrupt_headers_are_refused() {
    each_resolver("corrupt headers", |s, r| {
        let mut blob = Tar::default().file("f", b"x").end();
        blob[0] = b'g'; // name changed, checksum not
        let e = refused(s.apply(&blob, r), "bad checksum");
        assert!(e.to_string().contains("checksum"), "{e}");
        let sparse = header(EntryType::GNUSparse, b"s", b"", 0);
        refused(
            s.apply(&Tar::default().raw(&sparse, b"").end(), r),
            "sparse",
        );
        let pax = header(EntryType::XHeader, b"p", b"", 12);
        let blob = Tar::default()
            .raw(&pax, b"12 path=a\n")
            .raw(&pax, b"12 path=b\n")
            .file("x", b"")
            .end();
        refused(s.apply(&blob, r), "two PAX headers");
        let blob = Tar::default().raw(&pax, b"12 path=a\n").end();
        refused(s.apply(&blob, r), "dangling PAX header");
        let nul = header(EntryType::XHeader, b"p", b"", 13);
        let blob = Tar::default()
            .raw(&nul, b"13 path=a\0b\n")
            .file("x", b"")
            .end();
        refused(s.apply(&blob, r), "NUL in PAX path");
        let blob = Tar::default().file("f", b"").file("f/x", b"").end();
        refused(s.apply(&blob, r), "file used as a directory");
    });
}
