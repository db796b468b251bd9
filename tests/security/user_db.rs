//! An image's user database is read inside the image: a `/etc/passwd` or
//! `/etc/group` that is a symlink to an absolute path names that path in
//! the image, never the host's file. Every reader is covered: `USER` for
//! `WORKDIR` (the engine, on a directory view after `RUN` and on a layer
//! view after `COPY`), `COPY --chown` (the engine), and `RUN` (the
//! sandbox, inside the step's root).
//!
//! Found while merging the two passwd parsers into `hoist-userdb`: the
//! `WORKDIR` resolver joined `etc/passwd` onto the snapshot's path, which
//! followed an absolute symlink out to the host.

use super::lab::{self, Lab};

/// A host directory the image's symlinks point at, holding a passwd and a
/// group that name a user the image does not have.
fn host_db(lab: &Lab) -> String {
    let dir = lab.path("hostdb");
    lab::write(
        &dir,
        &[
            ("passwd", "evil:x:4242:4243::/:/bin/sh\n"),
            ("group", "evilgrp:x:4244:\n"),
        ],
    );
    dir.display().to_string()
}

/// Build `dockerfile` in a fresh context that holds `etc/passwd` and
/// `etc/group` as links to the host's `host` files; it must fail naming `want`.
fn fails_naming(lab: &Lab, n: usize, dockerfile: &str, host: &str, want: &str) {
    let ctx = lab.path(&format!("ctx{n}"));
    lab::write(&ctx, &[("Dockerfile", dockerfile)]);
    std::fs::create_dir_all(ctx.join("etc")).unwrap();
    for name in ["passwd", "group"] {
        std::os::unix::fs::symlink(format!("{host}/{name}"), ctx.join("etc").join(name)).unwrap();
    }
    let out = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a host database was used:\n{dockerfile}\n{err}"
    );
    assert!(err.contains(want), "{dockerfile}\n{err}");
}

#[test]
fn a_symlinked_user_database_is_read_inside_the_image() {
    let lab = Lab::new(hoist_test_support::bin!());
    let host = host_db(&lab);
    // Links made by a RUN: WORKDIR then reads a directory view of the snapshot.
    let by_run = format!(
        "FROM base:1\nRUN rm -f /etc/passwd /etc/group && ln -s {host}/passwd /etc/passwd \
         && ln -s {host}/group /etc/group\n"
    );
    // Links copied in: WORKDIR and --chown then read a layer view.
    let by_copy = "FROM base:1\nCOPY etc/ /etc/\n".to_string();
    let cases = [
        (
            &by_run,
            "USER evil\nWORKDIR /w\n",
            "unable to find user evil",
        ),
        (
            &by_copy,
            "USER evil\nWORKDIR /w\n",
            "unable to find user evil",
        ),
        (
            &by_copy,
            "COPY --chown=evil Dockerfile /f\n",
            "no user named \"evil\"",
        ),
        (
            &by_copy,
            "COPY --chown=0:evilgrp Dockerfile /f\n",
            "no group named \"evilgrp\"",
        ),
        (
            &by_copy,
            "USER evil\nRUN true\n",
            "unable to find user evil",
        ),
        (
            &by_run,
            "USER 0:evilgrp\nRUN true\n",
            "unable to find group evilgrp",
        ),
    ];
    for (n, (head, rest, want)) in cases.into_iter().enumerate() {
        fails_naming(&lab, n, &format!("{head}{rest}"), &host, want);
    }
}
