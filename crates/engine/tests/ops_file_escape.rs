//! Destinations that try to leave the image root through symlinks in the
//! base image, `..`, links made by the copy itself, or archive entries.
//! BuildKit resolves every one of them inside the root (containerd's
//! `fs.RootPath`); so does hoist, in both modes. Each case checks where the
//! file lands and that a canary directory outside the root, which the
//! absolute symlinks point at, is untouched.

mod ops_file_support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use hoist_engine::ops::file::{Chown, CopyPlan, FileOpError, SourceSpec, apply_to_dir};
use ops_file_support::*;

/// A base root, a context with `f`, and a canary outside both.
struct Lab {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    ctx: PathBuf,
    outside: PathBuf,
    canary: BTreeMap<String, Snap>,
}

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let ctx = tmp.path().join("ctx");
        let outside = tmp.path().join("outside-canary");
        std::fs::create_dir_all(&base).unwrap();
        file(&ctx, "f", b"payload", 0o644);
        file(&outside, "canary.txt", b"do not touch", 0o644);
        dir(&outside, "dir", 0o755);
        file(&outside, "dir/keep", b"keep", 0o644);
        let canary = snapshot(&outside);
        Lab {
            _tmp: tmp,
            base,
            ctx,
            outside,
            canary,
        }
    }

    fn out(&self, rel: &str) -> String {
        format!("{}/{rel}", self.outside.display())
    }

    fn plan(&self, dest: &str) -> CopyPlan {
        CopyPlan {
            sources: vec![SourceSpec::context(&self.ctx, "f")],
            dest: dest.to_string(),
            now: Some(now()),
            ..Default::default()
        }
    }

    /// The canary and the lab's own directory are as they were.
    fn untouched(&self) {
        assert_eq!(
            snapshot(&self.outside),
            self.canary,
            "the canary outside the root changed"
        );
        let mut names: Vec<String> = std::fs::read_dir(self._tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["base", "ctx", "outside-canary"],
            "something appeared beside the root"
        );
    }

    /// Runs `plan` both ways (apply on a copy of the base, layer unpacked
    /// over another copy; they must agree) and returns the applied root.
    fn run(&self, plan: &CopyPlan) -> (tempfile::TempDir, PathBuf) {
        let r = both(plan, &self.base);
        self.untouched();
        r
    }

    /// Runs `plan` expecting an error in both modes, with nothing written.
    fn fails(&self, plan: &CopyPlan) -> FileOpError {
        let before = snapshot(&self.base);
        let copy = tempfile::tempdir().unwrap();
        copy_tree(&self.base, copy.path());
        let err = apply_to_dir(plan, copy.path()).unwrap_err();
        assert!(
            layer(plan, Some(&self.base)).is_err(),
            "the layer mode fails too"
        );
        assert_eq!(snapshot(&self.base), before);
        self.untouched();
        err
    }
}

#[test]
fn ops_file_escape_app_symlink_to_root() {
    let lab = Lab::new();
    symlink(&lab.base, "app", "/");
    let (_t, r) = lab.run(&lab.plan("/app/"));
    assert_eq!(read(&r, "f"), "payload");
    assert_eq!(snapshot(&r)["app"].kind, 'l', "the link is left as it is");
}

#[test]
fn ops_file_escape_etc_relative_climb() {
    let lab = Lab::new();
    symlink(&lab.base, "etc", "../../..");
    let (_t, r) = lab.run(&lab.plan("/etc/"));
    assert_eq!(read(&r, "f"), "payload");
    // The workdir may go through such a link too.
    let mut p = lab.plan(".");
    p.workdir = "/etc/sub".into();
    let (_t, r) = lab.run(&p);
    assert_eq!(read(&r, "sub/f"), "payload");
}

#[test]
fn ops_file_escape_absolute_link_to_an_outside_directory() {
    let lab = Lab::new();
    symlink(&lab.base, "x", &lab.out("dir"));
    let (_t, r) = lab.run(&lab.plan("/x/"));
    let inside = format!("{}/f", lab.out("dir").trim_start_matches('/'));
    assert_eq!(
        read(&r, &inside),
        "payload",
        "followed as if the root were /"
    );
}

#[test]
fn ops_file_escape_dangling_link_to_an_outside_file() {
    let lab = Lab::new();
    symlink(&lab.base, "y", &lab.out("canary.txt"));
    let (_t, r) = lab.run(&lab.plan("/y"));
    let inside = lab.out("canary.txt").trim_start_matches('/').to_string();
    assert_eq!(
        read(&r, &inside),
        "payload",
        "the final link is followed inside the root"
    );
}

#[test]
fn ops_file_escape_dangling_relative_link_creates_inside() {
    let lab = Lab::new();
    symlink(&lab.base, "d", "nowhere/deeper");
    let (_t, r) = lab.run(&lab.plan("/d/"));
    assert_eq!(read(&r, "nowhere/deeper/f"), "payload");
    let snap = snapshot(&r);
    assert_eq!((snap["nowhere"].kind, snap["nowhere"].mode), ('d', 0o755));
}

#[test]
fn ops_file_escape_link_loop_is_an_error() {
    let lab = Lab::new();
    symlink(&lab.base, "loop1", "loop2");
    symlink(&lab.base, "loop2", "/loop1");
    let err = lab.fails(&lab.plan("/loop1/"));
    assert!(matches!(err, FileOpError::TooManyLinks { .. }), "{err}");
}

#[test]
fn ops_file_escape_chain_of_links_and_dotdot() {
    let lab = Lab::new();
    dir(&lab.base, "c", 0o755);
    symlink(&lab.base, "a", "b");
    symlink(&lab.base, "b", "/c/../../../..");
    let (_t, r) = lab.run(&lab.plan("/a/x/"));
    assert_eq!(read(&r, "x/f"), "payload");
    let (_t, r) = lab.run(&lab.plan("/../../../../tmp-escape/"));
    assert_eq!(read(&r, "tmp-escape/f"), "payload");
}

#[test]
fn ops_file_escape_link_made_by_an_earlier_source_is_not_written_through() {
    let lab = Lab::new();
    symlink(&lab.ctx, "d1/evil", &lab.out("dir"));
    file(&lab.ctx, "d2/evil/f", b"x", 0o644);
    let p = CopyPlan {
        sources: vec![
            SourceSpec::context(&lab.ctx, "d1"),
            SourceSpec::context(&lab.ctx, "d2"),
        ],
        ..lab.plan("/m/")
    };
    let err = lab.fails(&p);
    assert!(
        err.to_string().contains("cannot copy to non-directory"),
        "{err}"
    );
}

#[test]
fn ops_file_escape_file_replaces_a_link_in_its_place() {
    let lab = Lab::new();
    symlink(&lab.base, "m/f", &lab.out("canary.txt"));
    let (_t, r) = lab.run(&lab.plan("/m/"));
    let snap = snapshot(&r);
    assert_eq!(snap["m/f"].kind, 'f', "the link is replaced, not followed");
    assert_eq!(read(&r, "m/f"), "payload");
}

#[test]
fn ops_file_escape_parent_link_to_a_file_is_not_a_directory() {
    let lab = Lab::new();
    file(&lab.base, "file", b"base", 0o644);
    symlink(&lab.base, "pf", "/file");
    let err = lab.fails(&lab.plan("/pf/sub/"));
    assert!(matches!(err, FileOpError::NotADirectory { .. }), "{err}");
}

#[test]
fn ops_file_escape_chown_names_are_read_inside_the_root() {
    let lab = Lab::new();
    // /etc/passwd resolves to /passwd of the image, never the host's.
    symlink(&lab.base, "etc", "../../..");
    file(
        &lab.base,
        "passwd",
        b"alice:x:4321:4322::/:/bin/sh\n",
        0o644,
    );
    let p = CopyPlan {
        chown: Some(Chown::Spec("alice".into())),
        ..lab.plan("/")
    };
    let (bytes, _, _) = layer(&p, Some(&lab.base)).unwrap();
    assert_eq!(entry_headers(&bytes)["f"].1, 4321);
    assert_eq!(entry_headers(&bytes)["f"].2, 4322);
    // `root` exists in the host's /etc/passwd under another spelling than
    // a number: `daemon` must not be found there.
    let p = CopyPlan {
        chown: Some(Chown::Spec("daemon".into())),
        ..lab.plan("/")
    };
    let err = lab.fails(&p);
    assert!(matches!(err, FileOpError::UnknownUser { .. }), "{err}");
}

fn add_archive(lab: &Lab, tar: &[u8], dest: &str) -> CopyPlan {
    std::fs::write(lab.ctx.join("a.tar"), tar).unwrap();
    CopyPlan {
        sources: vec![SourceSpec::context(&lab.ctx, "a.tar")],
        is_add: true,
        ..lab.plan(dest)
    }
}

#[test]
fn ops_file_escape_archive_dotdot_entry_stops_at_the_destination() {
    // BuildKit unpacks in a chroot at the destination: `..` stops there.
    let lab = Lab::new();
    let tar = raw_tar(&[
        T::File("ok", b"1", 0o644),
        T::File("../../escape", b"x", 0o644),
        T::File("a/../../../../b", b"y", 0o644),
    ]);
    let (_t, r) = lab.run(&add_archive(&lab, &tar, "/dest/"));
    assert_eq!(read(&r, "dest/escape"), "x");
    assert_eq!(read(&r, "dest/b"), "y");
    assert!(!exists(&r, "escape"));
}

#[test]
fn ops_file_escape_archive_entry_through_its_own_absolute_link() {
    let lab = Lab::new();
    let target = lab.out("dir");
    let tar = raw_tar(&[T::Symlink("l", &target), T::File("l/f", b"through", 0o644)]);
    let (_t, r) = lab.run(&add_archive(&lab, &tar, "/dest/"));
    // Resolved with the destination as root, as chrootarchive.Untar does.
    let inside = format!("dest/{}/f", target.trim_start_matches('/'));
    assert_eq!(read(&r, &inside), "through");
}

#[test]
fn ops_file_escape_archive_links_above_the_destination_stay_inside() {
    let lab = Lab::new();
    // A symlink is stored as written; following it later stays in the root.
    let tar = raw_tar(&[T::Symlink("l", "../../..")]);
    let mut p = add_archive(&lab, &tar, "/dest/");
    let (_t, r) = lab.run(&p);
    assert_eq!(snapshot(&r)["dest/l"].data, b"../../..");
    p.sources = vec![SourceSpec::context(&lab.ctx, "f")];
    p.is_add = false;
    p.dest = "/dest/l/".into();
    let (_t, r2) = both(&p, &r);
    lab.untouched();
    assert_eq!(read(&r2, "f"), "payload");
    // A hard link target stops at the destination too: here it is missing.
    let tar = raw_tar(&[T::Hardlink("h", "../../etc/passwd")]);
    let err = lab.fails(&add_archive(&lab, &tar, "/dest/"));
    assert!(
        err.to_string().contains("hard link target does not exist"),
        "{err}"
    );
    // ...and found when the archive made it.
    let tar = raw_tar(&[
        T::File("etc/passwd", b"pw", 0o644),
        T::Hardlink("h", "../../etc/passwd"),
    ]);
    let (_t, r) = lab.run(&add_archive(&lab, &tar, "/dest/"));
    assert_eq!(read(&r, "dest/h"), "pw");
}

#[test]
fn ops_file_escape_archive_into_a_destination_linked_outside() {
    let lab = Lab::new();
    symlink(&lab.base, "app", &lab.out(""));
    let tar = raw_tar(&[T::Dir("sub/", 0o755), T::File("sub/f", b"in", 0o644)]);
    let (_t, r) = lab.run(&add_archive(&lab, &tar, "/app/"));
    let inside = format!(
        "{}/sub/f",
        lab.outside.display().to_string().trim_start_matches('/')
    );
    assert_eq!(read(&r, &inside), "in");
}

#[test]
fn ops_file_escape_nothing_is_written_outside_by_a_deep_tree() {
    // Many entries, each under a parent that is a symlink out of the root
    // in the base: all land inside.
    let lab = Lab::new();
    for i in 0..20 {
        symlink(&lab.base, &format!("l{i}"), &lab.out("dir"));
    }
    for i in 0..20 {
        let (_t, r) = lab.run(&lab.plan(&format!("/l{i}/deep/er/")));
        let inside = format!("{}/deep/er/f", lab.out("dir").trim_start_matches('/'));
        assert_eq!(read(&r, &inside), "payload");
    }
}
