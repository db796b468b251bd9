//! Capabilities: a root step gets Docker's default set and nothing more
//! (the bounding set is cut down before exec; a non-root step loses all
//! capabilities at `setresuid`, and cannot regain more than the set).

/// Docker's default capabilities (moby's `oci/caps/defaults.go`), by number.
const DEFAULT: [u32; 14] = [
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

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

/// Drop every capability outside [`DEFAULT`] from the bounding set, and
/// with `chroot` [`NOT_IN_CHROOT`] too. Runs between fork and exec: no
/// allocation.
pub(crate) fn limit_bounding_set(last_cap: u32, chroot: bool) -> std::io::Result<()> {
    for cap in 0..=last_cap {
        if DEFAULT.contains(&cap) && !(chroot && NOT_IN_CHROOT.contains(&cap)) {
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
