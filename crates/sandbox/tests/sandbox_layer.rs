//! What a step leaves behind: its writes land in the overlay's upper dir
//! only, deletions become whiteouts, the mount points the sandbox had to
//! make are gone again, read-only binds refuse writes, tmpfs never reaches
//! the layer; and the network each mode shows.

mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use hoist_sandbox::Network;
use support::{Fixture, assert_ok, bind, paths, tmpfs, tree};

#[test]
fn writes_land_in_upper_only() {
    let f = Fixture::new();
    let before = tree(&f.lower);
    let o = f.run(&f.sh(
        "echo new > /new.txt && echo changed > /etc/motd && chmod 600 /etc/passwd \
         && mkdir -p /usr/local/lib && echo lib > /usr/local/lib/x && ln -s motd /etc/link \
         && chown 1000:50 /new.txt && cat /etc/motd",
    ));
    assert_ok(&o);
    assert_eq!(o.stdout, "changed\n");
    // The lower dir is exactly as it was: contents, modes, owners, times.
    assert_eq!(tree(&f.lower), before);
    let read = |p: &str| fs::read_to_string(f.upper.join(p)).unwrap();
    assert_eq!(read("new.txt"), "new\n");
    assert_eq!(read("etc/motd"), "changed\n");
    assert_eq!(read("usr/local/lib/x"), "lib\n");
    assert_eq!(
        fs::read_link(f.upper.join("etc/link")).unwrap(),
        std::path::Path::new("motd")
    );
    let new = fs::metadata(f.upper.join("new.txt")).unwrap();
    assert_eq!((new.uid(), new.gid()), (1000, 50));
    let passwd = fs::metadata(f.upper.join("etc/passwd")).unwrap();
    assert_eq!(passwd.permissions().mode() & 0o7777, 0o600);
    // Only what the step touched (and the dirs holding it) is in upper.
    assert_eq!(
        paths(&f.upper),
        [
            "etc",
            "etc/link",
            "etc/motd",
            "etc/passwd",
            "new.txt",
            "usr",
            "usr/local",
            "usr/local/lib",
            "usr/local/lib/x"
        ]
    );
}

#[test]
fn deleting_a_lower_file_leaves_a_whiteout() {
    let f = Fixture::new();
    fs::create_dir_all(f.lower.join("opaque/sub")).unwrap();
    fs::write(f.lower.join("opaque/sub/old"), "old").unwrap();
    let o = f.run(&f.sh(
        "rm /etc/motd && rm -r /mnt && rm -r /opaque && mkdir /opaque && touch /opaque/fresh \
         && ls -A /opaque",
    ));
    assert_ok(&o);
    assert_eq!(o.stdout, "fresh\n");
    for gone in ["etc/motd", "mnt"] {
        let m = fs::symlink_metadata(f.upper.join(gone)).unwrap();
        assert!(m.file_type().is_char_device(), "{gone}: {m:?}");
        assert_eq!(m.rdev(), 0, "{gone} is a 0:0 whiteout");
    }
    // A directory deleted and made again is opaque: the lower one is hidden.
    let opaque = rustix::fs::getxattr(
        f.upper.join("opaque"),
        "trusted.overlay.opaque",
        &mut [0u8; 8],
    )
    .expect("trusted.overlay.opaque on the new dir");
    assert_eq!(opaque, 1);
    assert_eq!(paths(&f.upper.join("opaque")), ["fresh"]);
    assert!(f.lower.join("etc/motd").exists());
    assert!(f.lower.join("opaque/sub/old").exists());
}

/// `/proc`, `/dev`, `/sys` and every mount point the step's mounts needed
/// were made by the sandbox (the image has none of them); after success
/// none is left in the layer, and the directories they were made in keep
/// their times.
#[test]
fn mount_point_stubs_are_gone_after_success() {
    let f = Fixture::new();
    assert!(!f.lower.join("proc").exists() && !f.lower.join("dev").exists());
    let src_dir = f.host.join("dir");
    fs::create_dir(&src_dir).unwrap();
    let src_file = f.host.join("file");
    fs::write(&src_file, "host file\n").unwrap();
    let etc_before = fs::metadata(f.lower.join("etc")).unwrap();
    let mut spec = f.sh(
        "test -d /proc/self && test -c /dev/null && test -d /sys/kernel \
         && cat /etc/app/conf.d/extra.conf && ls /cache/deep/dir && test -d /scratch \
         && test -d /mnt/sub && echo kept > /kept",
    );
    spec.mounts = vec![
        bind(&src_dir, "/cache/deep/dir", false),
        bind(&src_file, "/etc/app/conf.d/extra.conf", true),
        tmpfs("/scratch"),
        bind(&src_dir, "/mnt/sub", true),
    ];
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(o.stdout, "host file\n");
    let left = paths(&f.upper);
    // `etc` and `mnt` may be copied up (their children were made and
    // removed); nothing else but the step's own file.
    let extra: Vec<&String> = left
        .iter()
        .filter(|p| !["kept", "etc", "mnt"].contains(&p.as_str()))
        .collect();
    assert!(extra.is_empty(), "stubs left in the layer: {extra:?}");
    for dir in ["etc", "mnt"] {
        if let Ok(up) = fs::metadata(f.upper.join(dir)) {
            let low = fs::metadata(f.lower.join(dir)).unwrap();
            assert_eq!(
                (up.mtime(), up.mtime_nsec()),
                (low.mtime(), low.mtime_nsec()),
                "/{dir} copied up with a new mtime: it would enter the layer"
            );
            assert_eq!(paths(&f.upper.join(dir)), Vec::<String>::new());
        }
    }
    assert_eq!(
        fs::metadata(f.lower.join("etc")).unwrap().mtime(),
        etc_before.mtime()
    );
    // The bind sources are untouched.
    assert_eq!(fs::read_to_string(&src_file).unwrap(), "host file\n");
    assert!(src_dir.is_dir());
}

/// The stubs go only when the step succeeds; a step that writes into a
/// directory stub keeps it (it is the step's content now).
#[test]
fn a_stub_the_step_filled_stays() {
    let f = Fixture::new();
    let mut spec = f.sh("echo mine > /work/out && ls /work/cache");
    spec.mounts = vec![tmpfs("/work/cache")];
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(paths(&f.upper), ["work", "work/out"]);
}

#[test]
fn read_only_bind_refuses_writes() {
    let f = Fixture::new();
    let src = f.host.join("ro");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("file"), "host\n").unwrap();
    let rw = f.host.join("rw");
    fs::create_dir(&rw).unwrap();
    let mut spec = f.sh(
        "cat /ro/file; echo changed > /ro/file; touch /ro/new; rm /ro/file; \
         mount -o remount,rw /ro; echo still > /ro/file; \
         echo through > /rw/written; echo done",
    );
    spec.mounts = vec![bind(&src, "/ro", true), bind(&rw, "/rw", false)];
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(o.stdout, "host\ndone\n");
    assert_eq!(
        o.stderr.matches("Read-only file system").count(),
        4,
        "{o:#?}"
    );
    assert_eq!(fs::read_to_string(src.join("file")).unwrap(), "host\n");
    assert_eq!(paths(&src), ["file"]);
    // The writable bind is the host dir itself.
    assert_eq!(fs::read_to_string(rw.join("written")).unwrap(), "through\n");
    // Neither reached the layer.
    assert_eq!(paths(&f.upper), Vec::<String>::new());
}

/// A tmpfs mounted on the host, unmounted on drop.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// A read-only bind whose source holds a mount of its own: the submount
/// (cloned with the tree) must be read-only too, or the step writes into
/// the host through it.
#[test]
fn read_only_bind_is_read_only_below_submounts() {
    let f = Fixture::new();
    let src = f.host.join("src");
    let sub = src.join("sub");
    fs::create_dir_all(&sub).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &sub,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap();
    let guard = HostMount(sub.clone());
    let mut spec = f.sh("touch /ro/top; touch /ro/sub/inner; ls /ro/sub");
    spec.mounts = vec![bind(&src, "/ro", true)];
    let o = f.run(&spec);
    let inner = sub.join("inner").exists();
    drop(guard);
    assert!(!inner, "the step wrote into the host's submount: {o:#?}");
    assert_eq!(
        o.stderr.matches("Read-only file system").count(),
        2,
        "{o:#?}"
    );
}

#[test]
fn tmpfs_writes_never_reach_upper() {
    let f = Fixture::new();
    let mut spec = f.sh(
        "stat -c %a /scratch /small && echo data > /scratch/f && mkdir /scratch/d \
         && cat /scratch/f && grep -E ' /(scratch|small) ' /proc/self/mountinfo | cut -d' ' -f5,9 \
         && ! dd if=/dev/zero of=/small/big bs=1024 count=2048 2>/dev/null && echo full",
    );
    spec.mounts = vec![
        tmpfs("/scratch"),
        hoist_sandbox::MountSpec {
            target: "/small".into(),
            kind: hoist_sandbox::MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: Some(0o700),
            },
        },
    ];
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(
        o.stdout,
        "1777\n700\ndata\n/scratch tmpfs\n/small tmpfs\nfull\n"
    );
    assert_eq!(paths(&f.upper), Vec::<String>::new());
}

fn interfaces(proc_net_dev: &str) -> Vec<String> {
    let mut v: Vec<String> = proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn network_none_has_only_loopback_up() {
    let f = Fixture::new();
    let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    assert!(
        host.len() > 1,
        "the host should have more than lo: {host:?}"
    );
    let o = f.run(&f.sh(
        "cat /proc/net/dev; echo ==; ls /sys/class/net; echo ==; cat /sys/class/net/lo/flags; \
         ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-lo",
    ));
    assert_ok(&o);
    let parts: Vec<&str> = o.stdout.split("==\n").collect();
    assert_eq!(interfaces(parts[0]), ["lo"]);
    assert_eq!(parts[1], "lo\n");
    let (flags, ping) = parts[2].split_once('\n').unwrap();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is UP (IFF_UP)");
    assert_eq!(ping, "ping-lo\n");
}

#[test]
fn network_host_sees_the_host_interfaces() {
    let f = Fixture::new();
    let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    let mut host_sys: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    host_sys.sort();
    let mut spec = f.sh("cat /proc/net/dev; echo ==; ls -1 /sys/class/net");
    spec.network = Network::Host;
    let o = f.run(&spec);
    assert_ok(&o);
    let (dev, sys) = o.stdout.split_once("==\n").unwrap();
    assert_eq!(interfaces(dev), host);
    let mut sys: Vec<String> = sys.lines().map(str::to_string).collect();
    sys.sort();
    assert_eq!(sys, host_sys);
}
