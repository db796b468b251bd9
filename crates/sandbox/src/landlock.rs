//! A step without a pid namespace kept to its own processes: a Landlock
//! domain scoped for signals (`LANDLOCK_SCOPE_SIGNAL`, Landlock ABI 6,
//! Linux 6.12). From it, `kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`,
//! `pidfd_send_signal` and `F_SETOWN` signals reach only processes in the
//! same domain (the step and what it started), and Landlock's ptrace rule
//! (every ABI) keeps `ptrace`, `process_vm_readv`/`writev` and
//! `/proc/PID/mem`, `environ` … to them too. The supervisor outside the
//! domain can still signal the step. No filesystem or network access is
//! restricted (none is handled).

use std::os::fd::{FromRawFd, OwnedFd};

/// `LANDLOCK_SCOPE_SIGNAL` (uapi `linux/landlock.h`).
const SCOPE_SIGNAL: u64 = 1 << 1;

/// `struct landlock_ruleset_attr` as of ABI 6.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// A ruleset that scopes signals, made before fork (it allocates a
/// descriptor); [`Scope::restrict_self`] enters it between fork and exec.
pub(crate) struct Scope {
    ruleset: OwnedFd,
}

impl Scope {
    /// The kernel's answer when it has no signal scoping (Landlock off, or
    /// older than ABI 6).
    pub(crate) fn new() -> std::io::Result<Scope> {
        let attr = RulesetAttr {
            handled_access_fs: 0,
            handled_access_net: 0,
            scoped: SCOPE_SIGNAL,
        };
        // SAFETY: landlock_create_ruleset reads `size_of::<RulesetAttr>()`
        // bytes from `attr`, which lives across the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Scope { ruleset })
    }

    /// Enter the domain (this thread; the process is single-threaded).
    /// With `nnp`, sets `no_new_privs` first (needed without
    /// `CAP_SYS_ADMIN`). No allocation.
    pub(crate) fn restrict_self(&self, nnp: bool) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        if nnp {
            // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes integers only.
            let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // SAFETY: landlock_restrict_self takes a descriptor we own and flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_restrict_self,
                self.ruleset.as_raw_fd(),
                0u32,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}
