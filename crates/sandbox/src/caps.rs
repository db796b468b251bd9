//! Capabilities: a root step gets Docker's default set and nothing more
//! (the bounding set is cut down before exec; a non-root step loses all
//! capabilities at `setresuid`, and cannot regain more than the set).

/// Docker's default capabilities (moby's `oci/caps/defaults.go`): number, name.
const DEFAULT: [(u32, &str); 14] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (KILL, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

/// `CAP_KILL`: taken from a step without a pid namespace where Landlock
/// cannot scope its signals (it then reaches only processes of its own uid).
const KILL: u32 = 5;

/// The highest capability number this kernel knows.
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Taken from a step that runs in a plain chroot (no mount namespace):
/// `SYS_CHROOT` leaves a chroot, `MKNOD` makes nodes no `nodev` protects.
const NOT_IN_CHROOT: [u32; 2] = [18, 27];

/// Whether a step keeps `cap`: Docker's default set, less
/// [`NOT_IN_CHROOT`] with `chroot` and `CAP_KILL` without `kill`.
fn kept(cap: u32, chroot: bool, kill: bool) -> bool {
    DEFAULT.iter().any(|&(c, _)| c == cap)
        && !(chroot && NOT_IN_CHROOT.contains(&cap))
        && (kill || cap != KILL)
}

/// The names of the capabilities a step keeps (the seccomp profile's
/// conditions depend on them).
pub fn default_names(chroot: bool, kill: bool) -> Vec<&'static str> {
    DEFAULT
        .iter()
        .filter(|&&(c, _)| kept(c, chroot, kill))
        .map(|&(_, name)| name)
        .collect()
}

/// Drop every capability a step does not keep ([`kept`]) from the bounding
/// set. Runs between fork and exec: no allocation.
pub(crate) fn limit_bounding_set(last_cap: u32, chroot: bool, kill: bool) -> std::io::Result<()> {
    for cap in 0..=last_cap {
        if kept(cap, chroot, kill) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes two integers and touches
        // no memory of ours.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            // A capability this kernel lacks is already out of the set.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    Ok(())
}
