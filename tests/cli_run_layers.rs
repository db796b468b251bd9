//! What `RUN` puts in its layer: deletions, special files, nothing for a
//! step that changes nothing, and never the sandbox's own mount points.
//! Each build runs over a busybox base made in the test's own store (see
//! `hoist_test_support::lab`); the layers are read from `hoist save`, the
//! result from `hoist export`. Each test names the BuildKit behaviour it
//! mirrors, and the differential tests compare the layers and history
//! with what BuildKit built from the same Dockerfiles
//! (`testdata/run/CASE/buildkit.txt`, recorded by `testdata/run/record.sh`).

use hoist_test_support::{bin, lab};

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use lab::{Lab, entry, paths, read, tree};

/// The exported root without the base's `bin/` applets.
fn tree_without_bin(root: &std::path::Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .filter(|p| !p.starts_with("bin/"))
        .collect()
}

#[test]
fn deletions_are_whiteouts_and_a_recreated_dir_is_opaque() {
    // OCI image-spec whiteouts, as BuildKit writes a RUN's deletions: a
    // file of an earlier layer removed → `.wh.NAME` next to it (with its
    // parent dir entry). A directory removed and made again hides all that
    // was below it: the opaque marker `.wh..wh..opq`, as the recorded
    // BuildKit (docker 20.10) writes it (a standalone buildkitd's overlay
    // differ writes one `.wh.` per hidden child instead; the filesystem is
    // the same, checked on the exported root).
    let lab = Lab::new(bin!());
    lab.build_case("deletions", "del:1", &[]);
    let img = lab.image("del:1");
    lab::assert_no_mount_points(&img);
    assert_eq!(img.layers.len(), 3);
    assert_eq!(
        paths(&img.layers[1]),
        [
            "d",
            "d/old",
            "d/sub",
            "d/sub/deep",
            "gone",
            "keep",
            "keep/k"
        ]
    );
    let top = img.top();
    assert_eq!(
        paths(top),
        [
            ".wh.gone",
            "d",
            "d/.wh..wh..opq",
            "d/new",
            "etc",
            "etc/.wh.group"
        ],
        "only the deletions, the new file and their parents"
    );
    for wh in [".wh.gone", "d/.wh..wh..opq", "etc/.wh.group"] {
        let e = entry(top, wh);
        assert_eq!((e.kind, e.data.len()), ('f', 0), "{wh}: an empty file");
    }
    assert_eq!(entry(top, "d").kind, 'd');
    let fs = lab.rootfs("del:1");
    assert_eq!(
        tree_without_bin(&fs),
        [
            "bin",
            "d",
            "d/new",
            "etc",
            "etc/passwd",
            "keep",
            "keep/k",
            "tmp"
        ],
        "exactly what the Dockerfile leaves"
    );
    assert_eq!(read(&fs.join("etc/passwd")), lab::PASSWD);
}

#[test]
fn hardlinks_fifos_setuid_and_symlinks_survive_in_the_layer() {
    // BuildKit's layer tar keeps what the step made: a second name of a
    // file as a tar hardlink entry, a fifo, setuid/setgid bits, symlinks
    // (dangling too, never followed) and the owner the step gave.
    let lab = Lab::new(bin!());
    lab.build_case("special", "special:1", &[]);
    let img = lab.image("special:1");
    lab::assert_no_mount_points(&img);
    let top = img.top();
    let a = entry(top, "a");
    assert_eq!((a.kind, a.data.as_slice()), ('f', &b"data\n"[..]));
    let b = entry(top, "b");
    assert_eq!(b.kind, 'h', "the second name is a hardlink entry");
    assert_eq!(b.link.as_deref(), Some("a"));
    assert_eq!(entry(top, "fifo").kind, 'p');
    let suid = entry(top, "suid");
    assert_eq!((suid.kind, suid.mode), ('f', 0o4755));
    let sym = entry(top, "sym");
    assert_eq!((sym.kind, sym.link.as_deref()), ('l', Some("/a")));
    let dangling = entry(top, "dangling");
    assert_eq!(
        (dangling.kind, dangling.link.as_deref()),
        ('l', Some("../nowhere"))
    );
    let sgid = entry(top, "sgid");
    assert_eq!((sgid.kind, sgid.mode), ('d', 0o2775));
    let owned = entry(top, "owned");
    assert_eq!(
        (owned.uid, owned.gid, owned.mode),
        (1000, 50, 0o600),
        "chown/chmod in the step are in the tar header"
    );
    let fs = lab.rootfs("special:1");
    let meta = |p: &str| std::fs::symlink_metadata(fs.join(p)).unwrap();
    assert!(meta("fifo").file_type().is_fifo());
    assert_eq!(meta("suid").mode() & 0o7777, 0o4755);
    assert_eq!(
        std::fs::read_link(fs.join("sym")).unwrap().to_str(),
        Some("/a")
    );
    assert_eq!(read(&fs.join("b")), "data\n");
}

#[test]
fn a_step_that_changes_nothing_makes_no_layer() {
    // BuildKit drops an empty diff: no layer, `empty_layer: true` in the
    // history. Reading the generated /etc/hosts, /etc/resolv.conf,
    // /etc/hostname, /proc, /dev and /sys changes nothing either: their
    // mount points (and /etc's times) are not part of any layer.
    let lab = Lab::new(bin!());
    let log = lab.build_case("empty", "empty:1", &[]);
    let img = lab.image("empty:1");
    lab::assert_no_mount_points(&img);
    assert_eq!(
        img.layers.len(),
        2,
        "base + the one step that changed a file"
    );
    assert_eq!(
        paths(img.top()),
        ["tmp", "tmp/changed"],
        "nothing of /etc, /proc, /dev or /sys"
    );
    let runs: Vec<(String, bool)> = img
        .history()
        .into_iter()
        .filter(|h| h.0.starts_with("RUN "))
        .collect();
    let empty: Vec<bool> = runs.iter().map(|h| h.1).collect();
    assert_eq!(empty, [true, true, true, false], "{runs:#?}");
    assert_eq!(
        img.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        2
    );
    // An empty step is cached like any other.
    let again = lab.build_case("empty", "empty:1", &[]);
    assert!(again.contains("0 steps run, 4 cached"), "{log}\n{again}");
    assert_eq!(lab.image("empty:1").config["rootfs"], img.config["rootfs"]);
}

#[test]
fn mount_points_leave_nothing_on_a_base_without_etc() {
    // BuildKit removes the mount stubs it had to create (/etc/hosts and
    // /etc itself, /proc, /dev, /sys) after the step: an image without
    // /etc does not gain one by running a step.
    let lab = Lab::new(bin!());
    lab.base("bare:1", false);
    lab.build_case("bare", "bare-run:1", &[]);
    let img = lab.image("bare-run:1");
    lab::assert_no_mount_points(&img);
    assert_eq!(img.layers.len(), 2, "base + the step that wrote /x");
    assert_eq!(paths(img.top()), ["x"]);
    let runs: Vec<bool> = img
        .history()
        .into_iter()
        .filter(|h| h.0.starts_with("RUN "))
        .map(|h| h.1)
        .collect();
    assert_eq!(runs, [false, true]);
    let fs = lab.rootfs("bare-run:1");
    let top: Vec<String> = tree(&fs).into_iter().filter(|p| !p.contains('/')).collect();
    assert_eq!(top, ["bin", "x"]);
}

/// A case's history and RUN layers as recorded from BuildKit
/// (`testdata/run/CASE/buildkit.txt`, made by `testdata/run/record.sh`
/// with docker 20.10's BuildKit v0.8), brought to today's BuildKit:
/// v0.8 leaves its mount stubs (`dev`, `proc`, `sys`, and `etc` for
/// `/etc/hosts`) as empty directories in every RUN layer; today's BuildKit
/// removes them (executor/stubs.go, restoring the parent's times) and so
/// drops a diff that held only stubs (`empty_layer`). Layers after the
/// base's one, each a sorted list of `path kind mode uid:gid size link`.
fn buildkit(case: &str) -> (Vec<(String, bool)>, Vec<Vec<String>>) {
    let text = read(&lab::case(case).join("buildkit.txt"));
    let mut history = Vec::new();
    let mut layers: Vec<Vec<Vec<String>>> = Vec::new();
    for line in text.lines() {
        let f: Vec<String> = line.split('\t').map(str::to_string).collect();
        match f[0].as_str() {
            "history" => history.push((serde_json::from_str(&f[2]).unwrap(), f[1] == "1")),
            "layer" => layers.push(Vec::new()),
            _ => layers.last_mut().unwrap().push(f),
        }
    }
    let layers: Vec<Vec<String>> = layers
        .into_iter()
        .map(|l| {
            let under = |d: &str| l.iter().any(|e| e[0].starts_with(&format!("{d}/")));
            let mut kept: Vec<String> = l
                .iter()
                .filter(|e| {
                    let stub = ["dev", "proc", "sys", "etc"].contains(&e[0].as_str())
                        && e[1] == "d"
                        && !under(&e[0]);
                    !stub
                })
                .map(|e| line_of(&e[0], &e[1], &e[2], &e[3], &e[4], &e[5]))
                .collect();
            kept.sort();
            kept
        })
        .collect();
    // Match layers to the history entries that made them (the base's
    // first); an emptied layer is no layer.
    let mut out_layers = Vec::new();
    let mut next = layers.into_iter();
    let mut base_seen = false;
    for h in history.iter_mut() {
        if h.1 {
            continue;
        }
        if !base_seen {
            base_seen = true;
            continue;
        }
        let layer = next.next().unwrap();
        if layer.is_empty() {
            h.1 = true;
        } else {
            out_layers.push(layer);
        }
    }
    (history, out_layers)
}

/// One entry as compared: whiteouts by name only (their mode and owner
/// mean nothing: image-spec "whiteout files MUST only apply to ...").
fn line_of(path: &str, kind: &str, mode: &str, owner: &str, size: &str, link: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with(".wh.") {
        return format!("{path} whiteout");
    }
    format!("{path} {kind} {mode} {owner} {size} {link}")
        .trim_end()
        .to_string()
}

/// The same view of what hoist built.
fn hoist_view(img: &lab::Image) -> (Vec<(String, bool)>, Vec<Vec<String>>) {
    let layers = img.layers[1..]
        .iter()
        .map(|l| {
            let mut v: Vec<String> = l
                .iter()
                .map(|e| {
                    let size = if e.kind == 'f' { e.data.len() } else { 0 };
                    line_of(
                        &e.path,
                        &e.kind.to_string(),
                        &format!("{:04o}", e.mode),
                        &format!("{}:{}", e.uid, e.gid),
                        &size.to_string(),
                        e.link.as_deref().unwrap_or(""),
                    )
                })
                .collect();
            v.sort();
            v
        })
        .collect();
    (img.history(), layers)
}

/// The differential check: each case built by hoist and compared with
/// BuildKit's recording, every RUN layer entry (type, mode, owner, size,
/// link) and, with `history`, every history line and empty_layer flag.
fn matches_buildkit(cases: &[(&str, bool)]) {
    let lab = Lab::new(bin!());
    lab.base("bare:1", false);
    for &(case, with_history) in cases {
        let tag = format!("{case}:bk");
        lab.build_case(case, &tag, &[]);
        let (history, layers) = hoist_view(&lab.image(&tag));
        let (want_history, want_layers) = buildkit(case);
        assert_eq!(layers, want_layers, "{case}: RUN layers");
        if with_history {
            assert_eq!(history, want_history, "{case}: history");
        }
    }
}

#[test]
fn run_layers_match_buildkit_for_files_users_and_stages() {
    // Whiteouts and the opaque dir, special files, users' ownership, a
    // COPY --from of a RUN's file, a runnable image: as BuildKit built them.
    matches_buildkit(&[
        ("deletions", true),
        ("special", true),
        ("user", true),
        ("multistage", true),
        ("podman", true),
    ]);
}

#[test]
fn run_layers_match_buildkit_for_empty_steps_and_args() {
    // Empty diffs and mount stubs, build args. `args` and `args-unset`
    // compare layers only: their history lines differ by the two bugs
    // `cli_run.rs` reports in ignored tests.
    matches_buildkit(&[
        ("empty", true),
        ("bare", true),
        ("cache", true),
        ("args", false),
        ("args-unset", false),
    ]);
}

#[test]
fn etc_hostname_is_the_images_and_hosts_is_read_only() {
    // BuildKit's generateMountOpts binds resolv.conf and hosts read-only
    // (withROBind) and mounts nothing at /etc/hostname (the UTS hostname is
    // set, the file is the image's). Recorded: `RUN echo myhost >
    // /etc/hostname` leaves etc/hostname in the layer; appending to
    // /etc/hosts or /etc/resolv.conf fails (`Read-only file system`).
    // Reproduction: `hoist build -t e testdata/run/etc-files`; the image
    // has no /etc/hostname and has /writable = "hosts\nresolv\n".
    let lab = Lab::new(bin!());
    lab.build_case("etc-files", "etc:1", &[]);
    let fs = lab.rootfs("etc:1");
    assert_eq!(read(&fs.join("etc/hostname")), "myhost\n");
    assert!(
        !fs.join("writable").exists(),
        "{}",
        read(&fs.join("writable"))
    );
    let (history, layers) = hoist_view(&lab.image("etc:1"));
    let (want_history, want_layers) = buildkit("etc-files");
    assert_eq!(layers, want_layers);
    assert_eq!(history, want_history);
}
