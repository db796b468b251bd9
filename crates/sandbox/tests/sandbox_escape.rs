//! The step cannot reach the host: not its files (by any path out of the
//! root), not `/sys`, not the host's hostname or kernel knobs, not its
//! block devices, not through a symlinked mount target, not through an
//! inherited file descriptor.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};

use hoist_sandbox::Network;
use support::{Fixture, PROBE, assert_ok, bind, marker, mounts_under, paths};

/// A file on the host, in the test's temp dir (next to the overlay's dirs).
fn plant_secret(f: &Fixture) -> (String, String) {
    let m = marker("secret");
    let path = f.dir.path().join(format!("{m}.txt"));
    let content = format!("{m}-content");
    fs::write(&path, &content).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    (path.display().to_string(), content)
}

#[test]
fn host_files_are_unreachable_from_the_root() {
    let f = Fixture::new();
    let (secret, content) = plant_secret(&f);
    let ways = [
        "",
        "/..",
        "/../../..",
        "/proc/self/root",
        "/proc/self/root/..",
        "/proc/self/cwd/..",
        "/proc/1/root",
        "/proc/1/root/..",
        "/proc/1/cwd",
        "/proc/1/cwd/..",
    ];
    let mut script = String::from("ls -a / > /tmp/root.ls; ");
    for w in ways {
        script.push_str(&format!(
            "cat {w}$1; if ls -a {w}/ > /tmp/w.ls; then cmp -s /tmp/w.ls /tmp/root.ls \
             && echo 'same {w}/' || echo 'DIFFERENT {w}/'; fi; "
        ));
    }
    script.push_str(
        "ls -l /proc/1/fd/; find / -path /proc -prune -o -path /sys -prune -o -name '*.txt' -print; \
         grep -rl \"$2\" /etc /tmp /mnt /dev/shm; echo procs=$(ls -d /proc/[0-9]* | wc -l); \
         tr '\\0' ' ' < /proc/1/cmdline; echo",
    );
    let spec = f.spec(&["sh", "-c", &script, "sh", &secret, &content]);
    let o = f.run(&spec);
    assert!(!o.stdout.contains(&content), "host secret read: {o:#?}");
    assert!(!o.stdout.contains(".txt"), "host secret found: {o:#?}");
    // Each way out lists the sandbox's own root, or is refused outright
    // (/proc/1 is pid 1 of the sandbox, which the step may not ptrace).
    assert!(!o.stdout.contains("DIFFERENT"), "{o:#?}");
    for w in [
        "",
        "/..",
        "/../../..",
        "/proc/self/root",
        "/proc/self/root/..",
        "/proc/self/cwd/..",
    ] {
        assert!(o.stdout.contains(&format!("same {w}/\n")), "{w}: {o:#?}");
    }
    for w in ["/proc/1/root", "/proc/1/cwd"] {
        assert!(
            o.stdout.contains(&format!("same {w}/\n"))
                || o.stderr.contains(&format!("{w}/: Permission denied")),
            "{w}: {o:#?}"
        );
    }
    // pid 1's descriptors (it holds the host's report file) are refused.
    assert!(!o.stdout.contains(" -> "), "{o:#?}");
    assert!(
        o.stderr
            .contains("/proc/1/fd/0: cannot read link: Permission denied"),
        "{o:#?}"
    );
    // Only the sandbox's processes are visible, and pid 1 is its own init.
    let procs: usize = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=6).contains(&procs), "{procs} processes visible");
    assert!(
        o.stdout.contains(&format!("{PROBE} __hoist-sandbox")),
        "{o:#?}"
    );
}

#[test]
fn sys_is_read_only_and_cgroups_unmountable() {
    for network in [Network::None, Network::Host] {
        let f = Fixture::new();
        let mut spec = f.sh(
            // Harmless even if /sys were writable: no value changes.
            "touch /sys/x; touch /sys/kernel/uevent_seqnum; mkdir /sys/kernel/hoist-x; \
             mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg; \
             mount -o remount,rw /sys; awk '$5 == \"/sys\" {print $5, $6}' /proc/self/mountinfo",
        );
        spec.network = network;
        let o = f.run(&spec);
        assert_ok(&o);
        assert!(o.stdout.starts_with("/sys ro,"), "{network:?}: {o:#?}");
        assert_eq!(
            o.stderr.matches("Read-only file system").count(),
            3,
            "{network:?}: {o:#?}"
        );
        assert_eq!(o.stderr.matches("permission denied").count(), 2, "{o:#?}");
    }
}

#[test]
fn hostname_written_through_proc_changes_only_the_sandbox() {
    let f = Fixture::new();
    let host = rustix::system::uname().nodename().to_owned();
    let mut spec = f.sh(
        "echo evil-name > /proc/sys/kernel/hostname; hostname evil-two; hostname; \
         cat /proc/sys/kernel/hostname",
    );
    spec.hostname = "hoist-step".into();
    let o = f.run(&spec);
    assert_ok(&o);
    // Whatever the step managed in its own UTS namespace, the host's name
    // is the same.
    assert_eq!(rustix::system::uname().nodename(), host.as_c_str());
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        host.to_str().unwrap()
    );
    // `hostname` (sethostname) needs SYS_ADMIN and fails; the proc write
    // (observed: it succeeds while /proc/sys is writable) can only rename
    // the sandbox.
    assert!(o.stderr.contains("hostname"), "{o:#?}");
    assert!(
        o.stdout == "evil-name\nevil-name\n" || o.stdout == "hoist-step\nhoist-step\n",
        "{o:#?}"
    );
}

/// Host-wide kernel knobs under `/proc/sys` are read-only for the step, as
/// Docker and BuildKit mount `/proc/sys` (`core_pattern` runs a program as
/// host root on the next crash: a full escape). Only opened for writing,
/// never written.
#[test]
fn host_kernel_knobs_are_read_only() {
    let f = Fixture::new();
    let o = f.run(&f.sh(
        "for k in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sys/vm/drop_caches \
         /proc/sysrq-trigger; do test -e $k || continue; \
         if ( exec 3>>$k ) 2>/dev/null; then echo WRITABLE $k; else echo refused $k; fi; done",
    ));
    assert_ok(&o);
    assert!(
        o.stdout.contains("refused /proc/sys/kernel/core_pattern"),
        "{o:#?}"
    );
    assert!(!o.stdout.contains("WRITABLE"), "{}", o.stdout);
}

/// A loop device over a host file, detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &std::path::Path) -> Loop {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .expect("losetup (util-linux) is needed");
        assert!(out.status.success(), "losetup: {out:?}");
        Loop(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// MKNOD is in the default set (as in Docker), so a root step can make a
/// node for any host block device. Docker and BuildKit confine that with
/// the device cgroup; this machine's own disk cannot be opened even by the
/// host's root (EPERM), so the test uses a loop device over a host file
/// with a known marker: a host block device the host itself can read.
#[test]
fn host_block_devices_are_unreadable() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new();
    let m = marker("disk");
    let img = f.dir.path().join("disk.img");
    let mut bytes = m.clone().into_bytes();
    bytes.resize(1 << 20, 0);
    fs::write(&img, &bytes).unwrap();
    let dev = Loop::new(&img);
    let rdev = fs::metadata(&dev.0).unwrap().rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    // The host can read it.
    let head = fs::read(&dev.0).unwrap();
    assert!(head.starts_with(m.as_bytes()));
    let o = f.run(&f.sh(&format!(
        "mknod /tmp/blk b {major} {minor} && echo made; head -c 200 /tmp/blk; \
         mknod /dev/blk b {major} {minor} && head -c 200 /dev/blk; echo"
    )));
    assert!(!o.stdout.contains(&m), "host block device read: {o:#?}");
    // The disk holding the temp dir, where it is a block device (not on
    // an overlay or tmpfs): not one byte of it.
    let dev = fs::metadata(f.dir.path()).unwrap().dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    if major == 0 {
        eprintln!("the temp dir is on no block device: only the loop device was tried");
        return;
    }
    let o = f.run(&f.sh(&format!(
        "mknod /tmp/disk b {major} {minor} && head -c 4096 /tmp/disk | wc -c"
    )));
    assert_eq!(o.stdout, "0\n", "host disk {major}:{minor} read: {o:#?}");
}

/// An image's `/etc/hosts` is a symlink to a host path; the step mounts a
/// file there. Whatever the sandbox does, it is inside the root: the host
/// file is never written or mounted over.
#[test]
fn symlinked_mount_target_never_touches_the_host() {
    for (relative, dir_in_image) in [(false, false), (false, true), (true, true)] {
        let f = Fixture::new();
        let victim = f.host.join("victim");
        fs::write(&victim, "host victim\n").unwrap();
        let link = if relative {
            format!("../../../../..{}", victim.display())
        } else {
            victim.display().to_string()
        };
        symlink(&link, f.lower.join("etc/hosts")).unwrap();
        if dir_in_image {
            fs::create_dir_all(f.lower.join(f.host.strip_prefix("/").unwrap())).unwrap();
        }
        let src = f.dir.path().join("hosts-src");
        fs::write(&src, "127.0.0.1 generated\n").unwrap();
        let mut spec = f.sh("cat /etc/hosts && echo appended >> /etc/hosts");
        spec.mounts = vec![bind(&src, "/etc/hosts", false)];
        let o = f.run(&spec);
        let case = format!("link {link}, dir in image {dir_in_image}: {o:#?}");
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "host victim\n",
            "{case}"
        );
        assert_eq!(paths(&f.host), ["victim"], "{case}");
        assert!(mounts_under(f.dir.path()).is_empty(), "{case}");
        if o.code == 0 {
            // The step saw (and wrote) the bind source, not the host file.
            assert_eq!(o.stdout, "127.0.0.1 generated\n", "{case}");
            assert_eq!(
                fs::read_to_string(&src).unwrap(),
                "127.0.0.1 generated\nappended\n"
            );
        } else {
            assert_eq!(o.code, hoist_sandbox::SETUP_FAILED, "{case}");
        }
    }
}

/// The same, as BuildKit does it: the step runs, and the sandbox leaves
/// nothing of its own in the layer.
#[test]
fn symlinked_mount_target_works_and_leaves_no_stub() {
    for dir_in_image in [false, true] {
        let f = Fixture::new();
        let victim = f.host.join("victim");
        symlink(&victim, f.lower.join("etc/hosts")).unwrap();
        if dir_in_image {
            fs::create_dir_all(f.lower.join(f.host.strip_prefix("/").unwrap())).unwrap();
        }
        let src = f.dir.path().join("hosts-src");
        fs::write(&src, "127.0.0.1 generated\n").unwrap();
        let mut spec = f.sh("cat /etc/hosts");
        spec.mounts = vec![bind(&src, "/etc/hosts", true)];
        let o = f.run(&spec);
        assert_ok(&o);
        assert_eq!(o.stdout, "127.0.0.1 generated\n");
        // Directories copied up on the way stay in the upper dir here; the
        // engine drops unchanged copy-ups before writing the layer
        // (hoist_engine::ops::run::prune_copy_ups). No file may stay.
        let left: Vec<String> = paths(&f.upper)
            .into_iter()
            .filter(|p| !f.upper.join(p).is_dir())
            .collect();
        assert!(left.is_empty(), "left in the layer: {left:?}");
    }
}

/// The step gets stdin, stdout and stderr only, as runc closes everything
/// else: a descriptor the engine inherited (here a directory of the host)
/// would let the step walk out of its root.
#[test]
fn inherited_descriptors_do_not_reach_the_step() {
    let f = Fixture::new();
    let (secret, content) = plant_secret(&f);
    let name = std::path::Path::new(&secret).file_name().unwrap();
    let through_fd7 = format!("/proc/self/fd/7/{}", name.to_str().unwrap());
    // An engine started with fd 7 open on the host dir (not close-on-exec).
    let run = |args: &[&str]| {
        let path = f.write_spec(&f.spec(args));
        Command::new("/bin/sh")
            .args([
                "-c",
                "exec 7<\"$1\" && exec \"$2\" __hoist-sandbox \"$3\"",
                "sh",
            ])
            .arg(f.dir.path())
            .arg(PROBE)
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["cat", &through_fd7]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(&content),
        "host read through fd 7: {out:?}"
    );
    // `ls` itself holds 3, the directory it lists.
    let out = run(&["ls", "/proc/self/fd"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\n1\n2\n3\n",
        "{out:?}"
    );
}
